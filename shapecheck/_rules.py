"""The rules: pure functions from what was recorded at a site to findings.

Each rule has a stable code, a severity, a one-line message naming the
expression and the shapes, and a fix that shape algebra says works.  A rule
that is unsure stays quiet or says `info`: a false alarm costs the reader's
trust in every other line of the report.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

from . import _calls, _numerics, _shapes
from ._events import OperandSpec, Record, Site, SiteLog, Value
from ._report import Finding, operands_of, rank
from ._shapes import fmt

ELEMENTWISE = frozenset({"binop", "compare"})


class Context:
    """Lookups across sites that some rules and the explainer need: where did a name get its value?"""

    def __init__(self, logs: list[SiteLog]):
        self.logs = logs
        self.by_id = {log.site.id: log for log in logs}
        # (path, scope) -> {parameter: (argument text, calling site)}: a failing function's parameters
        # as its caller passed them, read from the traceback (so provenance crosses the call).
        self.bound: dict[tuple[str, str], dict[str, tuple[str, Site]]] = {}
        self._assigned: dict[tuple[str, str, str], list[SiteLog]] = {}
        self._at_line: dict[tuple[str, int], list[SiteLog]] = {}
        self._returned: dict[int, SiteLog | None] = {}
        for log in logs:
            for t in log.site.targets:
                self._assigned.setdefault((log.site.path, log.site.scope, t), []).append(log)
            self._at_line.setdefault((log.site.path, log.site.line), []).append(log)
        self._paths = sorted({log.site.path for log in logs})

    def assignment(self, name: str, site: Site, before_line: int | None = None) -> SiteLog | None:
        """The assignment that gave `name` its value as seen at `site`: the nearest one above it in the
        same scope that ran, else the last one in the scope (a value carried round a loop)."""
        line = site.line if before_line is None else before_line
        for scope in (site.scope, "<module>"):
            ran = [log for log in self._assigned.get((site.path, scope, name), ()) if log.last is not None]
            if ran:
                earlier = [log for log in ran if log.site.line < line]
                return max(earlier or ran, key=lambda log: log.site.line)
            passed = self.bound.get((site.path, site.scope), {}).get(name) if scope == site.scope else None
            if passed is not None and passed[0].isidentifier() and passed[1] is not site:
                return self.assignment(passed[0], passed[1])
        return None

    def assigned_in_scope(self, name: str, site: Site) -> bool:
        """Was `name` assigned in `site`'s own scope above it (not only passed in as a parameter)?"""
        return any(log.last is not None and log.site.line < site.line
                   for log in self._assigned.get((site.path, site.scope, name), ()))

    def returned(self, log: SiteLog) -> SiteLog | None:
        """For `delta = self.cost_derivative(out, y)`: the recorded operation the called function of the
        user's returned (`return out - y`), when it has one `return` and it was recorded."""
        key = log.site.id
        if key not in self._returned:
            self._returned[key] = self._find_returned(log)
        return self._returned[key]

    def _find_returned(self, log: SiteLog) -> SiteLog | None:
        import ast

        try:
            call = ast.parse(log.site.text.strip(), mode="eval").body
        except SyntaxError:
            return None
        if not isinstance(call, ast.Call):
            return None
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
        found = []
        for path in self._paths:
            for fn in _functions(path, name):
                returns = [n for n in ast.walk(fn) if isinstance(n, ast.Return) and n.value is not None]
                if len(returns) == 1:
                    value = returns[0].value
                    found += [lg for lg in self._at_line.get((path, value.lineno), ())
                              if lg.site.col == value.col_offset + 1 and lg.site.kind != "assign"
                              and lg.last is not None]
        return found[0] if len(found) == 1 else None

    def value(self, log: SiteLog) -> Value | None:
        """What an assignment site assigned the last time it ran."""
        return log.last.result if log.last is not None else None

    def origin(self, name: str, site: Site, depth: int = 2) -> str | None:
        """`from `a2.T` at line 41, itself `relu(z2)` (240, 10) at line 40` for an operand name."""
        log = self.assignment(name, site)
        parts = []
        while log is not None and len(parts) < depth:
            value = self.value(log)
            shape = f" {fmt(value.shape)}" if parts and value is not None and value.shape is not None else ""
            parts.append(f"`{log.site.text}`{shape} at line {log.site.line}")
            ret = self.returned(log) if log.site.kind == "assign" else None
            if ret is not None and ret.last.result is not None and ret.last.result.shape is not None:
                parts[-1] += f", which returned `{ret.site.text}` {fmt(ret.last.result.shape)} at line {ret.site.line}"
                break
            if not _mentions(log.site.text, name):
                break
            log = self.assignment(name, log.site, before_line=log.site.line)
        return "from " + ", itself ".join(parts) if parts else None


_TREES: dict[str, object] = {}  # path -> its parsed module (None: unreadable)
_DEFS: dict[str, dict[str, list]] = {}  # path -> function name -> its definitions


