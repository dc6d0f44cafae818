"""Crash explanations: the failing operation's operands, why numpy or pandas refused, and fixes that
shape algebra says work.

Runs only when something raised.  Nothing of the user's is executed again:
the operands come from what the recorder noted just before the operation,
names from the failing frame's namespace (read, never evaluated), and fixes
are checked with the shape algebra of `_shapes` and `_calls`.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from . import _calls, _numerics, _rules_api, _shapes
from ._events import OperandSpec, Record, Site, Value, replace
from ._report import Crash, Finding, Fix, Operand
from ._rules import _GRADIENT as _GRADIENT_OF
from ._rules import (Context, _paren, _scaled_name, dims, gradient_of_another, join, numpy_versions, one_hot, outer_fixes, rank_outer_fixes,
                     reduction_forgotten)
from ._rules_pandas import compiles as _compiles
from ._rules_pandas import explain_crash as explain_labels
from ._shapes import fmt

NOTE_MARK = "shapecheck:"  # first word of the note, so that it is never added twice


@dataclass
class Failure:
    """What the explainer is given: the site that raised, what it was last run with, and its frame's names."""

    site: Site | None
    record: Record | None
    exc: BaseException
    known: dict[str, Value]  # arrays visible in the failing frame, by name (and `d["key"]` for dict entries)
    receiver: Value | None = None  # for an AttributeError on `x.method`: what x was
    path: str | None = None
    line: int | None = None
    # The failing function's parameters as its caller passed them: name -> (argument text, call site)
    params: dict[str, tuple[str, Site]] | None = None


MATMUL_CALLEES = frozenset({"dot", "matmul"})


def is_matmul(site: Site, vals: tuple[Value, ...]) -> bool:
    if site.kind in ("binop", "augassign"):
        return site.op.startswith("@") or (site.op.startswith("*") and any(v.kind == "matrix" for v in vals))
    return site.kind in ("call", "method") and site.callee in MATMUL_CALLEES


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message; Python's own words when its __str__ raises."""
    try:
        text = str(exc)
    except Exception:
        return "<exception str() failed>"
    return text.splitlines()[0] if text else ""


def explain(f: Failure, ctx: Context, findings: list[Finding]) -> Crash:
    """Turn a failure into the report's crash section."""
    exc = f.exc
    message = _first_line(exc)
    crash = Crash(type(exc).__name__, message, f.path, f.line, f.site.text if f.site else None)
    site, rec = f.site, f.record
    if site is None:
        return crash
    if f.params:
        ctx.bound[(site.path, site.scope)] = f.params
    if rec is None and f.receiver is not None:
        crash.shaped = False
        return _attribute_error(crash, site, f, ctx)
    if rec is None or len(rec.operands) != len(site.operands):
        crash.explanation = "the operands of this operation were not arrays shapecheck records"
        return crash
    # Dtypes are described once per shape signature: the frame's own arrays say what this run held.
    vals = tuple(_live_dtype(spec, v, f.known) for spec, v in zip(site.operands, rec.operands))
    crash.operands = tuple(_operand(spec, v, site, ctx, f.params) for spec, v in zip(site.operands, vals)
                           if not _is_literal(spec.text))
    if site.kind == "shape-assert":
        _shape_assert(crash, site, vals, ctx)
        return crash
    if isinstance(exc, TypeError) and (site.kind == "convert" or site.callee in ("float", "int", "complex")) \
            and any(v.shape and v.size == 1 for v in vals):
        _to_scalar(crash, site, vals, ctx)
        return crash
    if isinstance(exc, TypeError) and any(v.dtype == "object" and v.kind in ("ndarray", "Series", "DataFrame")
                                          for v in vals):
        _object_dtype(crash, site, vals, ctx)
        crash.shaped = False
        return crash
    if isinstance(exc, OverflowError) and _numerics.explain_overflow(crash, site, vals, exc, ctx):
        crash.shaped = False  # SC302's trap under numpy 2: a Python int out of the array's range
        return crash
    if isinstance(exc, TypeError) and _numerics.explain_cast(crash, site, vals, exc, ctx) or \
            _rules_api.explain_crash(crash, site, replace(rec, operands=vals), ctx):
        crash.shaped = False  # SC302 (a float update of an integer array), SC401, SC402: a trap, not a shape
        return crash
    expected = _expected_shapes(site, f.known)
    if any(v.is_pandas for v in vals):
        _pandas(crash, site, vals, f, ctx)
        explain_labels(crash, site, replace(rec, operands=vals), ctx)  # SC202's cause and fixes, when it judges
    elif is_matmul(site, vals) and len(_shaped(vals)) >= 2:
        _matmul(crash, site, vals, expected, f.known)
    elif site.kind == "augassign" and len(vals) == 2 and vals[0].shape is not None and vals[1].shape is not None:
        _inplace(crash, site, vals, ctx, f.known)
    elif site.kind in ("binop", "compare") and len(_shaped(vals)) == 2:
        _broadcast(crash, site, vals, expected, ctx, f.known)
    elif site.kind in ("call", "method") and site.callee == "reshape":
        _reshape(crash, site, vals, expected, f.known)
    elif site.kind in ("call", "method") and site.callee in _calls.ELEMENTWISE_N and len(_shaped(vals)) >= 2:
        _broadcast(crash, site, vals, expected, ctx, f.known)
    # A silent broadcast upstream is the cause even when a local rewrite would also run: it goes first.
    _upstream(crash, site, rec, ctx, findings)
    return crash