def _functions(path: str, name: str | None) -> list:
    """The function definitions called `name` in a user's file (parsed and indexed once per file, only
    when asked: a report asks for many names, and a pytest session for many files)."""
    import ast

    if name is None:
        return []
    if path not in _DEFS:
        import warnings

        defs: dict[str, list] = {}
        try:
            with open(path, "rb") as fh, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # its compile-time warnings were the user's when it ran
                tree = ast.parse(fh.read())
        except (OSError, SyntaxError, ValueError):
            tree = None
        _TREES[path] = tree
        for n in ast.walk(tree) if tree is not None else ():
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defs.setdefault(n.name, []).append(n)
        _DEFS[path] = defs
    return _DEFS[path].get(name, [])


def _mentions(text: str, name: str) -> bool:
    """Does the expression read the variable `name` (not a string or an attribute that looks like it), or
    the item or attribute `name` names (`params["b1"]`, `self.b`)?"""
    import ast

    try:
        tree = ast.parse(text.strip(), mode="eval")
        want = None if name.isidentifier() else ast.dump(ast.parse(name.strip(), mode="eval").body)
    except SyntaxError:
        return False
    if want is None:
        return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(tree))
    return any(isinstance(n, (ast.Subscript, ast.Attribute)) and ast.dump(n) == want for n in ast.walk(tree))


def _paren(text: str) -> str:
    """`(y - y_hat)` where an operand must be parenthesised before `.T` or `.reshape`."""
    import ast

    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return f"({text})"
    atomic = (ast.Name, ast.Attribute, ast.Subscript, ast.Call, ast.Constant, ast.List, ast.Tuple, ast.Dict)
    if isinstance(node, atomic) or (text.startswith("(") and text.endswith(")") and _closes_at_end(text)):
        return text
    return f"({text})"


_PRECEDENCE = {"**": 14, "*": 12, "@": 12, "/": 12, "//": 12, "%": 12, "+": 11, "-": 11, "<<": 10, ">>": 10,
               "&": 9, "^": 8, "|": 7}
_COMPARE = 6  # ==, <, in, is ... (all one level); `not` 5, `and` 4, `or` 3, if-else 2, lambda 1


def _level(node) -> int:
    import ast

    if isinstance(node, ast.BinOp):
        return _PRECEDENCE.get(ast.unparse(ast.BinOp(ast.Name("a"), node.op, ast.Name("b"))).split()[1], 0)
    if isinstance(node, ast.UnaryOp):
        return 5 if isinstance(node.op, ast.Not) else 13
    if isinstance(node, ast.Compare):
        return _COMPARE
    if isinstance(node, ast.BoolOp):
        return 4 if isinstance(node.op, ast.And) else 3
    if isinstance(node, (ast.IfExp, ast.Lambda, ast.NamedExpr)):
        return 1
    return 99


def join(left: str, op: str, right: str) -> str:
    """`left op right` with an operand parenthesised where Python's precedence would regroup it:
    `(y_pred > 0.5) == y`, not the chained comparison `y_pred > 0.5 == y`."""
    import ast

    if op.endswith("=") and op not in ("==", "!=", "<=", ">="):
        return f"{left} {op} {right}"  # an augmented assignment: a statement, its sides never regroup
    level = _PRECEDENCE.get(op, _COMPARE)
    texts = []
    for i, text in enumerate((left, right)):
        try:
            node = ast.parse(text.strip(), mode="eval").body
        except SyntaxError:
            texts.append(text)
            continue
        own = _level(node)
        # left-associative, except ** (right-associative) and comparisons (which chain)
        weak = own < level or (own == level and (i == 1) != (op == "**")) or (own == level == _COMPARE)
        texts.append(f"({text})" if weak and own != 99 else text)
    return f"{texts[0]} {op} {texts[1]}"


def _closes_at_end(text: str) -> bool:
    """`(a - b)` but not `(a) - (b)`: the first parenthesis closes at the very end."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i == len(text) - 1
    return False


def dims(shape) -> str:
    """A shape as reshape's arguments: `3` or `3, 1`."""
    return ", ".join(str(d) for d in shape)


def _is_vector_like(shape) -> bool:
    return shape is not None and (len(shape) == 1 or (len(shape) == 2 and 1 in shape))


# -- SC101 ------------------------------------------------------------------


def outer_broadcast(site: Site, rec: Record, ctx: Context) -> Finding | None:
    """SC101: broadcasting stretched both operands, so the result is bigger than either."""
    if site.kind not in ELEMENTWISE or site.op == "@" or rec.result is None or len(rec.operands) != 2:
        return None
    a, b = rec.operands
    if not (a.kind in ("ndarray", "matrix") and b.kind in ("ndarray", "matrix")) or "matrix" in (a.kind, b.kind):
        return None
    if (a.size or 0) <= 1 or (b.size or 0) <= 1:
        return None  # scalars and one-element arrays broadcast as intended
    r = rec.result.shape
    if not (_shapes.stretched(a.shape, r) and _shapes.stretched(b.shape, r)):
        return None
    sa, sb = site.operands
    assumed = None
    same_vectors = _is_vector_like(a.shape) and _is_vector_like(b.shape) and _shapes.prod(a.shape) == _shapes.prod(b.shape)
    if site.explicit or sa.explicit or sb.explicit:
        severity, why = "info", "the expression spells the outer broadcast out, so it is probably intended"
    elif sa.text.removesuffix(".T") == sb.text.removesuffix(".T"):
        severity, why = "info", "an array against its own transpose: probably an intended pairwise table"
    elif (sa.shaped_from and sa.shaped_from == sb.name) or (sb.shaped_from and sb.shaped_from == sa.name):
        col, row = (sa, sb) if sa.shaped_from == sb.name else (sb, sa)
        severity, why = "info", f"{col.text} is {row.text} reshaped: probably an intended pairwise table"
    elif same_vectors:
        severity, why = "warning", None
    elif assumed := _assumed_shape(sa, a, b, r) or _assumed_shape(sb, b, a, r):
        severity, why = "warning", None
    elif sa.shaped_by_name or sb.shaped_by_name:
        severity, why = "info", "the operands were shaped on purpose where they were assigned"
    else:
        severity, why = "warning", None
    msg = (f"`{site.text}` stretches both operands: {sa.text} {fmt(a.shape)} and {sb.text} {fmt(b.shape)} "
           f"broadcast to {fmt(r)}, so {_meeting(sa, a, sb, b, r)}")
    if severity == "warning" and assumed:
        spec, v, other = assumed
        log = ctx.assignment(spec.name, site)
        where = f" by `{log.site.text}` at line {log.site.line}" if log is not None else ""
        msg += (f"; {spec.text} was reshaped{where}, which assumed a shape it did not have: it now has "
                f"{len(v.shape)} axes, more than {_other_text(site, spec)}'s {len(other.shape)}")
    rank1 = [(spec, v) for spec, v in ((sa, a), (sb, b)) if len(v.shape) == 1]
    if rank1 and severity == "warning":
        spec, v = rank1[0]
        msg += f"; {spec.text} is rank-1 {fmt(v.shape)}, which numpy treats as a row {fmt((1,) + v.shape)}"
    if why:
        msg += f" ({why})"
    fix = _outer_fix(site, a, b) if severity == "warning" else None
    if severity == "warning" and assumed:
        fix = _assumed_fix(site, *assumed) or fix
    return Finding("SC101", severity, site, operands_of(site, rec), r, msg, fix, rec.count)


def _meeting(sa: OperandSpec, a: Value, sb: OperandSpec, b: Value, r) -> str:
    """What the broadcast pairs up: all with all only when the operands' axes are disjoint."""
    n = len(r)
    pa = (1,) * (n - len(a.shape)) + tuple(a.shape)
    pb = (1,) * (n - len(b.shape)) + tuple(b.shape)
    if all(x == 1 or y == 1 for x, y in zip(pa, pb)):
        return "every element of one meets every element of the other"
    total = _shapes.prod(r)
    return f"numpy repeats {sa.text} {total // a.size} times and {sb.text} {total // b.size} times to fill it"


def _other_text(site: Site, spec: OperandSpec) -> str:
    return next(s.text for s in site.operands if s is not spec)


def _assumed_shape(spec: OperandSpec, v: Value, other: Value, r) -> tuple | None:
    """`gamma = np.expand_dims(gamma, (0, -1, -2))` on a gamma that already had those axes: a name reshaped
    from its own incoming value (a parameter, whose shape the function assumed) that then outgrows
    the array it meets by two axes or more.  An intended table adds one axis to the data it meets."""
    if not (spec.shaped_by_name and spec.name and spec.shaped_from == spec.name):
        return None
    if len(other.shape) >= 2 and len(v.shape) > len(other.shape) and len(r) >= len(other.shape) + 2:
        return spec, v, other
    return None


def _assumed_fix(site: Site, spec: OperandSpec, v: Value, other: Value) -> str | None:
    """Give the reshaped operand the other's number of axes, its sizes where the other has them."""
    sizes = [d for d in v.shape if d != 1]
    n = len(other.shape)
    new, k = [1] * n, 0
    for d in sizes:
        while k < n and other.shape[k] != d:
            k += 1
        if k == n:
            return None
        new[k] = d
        k += 1
    if _shapes.broadcast(tuple(new), other.shape) != tuple(other.shape):
        return None
    texts = [f"{s.text}.reshape({dims(new)})" if s is spec else s.text for s in site.operands]
    return f"{join(texts[0], site.op, texts[1])} -> {fmt(other.shape)}"


def outer_fixes(site: Site, a: Value, b: Value) -> list[tuple[str, tuple[int, ...], int]]:
    """Rewrites of an outer-broadcasting operation that make both operands line up, verified by
    broadcasting: (expression, result shape, index of the operand that changed)."""
    sa, sb = site.operands
    out = []
    for i, (spec, v, other) in enumerate(((sa, a, b), (sb, b, a))):
        if len(v.shape) == 1 and len(other.shape) == 2:
            new = (v.shape[0], 1) if other.shape[0] == v.shape[0] else (1, v.shape[0])
            call = ".reshape(-1, 1)" if new[1] == 1 else ".reshape(1, -1)"
            text = _paren(spec.text) + call
        elif len(v.shape) == 2 and len(other.shape) == 2:
            new = _shapes.transpose(v.shape)
            text = spec.text.removesuffix(".T") if spec.transposed else _paren(spec.text) + ".T"
        else:
            continue
        res = _shapes.broadcast(new, other.shape)
        if res is not None and not _shapes.stretched(other.shape, res) and res == other.shape:
            expr = join(text, site.op, sb.text) if i == 0 else join(sa.text, site.op, text)
            out.append((expr, res, i))
    return out