def _live_dtype(spec: OperandSpec, v: Value, known: dict[str, Value]) -> Value:
    """The operand with the dtype its variable has in the failing frame, when that is surely the
    operand's own: the variable itself, or object dtype (which arithmetic keeps)."""
    named = _name_in(spec)
    kv = known.get(named[0]) if named else None
    if kv is None or kv.dtype is None or kv.dtype == v.dtype or v.shape is None or kv.shape is None:
        return v
    if tuple(kv.shape) not in (tuple(v.shape), _shapes.transpose(tuple(v.shape))):
        return v
    if spec.name or kv.dtype == "object":
        return replace(v, dtype=kv.dtype)
    return v


def _shape_assert(crash: Crash, site: Site, vals, ctx: Context) -> None:
    """`assert db.shape == b.shape` failed: both shapes, where each got its shape, and the fix at a
    reduction that dropped the axis the other keeps."""
    (sa, sb), (a, b) = site.operands, vals
    crash.explanation = f"the shapes differ: {sa.text} is {fmt(a.shape)}, {sb.text} {'is ' if sb.name else ''}" \
                        f"{fmt(b.shape)}"
    for spec, v, other in ((sa, a, b), (sb, b, a)):
        log = ctx.assignment(spec.name, site) if spec.name else None
        if log is None:
            continue
        fixed = _with_keepdims(log.site.text, v.shape, other.shape)
        if fixed is not None:
            crash.explanation += (f"; {spec.text} lost an axis at line {log.site.line}, where `{fixed[1]}` "
                                  f"drops the summed axis")
            crash.fixes.append(Fix(f"{spec.text} = {fixed[0]} at line {log.site.line}", tuple(other.shape),
                                   "keepdims=True keeps the summed axis"))
    if not crash.fixes:
        for spec, v, other in ((sa, a, b), (sb, b, a)):
            if spec.name and _shapes.prod(v.shape) == _shapes.prod(other.shape) and len(v.shape) != len(other.shape):
                crash.fixes.append(Fix(f"{spec.text}.reshape({dims(other.shape) or '()'})", tuple(other.shape)))
                break


def _with_keepdims(text: str, shape, want) -> tuple[str, str] | None:
    """(`text` with keepdims=True in its one reduction, the reduction) when that gives `shape` the axis
    `want` has: np.sum(dZ, axis=1) / m of (3,) against (3, 1)."""
    import ast

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.end_lineno == 1
             and (getattr(n.func, "attr", None) or getattr(n.func, "id", None)) in _calls.REDUCE
             and not any(k.arg == "keepdims" for k in n.keywords)]
    if len(calls) != 1:
        return None
    call = calls[0]
    axis = next((k.value for k in call.keywords if k.arg == "axis"), None)
    if not isinstance(axis, ast.Constant) or type(axis.value) is not int:
        return None
    kept = _kept(shape, axis.value, tuple(shape))
    if kept is None or kept != tuple(want):
        return None
    end = call.end_col_offset - 1
    return text[:end] + ", keepdims=True" + text[end:], ast.get_source_segment(text, call)


def _to_scalar(crash: Crash, site: Site, vals, ctx: Context) -> None:
    """`float(cost)` of a (1, 1) array, `'%.3f' % loss` of a (1,) one: numpy 2 converts only 0-d arrays
    to Python numbers.  Say which array, where it got its axes, and take its one value with .item()."""
    spec, v = next((s, v) for s, v in zip(site.operands, vals) if v.shape and v.size == 1)
    crash.explanation = (f"{spec.text} is a {fmt(v.shape)} array holding one number, not a number itself: numpy "
                         f"converts only 0-d arrays to a Python float or int (float(), int(), '%' formatting)")
    name = _name_in(spec)
    log = ctx.assignment(name[0], site) if name else None
    grown = [lg for lg in ctx.logs if lg.site.kind == "augassign" and lg.site.path == site.path and name
             and lg.site.scope == site.scope and lg.site.operands[0].text == name[0] and lg.site.line < site.line
             and any(r.operands and r.operands[0].shape in (None, ()) for r in lg.records)]
    if grown:  # `loss -= np.log(probs[1])`: a number that an array made into an array
        log = max(grown, key=lambda lg: lg.site.line)
    if log is not None:
        crash.explanation += f"; {spec.text} got its shape {fmt(v.shape)} at line {log.site.line} (`{log.site.text}`)"
        kept = _kept_axis(log.site, ctx)
        if kept:
            crash.explanation += f", where {kept}"
    where = f"{spec.text}.item()"
    fixed = site.text.replace(spec.text, where) if site.text.count(spec.text) == 1 else where
    crash.fixes = [Fix(fixed, None, f"takes the one value of {spec.text} {fmt(v.shape)} as a Python number")]


def _kept_axis(site: Site, ctx: Context) -> str | None:
    """`probs[1]` of a (5, 1) array keeps an axis: `probs[1, 0]` (or a reduction that kept one)."""
    import ast

    try:
        tree = ast.parse(site.text.strip())  # a statement too: `loss -= np.log(probs[1])`
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and \
                not isinstance(node.slice, (ast.Tuple, ast.Slice)):
            log = ctx.assignment(node.value.id, site)
            value = ctx.value(log) if log is not None else None
            if value is not None and value.shape is not None and len(value.shape) == 2 and value.shape[1] == 1:
                index = ast.get_source_segment(site.text.strip(), node.slice)
                return (f"{node.value.id}[{index}] of {node.value.id} {fmt(value.shape)} keeps an axis: "
                        f"{node.value.id}[{index}, 0] is one number")
    return None


def _object_dtype(crash: Crash, site: Site, vals, ctx: Context) -> None:
    """A crash caused by the dtype, not the shape: numbers held as Python objects (pandas' to_numpy()
    of a frame with a text column, np.array of mixed lists).  Say so, and where the dtype came from."""
    spec = next(s for s, v in zip(site.operands, vals) if v.dtype == "object")
    what = f"`{site.callee}`" if site.callee else f"`{site.op}`"
    crash.explanation = (f"{spec.text} has dtype object (Python objects, not numbers), and numpy's {what} has no "
                         f"loop for them: the shapes are fine, the dtype is not")
    named = _name_in(spec)
    chain = _object_chain(named[0], site, ctx) if named else []
    if chain:
        name, log = chain[-1]
        crash.explanation += f"; {name} became object at line {log.site.line} (`{log.site.text}`)"
        if re.search(r"\.to_numpy\(|\.values\b|np\.array\(", log.site.text):
            crash.explanation += ", because pandas gives object when the frame has a non-numeric column"
        # Convert where the numbers are first taken out of the object array (`X = data[:, :2]`).
        name, log = chain[-2] if len(chain) >= 2 else chain[-1]
        value = ctx.value(log)
        crash.fixes = [Fix(f"{name} = {_paren(log.site.text)}.astype(float) at line {log.site.line}",
                           value.shape if value is not None else None,
                           "convert the numeric columns as you take them out; pd.to_numeric(...) for numbers "
                           "stored as text")]
    elif site.text.count(spec.text) == 1:
        crash.fixes = [Fix(site.text.replace(spec.text, f"{_paren(spec.text)}.astype(float)"), None,
                           "better where the numbers were read; pd.to_numeric(...) for numbers stored as text")]


def _object_chain(name: str, site: Site, ctx: Context, depth: int = 8) -> list:
    """(name, assignment) walking back from `name` through object arrays; the last made the object dtype."""
    import ast

    chain, seen = [], set()
    while depth > 0 and name not in seen:
        seen.add(name)
        depth -= 1
        log = ctx.assignment(name, site)
        value = ctx.value(log) if log is not None else None
        if value is None or value.dtype != "object":
            break
        chain.append((name, log))
        try:
            names = [n.id for n in ast.walk(ast.parse(log.site.text.strip(), mode="eval")) if isinstance(n, ast.Name)]
        except SyntaxError:
            break
        upstream = [n for n in names if (a := ctx.assignment(n, log.site, log.site.line)) is not None
                    and a.site.line < log.site.line and ctx.value(a) is not None and ctx.value(a).dtype == "object"]
        if not upstream:
            break
        name, site = upstream[0], log.site
    return chain


def _is_literal(text: str) -> bool:
    """`28`, `-1`, `(4, 1)`: arguments written as numbers are not operands worth listing."""
    return re.fullmatch(r"[-+(),\s\d.]+", text) is not None


def _shaped(vals) -> list[Value]:
    return [v for v in vals if v.shape is not None and v.kind not in ("tuple", "scalar", "other")]


def _operand(spec: OperandSpec, v: Value, site: Site, ctx: Context, params=None) -> Operand:
    named = _name_in(spec)
    origin = None
    if named and params and named[0] in params and not ctx.assigned_in_scope(named[0], site):
        # A parameter: where the caller got the value it passed (the traceback's calling line).
        arg, call = params[named[0]]
        origin = f"passed as `{arg}` by `{call.text}` at line {call.line}"
        if call.path != site.path:
            origin = origin.replace(f"at line {call.line}", f"at {call.path}:{call.line}")
        passed = _name_in(OperandSpec(arg, name=arg if arg.isidentifier() else None))
        further = ctx.origin(passed[0], call) if passed else None
        if further:
            origin += f", {'' if passed[0] == arg else passed[0] + ' '}{further}"
    elif named:
        origin = ctx.origin(named[0], site)
    if origin and not spec.name:
        origin = f"{named[0]} {origin}"  # `0.1 * dw`: dw from `X.T @ dz / m` at line 8
    if origin is None:
        origin = _attribute_origin(spec, site, ctx)
    return Operand.of(spec.text, v, origin)


_SELF_ATTR = re.compile(r"^self\.(?P<attr>\w+)(?:\.T)?$")


def _attribute_origin(spec: OperandSpec, site: Site, ctx: Context) -> str | None:
    """`self.weights` in a method: where the class set it, when exactly one statement of the file that ran
    assigns an attribute of that name (`self.weights = ...` in `__init__`, no `layer.weights = ...`)."""
    m = _SELF_ATTR.match(spec.text.strip())
    if m is None or "." not in site.scope:
        return None
    cls = site.scope.rsplit(".", 1)[0]
    attr = m["attr"]
    setters = [log for log in ctx.logs if log.site.path == site.path and log.last is not None
               and any(t.endswith("." + attr) for t in log.site.targets)]
    if len(setters) != 1 or setters[0].site.targets != (f"self.{attr}",) \
            or setters[0].site.scope.rsplit(".", 1)[0] != cls:
        return None
    log = setters[0]
    return f"self.{attr} from `{log.site.text}` at line {log.site.line} (in {log.site.scope})"


# -- expected shapes ---------------------------------------------------------

_GRAD_PREFIX = re.compile(r"^(?:dJ_?d|dL_?d|dE_?d|grad_?|d_?|g_)(?P<name>\w+)$")


def _expected_shapes(site: Site, known: dict[str, Value]) -> list[tuple[tuple[int, ...], str]]:
    """Shapes the result probably should have, strongest first, each with why: what the target was
    before, the parameter a gradient's name points at (dW2 -> W2), the parameter shapes in scope."""
    out = []
    for target in site.targets:
        if target in known and known[target].shape is not None:
            out.append((known[target].shape, f"what {target} was before"))
        key = target
        m = re.match(r"""^\w+\[["'](?P<key>\w+)["']\]$""", target)
        if m:
            key = m.group("key")
        g = _GRAD_PREFIX.match(key)
        if g:
            wanted = g.group("name").lower()
            for name, v in known.items():
                base = re.sub(r"""^\w+\[["'](\w+)["']\]$""", r"\1", name)
                if base.lower() == wanted and v.shape is not None:
                    out.append((v.shape, f"the shape of {name}"))
    return out