# Patterns are compiled at their first use (by re's cache), not at import: a clean run never needs most.
LABELS = r"^(y|Y|t|T|labels?|targets?|truth|gt)(_\w*)?$|^(y|Y)\w{0,3}$"


def rank_outer_fixes(site: Site, a: Value, b: Value, fixes):
    """Order the rewrites of an outer broadcast: never change the parameter of its own update
    (`W2 = W2 - lr * dW2`), prefer reshaping a rank-1 operand, then changing the labels."""
    ops = (a, b)
    fixes = [f for f in fixes if site.operands[f[2]].text not in site.targets]
    return sorted(fixes, key=lambda f: (len(ops[f[2]].shape) != 1,
                                        not re.match(LABELS, site.operands[f[2]].name or "")))


def _outer_fix(site: Site, a: Value, b: Value) -> str | None:
    fixes = rank_outer_fixes(site, a, b, outer_fixes(site, a, b))
    if not fixes:
        return "give both operands the same shape before this operation"
    expr, res, _ = fixes[0]
    return f"{expr} -> {fmt(res)}"


# -- SC102 ------------------------------------------------------------------


def rank1_operand(site: Site, rec: Record, ctx: Context) -> Finding | None:
    """SC102: a rank-1 array where a row or a column was clearly meant."""
    if site.kind == "assign" or rec.error:
        return None
    specs, vals = site.operands, rec.operands
    for i, (spec, v) in enumerate(zip(specs, vals)):
        if spec.transposed and v.kind == "ndarray" and v.shape is not None and len(v.shape) == 1 and v.shape[0] > 1:
            return _transposed_rank1(site, rec, i)
    if site.kind in ELEMENTWISE and len(vals) == 2:
        for i in (0, 1):
            spec, v, other = specs[i], vals[i], vals[1 - i]
            # Only the array's own row reduction: `e / np.sum(e, axis=1)`. Norms of another array
            # (`dists + np.sum(X_train**2, axis=1)`) line up with the columns on purpose.
            same_array = spec.reduced is not None and spec.reduced in (specs[1 - i].text, specs[1 - i].name)
            if (same_array and spec.reduction_axis in (1, -1) and not spec.keepdims and v.kind == "ndarray"
                    and v.shape is not None and len(v.shape) == 1 and other.kind == "ndarray"
                    and other.shape is not None and len(other.shape) == 2 and v.shape[0] == other.shape[-1]):
                return _row_reduction(site, rec, i, ctx)
    return None


def _transposed_rank1(site: Site, rec: Record, i: int) -> Finding:
    """`.T` of a rank-1 array does nothing.  That is a bug when it was written to make an outer product
    of two vectors (`np.dot(delta, a.T)`, column-vector maths from a course): numpy then takes the inner
    product.  `r.T @ r` and `np.dot(w.T, X.T)` come out right, so elsewhere it is only a note."""
    spec, v = site.operands[i], rec.operands[i]
    base = spec.text.removesuffix(".T")
    msg = (f"`{site.text}`: {spec.text} does nothing, because {base} is rank-1 {fmt(v.shape)}: "
           f"a rank-1 array has no rows or columns to swap")
    product = site.callee in ("dot", "matmul") or site.op == "@"
    left = rec.operands[0] if i == 1 else None
    if product and left is not None and left.shape is not None and len(left.shape) == 1:
        first = site.operands[0].text.removesuffix(".T")
        sizes = (left.shape[0], v.shape[0])
        fix = f"np.outer({first}, {base}) -> {fmt(sizes)} (the outer product; numpy took the inner one)"
        severity = "warning"
        msg += f"; the product of two rank-1 arrays is their inner product, {fmt(rec.result.shape) if rec.result else 'a scalar'}"
    else:
        fix = f"{_paren(base)}.reshape(1, -1) if you meant a row (1, {v.shape[0]}); here the result is the same"
        severity = "info"
    return Finding("SC102", severity, site, operands_of(site, rec), rec.result.shape if rec.result else None,
                   msg, fix, rec.count)


def _row_reduction(site: Site, rec: Record, i: int, ctx: Context) -> Finding:
    spec, v, other = site.operands[i], rec.operands[i], rec.operands[1 - i]
    msg = (f"`{site.text}`: {spec.text} {fmt(v.shape)} holds one value per row of a 2-D array, but numpy lines "
           f"a rank-1 array up with the last axis, so it meets {site.operands[1 - i].text} {fmt(other.shape)} "
           f"column by column")
    text = spec.text
    if spec.name:
        log = ctx.assignment(spec.name, site)
        if log is not None:
            text = f"{spec.name} = {log.site.text}"
    if text.endswith(")"):
        fix = f"{text[:-1]}, keepdims=True) -> {fmt((v.shape[0], 1))}"
    else:
        fix = f"keep the reduced axis: keepdims=True gives {fmt((v.shape[0], 1))}"
    return Finding("SC102", "warning", site, operands_of(site, rec), rec.result.shape if rec.result else None,
                   msg, fix, rec.count)


# -- SC103 ------------------------------------------------------------------


def shape_drift(log: SiteLog, ctx: Context) -> list[Finding]:
    """SC103: a name updated from itself (`b = b - lr * db`) came out with a different shape."""
    out = []
    site = log.site
    for name, before, after in log.drift:
        msg = (f"{name} changes shape at `{site.targets[0]} = {site.text}`: {fmt(before)} before, {fmt(after)} after;"
               f" every later use of {name} computes with the new shape")
        fix = _drift_fix(site, name, before, after, ctx)
        rec = log.records[0] if log.records else Record(operands=())
        operands = (operands_of_drift(name, before, after))
        out.append(Finding("SC103", "warning", site, operands, after, msg, fix, rec.count))
    return out


def operands_of_drift(name, before, after):
    from ._report import Operand

    return (Operand(name, "ndarray", before, None, "before the update"),)


def _drift_fix(site: Site, name: str, before, after, ctx: Context) -> str | None:
    """Name the operand that changed the shape (never a scalar), where it got its shape, and a fix
    that gives `before` back: at that origin when it spelled the shape out, else where it is used."""
    found = _grower(site, before, ctx, {name}, 0)
    if found is None:
        return None
    use, spec, v = found
    named = spec.name or (spec.text.strip() if _item_name(spec.text) else None)  # `db`, `self.db`, `grads["db"]`
    log = None
    if named:
        log = ctx.assignment(named, use)
        call = _value_site(log, ctx) if log is not None else None
        if call is not None and call.callee in _calls.REDUCE and ("keepdims", "True") in call.keywords:
            axis = _calls._literal(dict(call.keywords).get("axis", "None"))
            if isinstance(axis, int) and _shapes.reduce(v.shape, axis, False) == tuple(before):
                text = call.text.replace(", keepdims=True", "")
                return (f"{named} is {fmt(v.shape)} because `{call.text}` at line {call.line} keeps the summed "
                        f"axis: {named} = {text} there gives {fmt(before)} (or {_paren(named)}.reshape("
                        f"{dims(before)}) here)")
        where = f" from `{log.site.text}` at line {log.site.line}" if log is not None else ""
    else:
        where = ""
    if _shapes.prod(v.shape) == _shapes.prod(before):
        return (f"{spec.text} is {fmt(v.shape)}{where}: {_paren(spec.text)}.reshape({dims(before)}) gives "
                f"{fmt(before)} like {name}")
    for axis in range(len(v.shape)):
        keep = len(v.shape) == len(before)
        if _shapes.reduce(v.shape, axis, keep) == tuple(before) and _sum_forgotten(spec, use, ctx, name):
            k = ", keepdims=True" if keep else ""
            if log is not None and log.site.kind != "augassign" and tuple(log.site.targets) == (named,):
                return (f"{spec.text} is {fmt(v.shape)}{where}: summed over axis {axis} there, "
                        f"`{log.site.targets[0]} = np.sum({log.site.text.strip()}, axis={axis}{k})` gives "
                        f"{fmt(before)}")
            return (f"{spec.text} is {fmt(v.shape)}{where}: sum it over axis {axis} "
                    f"(np.sum(..., axis={axis}{k})) to get {fmt(before)}")
    return f"{spec.text} is {fmt(v.shape)}{where}; it must be {fmt(before)} (or broadcast to it) like {name}"


def _sum_forgotten(spec: OperandSpec, use: Site, ctx: Context, target: str) -> bool:
    """`reduction_forgotten` for an operand named by a variable, or by its key or attribute (`grads["db1"]`,
    `self.db`: where those were made is not followed, so only the names are judged)."""
    grad = spec.name or _scaled_name(spec.text)
    if grad is not None:
        return reduction_forgotten(grad, use, ctx, target)
    item = _item_name(spec.text)
    return item is not None and re.match(_GRADIENT, item) is not None and not gradient_of_another(item, target)


def _item_name(text: str) -> str | None:
    """`db1` for `grads["db1"]`, `db` for `self.db`: the key or attribute that names an array."""
    import ast

    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    return None


def _value_site(log: SiteLog, ctx: Context) -> Site | None:
    """The operation whose result an assignment stored (the assignment site itself when it is one)."""
    if log.site.kind == "assign":
        inner = ctx.by_id.get(log.site.value_of) if log.site.value_of is not None else None
        return inner.site if inner is not None else None
    return log.site


def _grower(site: Site, before, ctx: Context, skip: set, depth: int):
    """(site, operand spec, value) of the operand that makes `site`'s result outgrow `before`: the
    deepest one, through operand sites, skipping scalars (a scalar never changes a shape)."""
    log = ctx.by_id.get(site.id)
    if log is None or log.last is None or len(log.last.operands) != len(site.operands) or depth > 6:
        return None
    if depth and (site.kind not in ELEMENTWISE or site.op == "@"):
        return None  # a matrix product's operands do not broadcast into the result: blame the product
    for spec, v in zip(site.operands, log.last.operands):
        if any(_mentions(spec.text, n) for n in skip) or v.shape is None or v.kind in ("scalar", "tuple", "other") or (v.size or 0) <= 1:
            continue
        if _shapes.broadcast(v.shape, before) == tuple(before):
            continue  # fits into the old shape: not what changed it
        if spec.child is not None and spec.child in ctx.by_id:
            deeper = _grower(ctx.by_id[spec.child].site, before, ctx, skip, depth + 1)
            if deeper is not None:
                return deeper
        scaled = _scaled_name(spec.text)
        if not spec.name and scaled:
            spec = OperandSpec(scaled, name=scaled)  # `0.01 * m`: a scalar factor keeps m's shape
        return site, spec, v
    return None