def _rank(candidates: list[Fix], expected, known: dict[str, Value], own: set) -> list[Fix]:
    """Order verified fixes: a shape the result should have first (`expected`), then the shape of some
    other array in scope (a parameter, usually), then the rest; each with why."""
    ranked = []
    for fx in candidates:
        score, why = (2, 0), fx.why
        for i, (shape, reason) in enumerate(expected):
            if fx.shape == shape:
                score, why = (0, i), reason
                break
        else:
            # Only when nothing says what the result should be, and only a matrix: a (4, 1) fix that
            # happens to have a bias's shape says nothing.
            shape = fx.shape or ()
            for name, v in known.items() if not expected and len(shape) >= 2 and min(shape) > 1 else ():
                if v.shape == shape and name not in own:
                    score, why = (1, 0), f"the shape of {name}"
                    break
        ranked.append((score, Fix(fx.expression, fx.shape, why)))
    ranked.sort(key=lambda r: r[0])
    seen, out = set(), []
    for _, fx in ranked:
        if fx.expression not in seen:
            seen.add(fx.expression)
            out.append(fx)
    return out[:3]


# -- text of a changed operation --------------------------------------------


def _transposed_text(spec: OperandSpec) -> str:
    if spec.text.endswith(".T") and spec.transposed:
        return spec.text[:-2]
    return _paren(spec.text) + ".T"


def _rebuild(site: Site, texts: list[str], swap: bool = False) -> str:
    """The site's expression with its operands replaced by `texts` (in operand order)."""
    if swap:
        texts = [texts[1], texts[0]] + texts[2:]
    if site.kind in ("binop", "compare"):
        return join(texts[0], site.op, texts[1])
    if site.kind == "augassign":
        return f"{texts[0]} {site.op} {texts[1]}"
    kw = "".join(f", {k}={v}" for k, v in site.keywords)
    if site.kind == "method":
        return f"{_paren(texts[0])}.{site.callee}({', '.join(texts[1:])}{kw})" if site.callee else site.text
    return f"{site.op}({', '.join(texts)}{kw})"


def _matmul_shape(site: Site, a, b):
    if site.kind in ("call", "method") and site.callee == "dot" or (site.op.startswith("*")):
        return _shapes.dot(a, b)
    return _shapes.matmul(a, b)


# -- the kinds of failure ----------------------------------------------------


def _matmul(crash: Crash, site: Site, vals, expected, known: dict[str, Value]) -> None:
    specs = list(site.operands)
    a, b = vals[0].shape, vals[1].shape
    na, nb = specs[0].text, specs[1].text
    if len(a) >= 1 and len(b) >= 1:
        inner_b = b[-2] if len(b) >= 2 else b[0]
        crash.explanation = (f"a matrix product needs the last axis of {na} {fmt(a)} to match the "
                             f"{'first' if len(b) == 2 else 'second-to-last' if len(b) > 2 else 'only'} axis of "
                             f"{nb} {fmt(b)}: {a[-1]} != {inner_b}")
    cands = []
    texts = [s.text for s in specs]
    variants = []
    for ta in (False, True):
        for tb in (False, True):
            for swap in (False, True):
                if not (ta or tb or swap):
                    continue
                sa = _shapes.transpose(a) if ta else a
                sb = _shapes.transpose(b) if tb else b
                if (ta and len(a) != 2) or (tb and len(b) != 2):
                    continue
                x, y = (sb, sa) if swap else (sa, sb)
                out = _matmul_shape(site, x, y)
                if out is None:
                    continue
                t = list(texts)
                if ta:
                    t[0] = _transposed_text(specs[0])
                if tb:
                    t[1] = _transposed_text(specs[1])
                variants.append((ta + tb + swap, Fix(_rebuild(site, t, swap), out)))
    variants.sort(key=lambda v: v[0])
    cands = [fx for _, fx in variants]
    crash.fixes = _rank(cands, expected, known, {s.name for s in specs if s.name})


def _broadcast(crash: Crash, site: Site, vals, expected, ctx: Context, known: dict[str, Value]) -> None:
    specs = site.operands
    arrays = [(s, v) for s, v in zip(specs, vals) if v.shape is not None and v.kind not in ("scalar", "tuple")]
    (sa, a), (sb, b) = arrays[0], arrays[1]
    n = max(len(a.shape), len(b.shape))
    pa = (1,) * (n - len(a.shape)) + tuple(a.shape)
    pb = (1,) * (n - len(b.shape)) + tuple(b.shape)
    bad = [i - n for i in range(n) if pa[i] != pb[i] and 1 not in (pa[i], pb[i])]
    axes = ", ".join(f"axis {ax}: {pa[ax]} vs {pb[ax]}" for ax in bad)
    crash.explanation = (f"numpy lines shapes up from the right and each axis must be equal or 1: "
                         f"{sa.text} {fmt(a.shape)} and {sb.text} {fmt(b.shape)} disagree ({axes})")
    if len(a.shape) != len(b.shape):
        short = sa if len(a.shape) < len(b.shape) else sb
        crash.explanation += f"; {short.text} has fewer axes, so numpy adds them on the left"
    i, j = specs.index(sa), specs.index(sb)
    cands = []
    first = []
    for k, (spec, v, other) in enumerate(((sa, a, b), (sb, b, a))):
        idx = (i, j)[k]
        hot = one_hot(spec, v, other, spec.text)
        if hot is not None:
            t = [s.text for s in specs]
            t[idx] = hot[0]
            first.append(Fix(_rebuild(site, t), _shapes.broadcast(hot[1], other.shape),
                             f"{spec.text} holds class labels: compare with one-hot labels {fmt(hot[1])}"))
            continue  # reshaping labels to a column would run, and be wrong
        if spec.name and spec.reduction_axis is not None and not spec.keepdims:
            kept = _kept(other.shape, spec.reduction_axis, v.shape)
            log = ctx.assignment(spec.name, site)
            if kept is not None and log is not None and log.site.text.endswith(")"):
                out = _shapes.broadcast(kept, other.shape)
                if out is not None:
                    first.append(Fix(f"{spec.name} = {log.site.text[:-1]}, keepdims=True) at line {log.site.line}",
                                     None, f"then {spec.name} is {fmt(kept)} and `{site.text}` -> {fmt(out)}"))
        options = []
        if len(v.shape) == 2:
            options.append((_shapes.transpose(v.shape), _transposed_text(spec)))
        if len(v.shape) == 1:
            options.append(((v.shape[0], 1), _paren(spec.text) + ".reshape(-1, 1)"))
            options.append(((1, v.shape[0]), _paren(spec.text) + ".reshape(1, -1)"))
        if spec.reduction_axis is not None and not spec.keepdims and spec.text.endswith(")"):
            kept = _kept(other.shape, spec.reduction_axis, v.shape)
            if kept is not None:
                options.append((kept, spec.text[:-1] + ", keepdims=True)"))
        for shape, text in options:
            out = _shapes.broadcast(shape, other.shape)
            if out is None:
                continue
            t = [s.text for s in specs]
            t[idx] = text
            cands.append(Fix(_rebuild(site, t), out))
    # A fix that keeps the result no bigger than the larger operand is what was meant, nearly always;
    # and without other evidence, changing the right operand (`z + b.T`) beats changing the left.
    biggest = max(_shapes.prod(a.shape), _shapes.prod(b.shape))
    cands = [c for c in cands if _shapes.prod(c.shape) <= biggest]
    cands.reverse()
    if any("one-hot" in fx.why for fx in first):
        cands = []  # transposing the scores against class labels would run, and mean nothing
    crash.fixes = (first + _rank(cands, expected, known, {s.name for s in specs if s.name}))[:3]