_RATE = (r"(?i)^(lr|eta|alpha|beta\d?|gamma|mu|rho|decay|momentum|reg|lam|lambda_?|eps|epsilon|m|n|"
                   r"batch_size|num_\w+|n_\w+|(learning|decay)_?rate|step_?size)$")


def _scaled_name(text: str) -> str | None:
    """`m` for `0.01 * m`, `(1 - beta) * db`, `-g`: a name times numbers."""
    import ast

    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None

    def numeric(n) -> bool:
        return isinstance(n, ast.Constant) or (isinstance(n, ast.Name) and re.match(_RATE, n.id) is not None) \
            or (isinstance(n, ast.BinOp) and numeric(n.left) and numeric(n.right))

    while True:
        if isinstance(node, ast.BinOp) and numeric(node.left):
            node = node.right
        elif isinstance(node, ast.BinOp) and numeric(node.right) and not isinstance(node.op, ast.Pow):
            node = node.left
        elif isinstance(node, ast.UnaryOp):
            node = node.operand
        else:
            break
    return node.id if isinstance(node, ast.Name) else None


_GRADIENT = r"^(?:d|grad_?|g_|nabla_?|delta_?)(?P<of>\w+)$"


def gradient_of_another(name: str | None, target: str) -> bool:
    """`nabla_w` updating `b`, `dW1` updating `self.b1`: a gradient named after another parameter."""
    m = re.match(_GRADIENT, name or "")
    base = re.sub(r"^.*[.\[]|['\"\]]", "", target).lower().lstrip("_")
    return m is not None and bool(base) and m.group("of").lower().lstrip("_") != base


def reduction_forgotten(name: str | None, use: Site, ctx: Context, target: str | None = None) -> bool:
    """Is a sum over an axis a plausible fix for the array `name`?  Only for a gradient (`dc`, `grad_b`)
    of the parameter it updates, that was not built as an outer product or an outer broadcast: summing
    those fits the shapes and means nothing."""
    if re.match(_GRADIENT, name or "") is None or (target is not None and gradient_of_another(name, target)):
        return False  # not a gradient, or `b -= lr * nabla_w`: the gradient of another parameter
    log = ctx.assignment(name, use)
    made = _value_site(log, ctx) if log is not None else None
    made_log = ctx.by_id.get(made.id) if made is not None else None
    if made is None or made_log is None or made_log.last is None:
        return True
    if made.callee == "outer" or made.explicit:
        return False
    vals = made_log.last.operands
    shaped = [v.shape for v in vals if v.shape is not None and v.kind in ("ndarray", "matrix")]
    if len(shaped) >= 2:
        a, b = shaped[0], shaped[1]
        if made.callee in ("dot", "matmul") or made.op == "@":
            if len(a) >= 1 and len(b) >= 2 and a[-1] == 1:
                return False  # (n, 1) @ (1, m): an outer product
        elif made.kind in ELEMENTWISE and made_log.last.result is not None and made_log.last.result.shape:
            r = made_log.last.result.shape
            if _shapes.prod(a) > 1 and _shapes.prod(b) > 1 and _shapes.stretched(a, r) and _shapes.stretched(b, r):
                return False
    return True


# -- SC201 ------------------------------------------------------------------


def pandas_mixing(site: Site, rec: Record, ctx: Context) -> Finding | None:
    """SC201: pandas meets numpy where pandas does something numpy would not (a warning), or where it
    does the same for now but the result is a pandas object (a note); pandas objects that align."""
    if site.kind == "assign" or len(rec.operands) < 1:
        return None
    vals = rec.operands
    pandas = [(s, v) for s, v in zip(site.operands, vals) if v.is_pandas]
    arrays = [(s, v) for s, v in zip(site.operands, vals)
              if v.kind in ("ndarray", "matrix") and v.size is not None and v.size > 1]
    if not pandas:
        return None
    how = _combination(site, vals)
    if how is None:
        return None  # `reg.fit(X, y)`, `train_test_split(X, y)`: arguments passed on, not combined
    ops = operands_of(site, rec, {s.text: o for s, v in pandas if s.name and (o := ctx.origin(s.name, site))})
    result = rec.result.shape if rec.result else None
    from ._rules_pandas import rows_meant

    if len(pandas) == 2 or rows_meant(site, vals):
        return None  # how pandas lines up labels, or a vector with a frame's rows: SC202 (_rules_pandas)
    if not arrays:
        return None
    (ps, pv), (as_, av) = pandas[0], arrays[0]
    fix = _to_numpy_fix(ps, site, ctx, pv, av) if how == "pandas" and site.kind != "method" \
        else _to_numpy_fix(ps, site, ctx)
    if how == "converts":
        msg = f"`{site.text}`: {_callee_text(site)} turns {ps.text} ({pv.kind} {fmt(pv.shape)}) into a numpy " \
              f"array here, and the result is a numpy array"
        return Finding("SC201", "info", site, ops, result, msg, fix, rec.count)
    differs, what = _pandas_behaviour(site, ps, pv, as_, av)
    msg = f"`{site.text}`: {ps.text} is a pandas {pv.kind} {fmt(pv.shape)}, {as_.text} a numpy array " \
          f"{fmt(av.shape)}; {what}"
    return Finding("SC201", "warning" if differs else "info", site, ops, result, msg, fix, rec.count)


# ufuncs hand pandas operands to pandas (`np.maximum(s, a)` is a Series); `np.dot` and the other
# numpy functions convert them to arrays first.
_UFUNCS = frozenset(_calls.ELEMENTWISE_N - {"where"})
_PANDAS_ARITHMETIC = frozenset("""
    add sub subtract mul multiply div divide truediv floordiv mod pow radd rsub rmul rdiv rtruediv
    rfloordiv rmod rpow eq ne lt gt le ge
""".split())


def _combination(site: Site, vals: tuple[Value, ...]) -> str | None:
    """How a site combines its operands: "pandas" (pandas' rules decide), "converts" (numpy turns the
    pandas operands into arrays), or None (they are only passed on: a user's function or method)."""
    if site.kind in ("binop", "compare", "augassign"):
        return "pandas"
    if site.kind == "call":
        if site.callee in _UFUNCS:
            return "pandas"
        return "converts" if site.op.startswith(("np.", "numpy.")) else None
    if site.kind == "method" and vals:
        recv = vals[0]
        if recv.is_pandas and site.callee in _PANDAS_ARITHMETIC | {"dot"}:
            # `df.sub(v, axis=0)`: the user said how to line them up
            return None if any(k == "axis" for k, _ in site.keywords) else "pandas"
        if recv.kind in ("ndarray", "matrix") and site.callee == "dot":
            return "converts"
    return None


def _callee_text(site: Site) -> str:
    return f"ndarray.{site.callee}" if site.kind == "method" else site.op


def _pandas_behaviour(site: Site, ps: OperandSpec, pv: Value, as_: OperandSpec, av: Value) -> tuple[bool, str]:
    """(does pandas do something numpy would not here?, what it does)."""
    if site.op in ("@", "@=") or site.callee == "dot":
        if pv.kind == "DataFrame" and site.operands[0] is ps:
            return False, f"the result is a DataFrame with {ps.text}'s row labels and columns 0..k-1"
        if pv.kind == "DataFrame":
            return False, f"the result is a DataFrame with {ps.text}'s column labels"
        return False, "the result is a numpy array"
    if pv.kind == "Series":
        if len(av.shape) >= 2:
            return True, (f"pandas does not broadcast a 2-D array against a Series: it tries to fit the result "
                          f"to {ps.text}'s {pv.shape[0]} labels")
        if av.shape[0] != pv.shape[0]:
            return True, f"pandas needs exactly {pv.shape[0]} values here, one per label"
        return False, f"pandas pairs them by position and the result is a Series labelled like {ps.text}"
    if len(av.shape) == 1:
        if av.shape[0] == pv.shape[1]:
            return False, "pandas lines the array up with the columns, as numpy would"
        cols = f"{pv.shape[1]} column" + ("s" if pv.shape[1] != 1 else "")
        return True, f"pandas lines a 1-D array up with the {cols}, not the {pv.shape[0]} rows"
    if _shapes.broadcast(pv.shape, av.shape) == tuple(pv.shape):
        return False, "pandas pairs them by position, as numpy would, and the result is a DataFrame"
    return True, "pandas cannot broadcast this array against the DataFrame"


def one_hot(spec: OperandSpec, v: Value, other: Value, base: str) -> tuple[str, tuple[int, int]] | None:
    """Integer class labels (m,) meeting class scores (m, k) or (k, m): the one-hot labels that were meant."""
    if v.shape is None or len(v.shape) != 1 or other.shape is None or len(other.shape) != 2:
        return None
    if not (v.dtype or "").startswith(("int", "uint")):
        return None
    m = v.shape[0]
    if m not in other.shape:
        return None
    k = other.shape[1] if other.shape[0] == m else other.shape[0]
    if not 2 <= k <= 1000 or k == m:
        return None
    rows = other.shape[0] == m
    return f"np.eye({k})[{base}]" + ("" if rows else ".T"), ((m, k) if rows else (k, m))