def _kept(full: tuple[int, ...] | None, axis: int, reduced: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape a reduction would have had with keepdims=True, inferred from the reduced shape."""
    if full is None:
        return None
    n = len(reduced) + 1
    ax = axis % n
    return tuple(reduced[:ax]) + (1,) + tuple(reduced[ax:])


def _inplace(crash: Crash, site: Site, vals, ctx: Context, known: dict[str, Value]) -> None:
    (st, sv), (t, v) = site.operands, vals
    out = _shapes.broadcast(t.shape, v.shape)
    what = f"would broadcast it to {fmt(out)}" if out is not None else "does not broadcast with it at all"
    crash.explanation = (f"an in-place operation keeps {st.text}'s shape {fmt(t.shape)}, and {sv.text} "
                         f"{fmt(v.shape)} {what}")
    target, value = tuple(t.shape), tuple(v.shape)
    cands = []
    # A transposed gradient first: its shape is exactly the parameter's, reversed.
    if len(value) == 2 and value != target and _shapes.transpose(value) == target:
        cands.append(Fix(f"{st.text} {site.op} {_transposed_text(sv)}", target))
    # The same values laid out as a column or a row (never a reshape that would scramble a matrix).
    vectors = sum(d > 1 for d in value) <= 1 and sum(d > 1 for d in target) <= 1
    if vectors and value != target and _shapes.prod(value) == _shapes.prod(target) and not cands:
        new = "-1, 1" if target[-1:] == (1,) and len(target) == 2 else "1, -1" if target[:1] == (1,) else dims(target)
        cands.append(Fix(f"{st.text} {site.op} {_paren(sv.text)}.reshape({new})", target))
    # A batch axis too many: summing over it leaves exactly the parameter's elements.
    grad = sv.name or _scaled_name(sv.text)
    forgotten = reduction_forgotten(grad, site, ctx, st.text)
    if gradient_of_another(grad, st.text) and not cands:
        crash.explanation += f"; {grad} looks like the gradient of another parameter than {st.text}"
        prefix = grad[:len(grad) - len(re.match(_GRADIENT_OF, grad).group("of"))]
        own = prefix + re.sub(r"^.*[.\[]|['\"\]]", "", st.text)
        if own in known and known[own].shape is not None and tuple(known[own].shape) == target:
            swapped = re.sub(rf"\b{re.escape(grad)}\b", own, sv.text)
            cands.append(Fix(f"{st.text} {site.op} {swapped}", target,
                             f"{own} is the gradient of {st.text}"))
    for axis, size in enumerate(value if forgotten else ()):
        for keep in (len(value) == len(target), False):
            r = _shapes.reduce(value, axis, keep)
            if size > 1 and r is not None and _shapes.prod(r) == _shapes.prod(target) and \
                    _shapes.broadcast(target, r) == target:
                k = ", keepdims=True" if keep else ""
                cands.append(Fix(f"{st.text} {site.op} np.sum({sv.text}, axis={axis}{k})", target,
                                 f"if axis {axis} runs over the examples of the batch"))
                break
    crash.fixes = cands[:3]


def _reshape(crash: Crash, site: Site, vals, expected, known: dict[str, Value]) -> None:
    recv, args = _calls.call_operands(site, vals)
    base = recv if recv is not None and recv.is_array else (args[0] if args else None)
    dims_ = _calls._dims(args if recv is not None and recv.is_array else args[1:])
    if base is None or base.shape is None or dims_ is None:
        return
    size = _shapes.prod(base.shape)
    need = _shapes.prod(d for d in dims_ if d != -1)
    spec = site.operands[0]
    if -1 in dims_:
        crash.explanation = (f"{spec.text} has {size} elements, which {fmt(dims_)} cannot hold: {size} is not "
                             f"a multiple of {need}")
    else:
        crash.explanation = f"{spec.text} {fmt(base.shape)} has {size} elements; {fmt(dims_)} needs {need}"
    label_column = len(base.shape) == 2 and base.shape[1] - 1 == _shapes.prod(d for d in dims_[1:] if d != -1) \
        and dims_[0] in (-1, base.shape[0])
    if size - need == 1 or label_column:
        crash.explanation += " (one value too many per example: is a label or bias column still attached?)"
    cands = []
    for i in range(len(dims_)):
        new = tuple(-1 if k == i else d for k, d in enumerate(dims_))
        out = _shapes.reshape(base.shape, new)
        if out is not None:
            cands.append(Fix(f"{_paren(spec.text)}.reshape({dims(new)})", out))
    if size - need == 1 and -1 not in dims_ and len(base.shape) == 1:
        # Kaggle-style rows carry their label in front: drop it.
        cands.insert(0, Fix(f"{spec.text}[1:].reshape({dims(dims_)})", tuple(dims_),
                            "if the extra value is a label in front"))
    elif label_column:
        out = _shapes.reshape((base.shape[0], base.shape[1] - 1), dims_)
        cands.insert(0, Fix(f"{spec.text}[:, 1:].reshape({dims(dims_)})", out,
                            "if the first column is the label"))
    crash.fixes = _rank(cands, expected, known, {spec.name} if spec.name else set())


def _pandas(crash: Crash, site: Site, vals, f: Failure, ctx: Context) -> None:
    specs = site.operands
    pairs = list(zip(specs, vals))
    pandas = [(s, v) for s, v in pairs if v.is_pandas]
    arrays = [(s, v) for s, v in pairs if v.kind in ("ndarray", "matrix")]
    ps, pv = pandas[0]
    if not arrays:
        crash.explanation = (f"{ps.text} is a pandas {pv.kind}: pandas aligns operands on their labels, "
                             f"not their positions")
        return
    as_, av = arrays[0]
    crash.explanation = (f"{ps.text} is a pandas {pv.kind} {fmt(pv.shape)} and {as_.text} a numpy array "
                         f"{fmt(av.shape)}: pandas does not broadcast like numpy; it computes with the values "
                         f"and then has to label the result with {ps.text}'s {pv.shape[0]} index labels, "
                         f"which a result of this shape does not fit")
    if pv.kind == "DataFrame" and av.shape is not None and len(av.shape) == 1 and av.shape[0] != pv.shape[1]:
        crash.explanation = (f"{ps.text} is a pandas DataFrame {fmt(pv.shape)} and {as_.text} a numpy array "
                             f"{fmt(av.shape)}: pandas lines a 1-D array up with the DataFrame's "
                             f"{pv.shape[1]} column{'s' if pv.shape[1] != 1 else ''}, not its {pv.shape[0]} rows")
    texts = [s.text for s in specs]
    i = specs.index(ps)
    cands = []
    t = list(texts)
    if site.kind in ("binop", "compare"):
        for text, shape, out, why in numpy_versions(site, i, pv, av):
            t[i] = text
            cands.append(Fix(_rebuild(site, t), out, why))
            origin = ctx.assignment(ps.name, site) if ps.name else None
            if origin is not None and not why:
                tail = text[len(f"{_paren(ps.text)}.to_numpy()"):]
                cands.append(Fix(f"{ps.name} = {_paren(origin.site.text)}.to_numpy(){tail} at line "
                                 f"{origin.site.line}", shape, "convert once, where it is made"))
    elif is_matmul(site, vals):
        out = _matmul_shape(site, pv.shape, av.shape) if i == 0 else _matmul_shape(site, av.shape, pv.shape)
        if out is not None:
            cands.append(Fix(_rebuild(site, t), out))
    crash.fixes = cands[:3]


def _attribute_error(crash: Crash, site: Site, f: Failure, ctx: Context) -> Crash:
    """`y.reshape(-1, 1)` or `data["sales"].reshape(-1, 1)` on a pandas object: the receiver (whatever
    expression it is) as the error held it, and the numpy call on `.to_numpy()`, checked."""
    import numpy as np

    spec = site.operands[0]
    rv = f.receiver
    crash.operands = (_operand(spec, rv, site, ctx),)
    if not rv.is_pandas:
        crash.explanation = f"{spec.text} is {rv.kind if rv.kind != 'other' else rv.type_name}, which has no " \
                            f"method {site.callee}"
        return crash
    what = f"{spec.text} is a pandas {rv.kind} {fmt(rv.shape)}"
    if not callable(getattr(np.ndarray, site.callee or "", None)):
        crash.explanation = f"{what}: it has no `.{site.callee}`, and a numpy array has none either"
        return crash
    crash.explanation = f"{what}, not a numpy array: it has no `.{site.callee}`, which is a numpy method"
    args = ", ".join([s.text for s in site.operands[1:]] + [f"{k}={v}" for k, v in site.keywords])
    expr = f"{_paren(spec.text)}.to_numpy().{site.callee}({args})"
    shape = _on_array(site, rv)
    if shape is False:
        crash.explanation += (f"; `{expr}` would fail too: numpy refuses this call on a {fmt(rv.shape)} "
                              f"array")
        return crash
    if not _compiles(expr):
        return crash
    crash.fixes = [Fix(expr, shape)]
    origin = ctx.assignment(spec.name, site) if spec.name else None
    if origin is not None:
        crash.fixes.append(Fix(f"{spec.name} = {_paren(origin.site.text)}.to_numpy()", rv.shape,
                               f"convert once, at line {origin.site.line}"))
    return crash


def _on_array(site: Site, rv: Value):
    """The shape of the method call on the receiver as a numpy array: a shape, None when the shape
    algebra does not know the method, or False when numpy would refuse."""
    vals = [Value("ndarray", rv.shape, rv.dtype)]
    for s in site.operands[1:]:
        lit = _literal_int(s.text)
        if isinstance(lit, int) and not isinstance(lit, bool):
            vals.append(Value("scalar", (), "int", literal=lit))
        elif isinstance(lit, tuple) and all(isinstance(d, int) for d in lit):
            vals.append(Value("tuple", (len(lit),), literal=lit))
        else:
            vals.append(Value("other", None))
    shape, error = _calls.result_of_call(site, tuple(vals))
    return False if error else shape


def _literal_int(text: str):
    try:
        import ast

        return ast.literal_eval(text)
    except Exception:
        return None


def _upstream(crash: Crash, site: Site, rec: Record, ctx: Context, findings: list[Finding]) -> None:
    """Was an operand already wrong, made so by an earlier silent finding of any rule (an outer broadcast,
    an inner product meant as an outer one, labels made rank-1 at a shared root)?  Then say where, and
    offer the fix there under which this operation works too, checked by replaying the recorded shapes."""
    flagged: dict[int, Finding] = {}
    for f in findings:
        if f.severity != "info":
            flagged.setdefault(f.site.id, f)
            if f.site.value_of is not None:
                flagged.setdefault(f.site.value_of, f)  # an assignment's finding (SC103) is its value's too
    if not flagged:
        return
    for sid in _feeding(site, ctx):
        finding = flagged.get(sid)
        if finding is None:
            continue
        before = [v.shape for v in rec.operands]
        for where, override, corrected, because in _corrections(finding, sid, ctx):
            flow = _Flow(ctx, {override: corrected})
            after = [flow.operand(site, i) or shape for i, shape in enumerate(before)]
            if after == before or _INVALID in after or _UNKNOWN in after:
                continue
            out = _result_with(site, after)
            if out is None:
                continue
            i = next(i for i, (x, y) in enumerate(zip(before, after)) if x != y)
            name = site.operands[i].text
            said = f"{name} is {fmt(before[i])} because {because}"
            crash.explanation = f"{crash.explanation}; {said}" if crash.explanation else said
            # A sum would fit the shapes of an operand an outer broadcast made, and mean nothing.
            crash.fixes = [Fix(where, None, f"then {name} is {fmt(after[i])} and `{site.text}` -> {fmt(out)}")] + \
                [fx for fx in crash.fixes if "np.sum(" not in fx.expression]
            return


_FIX_SHAPE = re.compile(r"^(?P<expr>.+?) -> (?P<shape>\((?:\d+(?:, \d+)*,?)?\))(?:\s+\(.*\))?$")


def _corrections(finding: Finding, sid: int, ctx: Context):
    """(fix as shown, site whose result it changes, the new result shape, why the operand is wrong) for
    an earlier finding: its shared root first, then the rewrite of its own line."""
    import ast

    root = finding.root
    if root is not None and root.origin is not None:
        yield (root.fix.rsplit(" -> ", 1)[0], root.origin, root.fixed_shape,
               f"{root.name} became {fmt(root.shape)} at line {root.line} (`{root.name} = {root.statement}`), "
               f"the root cause of {len(root.members)} findings")
    log = ctx.by_id.get(sid)
    if log is None or log.last is None:
        return
    fs = finding.site
    if finding.code == "SC101" and sid == fs.id and len(log.last.operands) == 2:
        a, b = log.last.operands
        for expr, corrected, _ in rank_outer_fixes(fs, a, b, outer_fixes(fs, a, b)):
            yield (f"{expr} at line {fs.line}", sid, corrected,
                   f"`{fs.text}` at line {fs.line} broadcast {fmt(a.shape)} against {fmt(b.shape)} (SC101)")
        return
    # Any rule: a fix written as `<the whole expression, rewritten> -> (shape)` replaces this site's result.
    m = _FIX_SHAPE.match((finding.fix or "").rsplit("here only: ", 1)[-1])
    if m is None or sid != fs.id:
        return
    try:
        node = ast.parse(m["expr"], mode="eval").body
    except SyntaxError:
        return
    kinds = {"binop": ast.BinOp, "compare": ast.Compare, "call": ast.Call, "method": ast.Call}
    if not isinstance(node, kinds.get(fs.kind, ())):
        return
    yield (f"{m['expr']} at line {fs.line}", sid, ast.literal_eval(m["shape"]),
           f"of `{fs.text}` at line {fs.line} ({finding.code}, reported above)")


_INVALID = ("invalid",)  # a shape flow in which some operation would fail
_UNKNOWN = ("unknown",)  # a shape the algebra cannot tell (an operation it does not model)
_MAX_HOPS = 8


def _name_in(spec: OperandSpec) -> tuple[str, bool] | None:
    """The variable an operand is, give or take a scalar factor and a transpose: `dw`, `0.1 * dw`, `X.T`."""
    if spec.name:
        return spec.name, False
    import ast

    try:
        node = ast.parse(spec.text.strip(), mode="eval").body
    except SyntaxError:
        return None
    transposed = False
    while True:
        if isinstance(node, ast.BinOp) and isinstance(node.left, ast.Constant):
            node = node.right
        elif isinstance(node, ast.BinOp) and isinstance(node.right, ast.Constant):
            node = node.left
        elif isinstance(node, ast.Attribute) and node.attr == "T":
            transposed, node = not transposed, node.value
        elif isinstance(node, ast.UnaryOp):
            node = node.operand
        else:
            break
    if isinstance(node, ast.Name):
        return node.id, transposed
    scaled = _scaled_name(spec.text)  # `eta * nabla_w`: a learning rate times a gradient
    return (scaled, False) if scaled else None


def _sources(site: Site, ctx: Context):
    """The sites whose results flow into `site`'s operands: operand sites, and the assignments of names."""
    for spec in site.operands:
        if spec.child is not None:
            yield spec.child
        named = _name_in(spec)
        if named is not None:
            log = ctx.assignment(named[0], site)
            if log is not None and log.site.id != site.id:
                yield log.site.value_of if log.site.kind == "assign" and log.site.value_of is not None \
                    else log.site.id
                ret = ctx.returned(log) if log.site.kind == "assign" and log.site.value_of is None else None
                if ret is not None:
                    yield ret.site.id  # `delta = self.cost_derivative(out, y)`: what it returned


def _feeding(site: Site, ctx: Context):
    """Sites upstream of `site`, nearest first, within a few hops."""
    seen = {site.id}
    frontier = [site]
    for _ in range(_MAX_HOPS):
        nxt = []
        for s in frontier:
            for sid in _sources(s, ctx):
                if sid not in seen and sid in ctx.by_id:
                    seen.add(sid)
                    yield sid
                    nxt.append(ctx.by_id[sid].site)
        frontier = nxt


class _Flow:
    """Shapes as they would be if some sites gave other results: replayed on the recorded operands."""

    def __init__(self, ctx: Context, override: dict[int, tuple[int, ...]]):
        self.ctx = ctx
        self.override = dict(override)
        self.memo: dict[int, object] = {}

    def site(self, sid: int, hops: int = 0):
        """The new result shape of a site, None if unchanged, _INVALID if it would fail."""
        if sid in self.override:
            return self.override[sid]
        if sid in self.memo or hops > _MAX_HOPS:
            return self.memo.get(sid)
        self.memo[sid] = None  # cycles (a name updated from itself) count as unchanged
        log = self.ctx.by_id.get(sid)
        if log is None or log.last is None:
            return None
        if log.site.kind == "assign":
            ret = self.ctx.returned(log) if log.site.value_of is None else None
            source = log.site.value_of if log.site.value_of is not None else ret.site.id if ret else None
            out = self.site(source, hops + 1) if source is not None else None
        else:
            shapes = [self.operand(log.site, i, hops) for i in range(len(log.site.operands))]
            if _INVALID in shapes:
                out = _INVALID
            elif _UNKNOWN in shapes:
                out = _UNKNOWN
            elif all(x is None for x in shapes):
                out = None
            else:
                values = self.record(log).operands
                full = [x if x is not None else v.shape for x, v in zip(shapes, values)]
                out = self.result(log.site, full, values)
        self.memo[sid] = out
        return out

    def record(self, log):
        """The record whose shapes stand for the ones not changed: the site's latest run."""
        return log.last

    def result(self, site: Site, shapes, values):
        """The result shape of `site` with these operand shapes; _INVALID if it would fail or is not known."""
        return _result_with(site, shapes) or _INVALID

    def operand(self, site: Site, i: int, hops: int = 0):
        spec = site.operands[i]
        if spec.child is not None:
            return self.site(spec.child, hops + 1)
        named = _name_in(spec)
        if named is None:
            # An expression that was not recorded (`(y > 0) | (y < -1)`): unchanged only if no name it reads
            # changed.
            for n in _names(spec.text):
                log = self.ctx.assignment(n, site)
                if log is not None and log.site.id != site.id and self.site(log.site.id, hops + 1) is not None:
                    return _UNKNOWN
            return None
        log = self.ctx.assignment(named[0], site)
        if log is None or log.site.id == site.id:
            return None
        out = self.site(log.site.id, hops + 1)
        if out is not None and out is not _INVALID and out is not _UNKNOWN and named[1]:
            out = _shapes.transpose(out)
        return out


def _names(text: str) -> set[str]:
    import ast

    try:
        return {n.id for n in ast.walk(ast.parse(text.strip(), mode="eval")) if isinstance(n, ast.Name)}
    except SyntaxError:
        return set()


def _result_with(site: Site, shapes) -> tuple[int, ...] | None:
    """What the operation gives with these operand shapes (None when it would fail or is not known)."""
    if len(shapes) < 2 or any(x is None for x in shapes[:2]):
        return None
    a, b = shapes[0], shapes[1]
    if site.kind == "augassign":
        return tuple(a) if _shapes.broadcast(a, b) == tuple(a) else None
    if site.kind in ("binop", "compare"):
        return _shapes.matmul(a, b) if site.op == "@" else _shapes.broadcast(a, b)
    if site.kind in ("call", "method") and site.callee == "dot":
        return _shapes.dot(a, b)
    if site.kind in ("call", "method") and site.callee == "matmul":
        return _shapes.matmul(a, b)
    if site.kind in ("call", "method") and site.callee in _calls.ELEMENTWISE_N:
        return _shapes.broadcast(a, b)
    return None


# -- the note ---------------------------------------------------------------


def note(crash: Crash) -> str:
    """The PEP 678 note: the explanation in a few lines, under the traceback Python prints."""
    from ._render import flat, no_fix  # one-line source text, and the report's advice when no fix was found

    lines = [f"{NOTE_MARK} `{flat(crash.expression or '')}` at {crash.path}:{crash.line}"]
    width = max((len(flat(o.text)) for o in crash.operands), default=0)
    for o in crash.operands:
        desc = f"{o.kind} {fmt(o.shape)}" if o.shape is not None else o.kind
        if o.dtype and o.kind not in ("scalar",):
            desc += f" {o.dtype}"
        lines.append(f"  {flat(o.text).ljust(width)}  {desc}" + (f"  {flat(o.origin)}" if o.origin else ""))
    if crash.explanation:
        lines.append(textwrap.fill(f"cause: {flat(crash.explanation)}", 100, initial_indent="  ",
                                   subsequent_indent="         "))
    for i, fx in enumerate(crash.fixes):
        lines.append(f"  {'fix:  ' if i == 0 else '      '} {flat(str(fx))}")

    advice = no_fix(crash)
    if advice:
        lines.append(textwrap.fill(f"fix:   {advice}", 100, initial_indent="  ", subsequent_indent="         "))
    return "\n".join(lines)