def numpy_versions(site: Site, i: int, pv: Value, av: Value) -> list[tuple[str, tuple, tuple, str]]:
    """The pandas operand `i` handed to numpy in ways that shape algebra says work, best first:
    (its new text, its new shape, the result, why).  A version whose result numpy would stretch on
    both sides (an SC101 outer broadcast), or that is bigger than both operands, is no fix."""
    spec = site.operands[i]
    base = f"{_paren(spec.text)}.to_numpy()"
    versions = []
    hot = one_hot(spec, pv, av, base)
    if hot is not None:
        versions.append((hot[0], hot[1], f"{spec.text} holds one class label per example; compare "
                                         f"with one-hot labels {fmt(hot[1])}"))
    versions.append((base, tuple(pv.shape), ""))
    if pv.kind == "Series":
        n = pv.shape[0]
        # (1, n) would act as (n,) does against any array of rank 2 or less: no second version
        versions.append((base + ".reshape(-1, 1)", (n, 1), ""))
        if len(av.shape) > 2:
            versions.append((base + ".reshape(1, -1)", (1, n), ""))
    elif len(pv.shape) == 2 and pv.shape[1] == 1:
        versions.append((base + ".ravel()", (pv.shape[0],), ""))
    out = []
    for text, shape, why in versions:
        a, b = (shape, av.shape) if i == 0 else (av.shape, shape)
        res = _shapes.matmul(a, b) if site.op.startswith("@") or site.callee in ("dot", "matmul") \
            else _shapes.broadcast(a, b)
        if res is None or _shapes.prod(res) > max(_shapes.prod(shape), _shapes.prod(av.shape)):
            continue
        if not site.op.startswith("@") and site.callee not in ("dot", "matmul") and _shapes.prod(av.shape) > 1 \
                and _shapes.stretched(shape, res) and _shapes.stretched(av.shape, res):
            continue  # an outer broadcast: the crash would become a silent (m, m)
        if not why and _shapes.stretched(shape, res):
            why = f"runs, but repeats {spec.text} along an axis; check it is what you mean"
        out.append((text, shape, res, why))
    # The result numpy would give had the pandas operand been an array of the same kind: the other
    # operand's shape (or the pandas operand's own) is what was meant.
    meant = (tuple(av.shape), tuple(pv.shape))
    out.sort(key=lambda v: (not v[3].startswith(spec.text + " holds"), v[2] not in meant, "repeats" in v[3]))
    return out


def _to_numpy_fix(spec: OperandSpec, site: Site, ctx: Context, pv: Value | None = None,
                  av: Value | None = None) -> str:
    i = site.operands.index(spec)
    base = f"{_paren(spec.text)}.to_numpy()"
    tail = ""
    if pv is not None and av is not None and av.shape is not None and pv.shape is not None:
        versions = numpy_versions(site, i, pv, av)
        if not versions:
            return (f"converting {spec.text} with .to_numpy() alone does not line it up with "
                    f"{site.operands[1 - i].text if len(site.operands) == 2 else 'the array'} {fmt(av.shape)}: "
                    f"give both the same shape")
        text, _, res, why = versions[0]
        if why.startswith(spec.text + " holds"):
            texts = [s.text for s in site.operands]
            texts[i] = text
            expr = join(texts[0], site.op, texts[1]) if site.kind in ELEMENTWISE and len(texts) == 2 else text
            return f"{expr} -> {fmt(res)} ({why})"
        tail = text[len(base):]
    if spec.name:
        log = ctx.assignment(spec.name, site)
        if log is not None:
            return (f"convert once where it is made: {spec.name} = {_paren(log.site.text)}.to_numpy(){tail} "
                    f"(line {log.site.line})")
    return f"{base}{tail}"


# -- running the rules ------------------------------------------------------

SITE_RULES = (outer_broadcast, rank1_operand, pandas_mixing)
from ._rules_api import SITE_RULES as _API_RULES  # noqa: E402 - SC401 SC402 SC501 SC502; they use helpers above
SITE_RULES += _API_RULES


def run(logs: list[SiteLog], ignore: Iterable[str] = (), since=None) -> list[Finding]:
    """All findings, one per (site, code) keeping the worst, without silenced codes, in source order.

    With `since` (a `_scope.Mark`), only what was recorded after the mark is judged: the findings of
    one test or one notebook cell.  The context (where names got their values) is always all logs."""
    rules = SITE_RULES
    if "pandas" in sys.modules:  # SC202 judges pandas objects, and there are none unless pandas was imported
        from ._rules_pandas import label_alignment  # it builds on this module's helpers, imported by now

        rules += (label_alignment,)
    ctx = Context(logs)
    ignore = {c.upper() for c in ignore}
    best: dict[tuple[int, str], Finding] = {}
    for log in logs:
        found: list[Finding] = []
        records = log.records if since is None else [r for r in log.records if since.hit(r)]
        for rec in records:
            for rule in rules:
                f = rule(log.site, rec, ctx)
                if f is not None:
                    found.append(f)
        if since is None or since.drifted(log):
            found.extend(shape_drift(log, ctx))
        found.extend(_numerics.findings(log, records, since is None, ctx))  # SC301, SC302
        for f in found:
            if f.code in ignore or f.code in log.site.ignore or "*" in log.site.ignore:
                continue
            key = (log.site.id, f.code)
            old = best.get(key)
            if old is None or rank(f.severity) < rank(old.severity):
                if old is not None:
                    f.count += old.count
                best[key] = f
            else:
                old.count += f.count
    found = sorted(best.values(), key=lambda f: (f.site.path, f.site.line, f.code))
    if len(found) < 2:  # no root to share (and a clean run does not import the grouping)
        return found
    from . import _recorder, _roots  # imported here: _roots builds on the explainer, which imports this module

    import warnings

    try:
        # Parsing the user's source again would repeat its compile-time warnings (`"\d"`) as if the code
        # raised them now: the replay reads the source, it never runs it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _roots.group(found, ctx)
    except Exception:  # grouping only adds to findings already made: a failure of it must not lose them
        _recorder.STATE.internal_errors += 1
    return found
