"""Rules for numpy API traps and update typos: SC401 (`*` on np.matrix), SC402 (a positional `out`),
SC501 (`x =- y`) and SC502 (a parameter updated with a gradient that broadcasts onto it).

Each is a pure function `(site, record, context) -> Finding | None`, like the rules in `_rules`, whose
helpers they share (imported inside the functions: `_rules` imports this module to register them).
"""

from __future__ import annotations

import ast
import re

from . import _calls, _shapes
from ._events import OperandSpec, Record, Site, Value
from ._report import Crash, Finding, Fix, Operand, operands_of
from ._shapes import fmt

_ARRAYS = ("ndarray", "matrix")


def _is_array(v: Value | None) -> bool:
    return v is not None and v.kind in _ARRAYS and v.shape is not None


# -- SC401 ------------------------------------------------------------------


def matrix_star(site: Site, rec: Record, ctx) -> Finding | None:
    """SC401: `*` with an np.matrix operand is the matrix product.  A warning where elementwise was
    evidently meant: the matrix product fails while the elementwise one works, or the operands have
    one shape and one is built from the other (`s * (1 - s)`).  Other square products are a note;
    `X.T * X` between different shapes is the matrix product np.matrix code means."""
    from ._rules import _mentions, _paren

    if site.op not in ("*", "*=") or site.kind not in ("binop", "augassign") or len(rec.operands) != 2:
        return None
    a, b = rec.operands
    if "matrix" not in (a.kind, b.kind) or not (_is_array(a) and _is_array(b)):
        return None
    if (a.size or 0) <= 1 or (b.size or 0) <= 1:
        return None  # a one-element operand scales: the same as elementwise
    sa, sb = site.operands
    elementwise = _shapes.broadcast(a.shape, b.shape)
    if elementwise is None or _shapes.stretched(a.shape, elementwise) and _shapes.stretched(b.shape, elementwise):
        return None  # elementwise would fail or build a table: nothing says it was meant
    product = _shapes.dot(a.shape, b.shape)
    related = (sa.name is not None and sa.text != sb.text and _mentions(sb.text, sa.name)) or (
        sb.name is not None and sa.text != sb.text and _mentions(sa.text, sb.name))
    if product is None:
        severity = "warning"
        what = (f"numpy raises: the inner sizes {a.shape[-1]} and {b.shape[0]} differ, while elementwise they "
                f"give {fmt(elementwise)}")
    elif tuple(a.shape) == tuple(b.shape):
        severity = "warning" if related else "info"
        what = f"the result is the matrix product {fmt(product)}, not the elementwise product"
        if related:
            what += "; one operand is built from the other (as in the derivative `s * (1 - s)`): elementwise was meant"
    else:
        return None  # different shapes that multiply as matrices: the product np.matrix code means
    kinds = " and ".join(f"{_paren(s.text)} {'np.matrix' if v.kind == 'matrix' else 'ndarray'} {fmt(v.shape)}"
                         for s, v in ((sa, a), (sb, b)))
    msg = f"`{site.text}`: `*` with an np.matrix operand is the matrix product ({kinds}); {what}"
    call = f"np.multiply({sa.text}, {sb.text})"
    if site.kind == "augassign":
        call = f"{sa.text} = {call}"
    fix = f"{call} -> {fmt(elementwise)} (elementwise), or make them ndarrays with np.asarray where they are made"
    if product is not None:
        fix += f"; {_paren(sa.text)} @ {_paren(sb.text)} if the matrix product is meant (says so, and is quiet)"
    return Finding("SC401", severity, site, operands_of(site, rec), product, msg, fix, rec.count)


# -- SC402 ------------------------------------------------------------------

# numpy callables whose next positional argument after their operands is `out`: (operands, operator).
_BINARY_OPS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "true_divide": "/",
               "floor_divide": "//", "power": "**", "mod": "%", "remainder": "%"}
_BINARY = frozenset(_BINARY_OPS) | frozenset("""
    maximum minimum fmax fmin fmod logical_and logical_or logical_xor greater less equal not_equal
    greater_equal less_equal hypot arctan2 heaviside copysign bitwise_and bitwise_or bitwise_xor matmul
    dot outer
""".split())
_UNARY = frozenset("""
    exp exp2 expm1 log log2 log10 log1p sqrt square cbrt tanh sinh cosh sin cos tan arcsin arccos arctan
    arcsinh arccosh arctanh absolute abs fabs sign negative positive reciprocal floor ceil rint trunc
    logical_not isnan isinf isfinite
""".split())
# compiled at first use (re's cache), not at import
_BUFFER = r"(?i)^(out|output|res|result|buf|buffer|tmp|temp|dest|dst|scratch)\w*$|_(out|buf|buffer)$"


def _numpy_callee(site: Site) -> int | None:
    """How many operands the numpy callable of this call site takes before `out`, or None when the
    callee is not one of numpy's (`np.multiply`, `numpy.dot`, `a.dot` on an array)."""
    name = site.callee or ""
    if site.kind == "call" and site.op in (f"np.{name}", f"numpy.{name}"):
        if name in _BINARY:
            return 2
        if name in _UNARY:
            return 1
    return None


def positional_out(site: Site, rec: Record, ctx) -> Finding | None:
    """SC402: `np.matmul(o, 1 - o, error)`: the argument after the operands is the output array,
    which numpy overwrites, not one more operand."""
    from ._rules import _paren

    vals = rec.operands
    if site.kind == "method" and site.callee == "dot" and vals and vals[0].kind == "ndarray":
        n_in, name = 2, "ndarray.dot"
    else:
        n_in, name = _numpy_callee(site), site.op
    if n_in is None or len(vals) <= n_in or len(site.operands) != len(vals) or not _is_array(vals[n_in]):
        return None
    specs = site.operands
    out_spec, out = specs[n_in], vals[n_in]
    ins = specs[:n_in]
    if any(s.text == out_spec.text for s in ins) or re.search(_BUFFER, out_spec.name or ""):
        return None  # `np.add(a, b, a)`, `np.exp(x, out_buf)`: writing into it is the point
    if out_spec.text in site.targets or any(lg.site.value_of == site.id and out_spec.text in lg.site.targets
                                            for lg in ctx.logs):
        return None  # `c = np.multiply(a, b, c)`: the caller knows where the result goes
    shapes = [v.shape for v in vals[:n_in]]
    works = _fills(site.callee, shapes, out.shape) and rec.error is None
    if site.callee == "dot" and any(v.dtype != out.dtype for v in vals[:n_in]):
        works = False  # np.dot takes only an output of the exact result dtype, else raises
    where = (f"numpy writes the result into {out_spec.text} {fmt(out.shape)}, overwriting it, and returns it"
             if works else f"{out_spec.text} {fmt(out.shape)} is taken as the array to write the result into")
    ordinal = "third" if n_in == 2 and site.kind == "call" else "second"
    msg = f"`{site.text}`: the {ordinal} positional argument of {name} is its output, not an operand: {where}"
    calls = [s.text for s in ins]
    if site.kind == "method":
        plain = f"{_paren(calls[0])}.dot({calls[1]})"
    else:
        plain = f"{site.op}({', '.join(calls)})"
    meant = _meant(site.callee, [s.text for s in ins], shapes, out_spec.text, out.shape, plain)
    keyword = f"{plain[:-1]}, out={out_spec.text})"
    fix = f"{meant[0]} -> {fmt(meant[1])} if {out_spec.text} was meant as an operand" if meant else \
        f"{plain}, without {out_spec.text}, which is not an operand of {name}"
    fix += f"; {keyword} if writing into {out_spec.text} is meant (says so, and is quiet)"
    result = tuple(out.shape) if works else None  # numpy returns the output array it wrote into
    return Finding("SC402", "warning", site, operands_of(site, rec), result, msg, fix, rec.count)


def _fills(callee: str, shapes: list, out) -> bool:
    """Does numpy write the result into `out` (its shape fits), rather than raise?"""
    if any(s is None for s in shapes):
        return False
    if callee in ("matmul", "dot", "outer"):
        a, b = (shapes + [()])[:2]
        res = _shapes.matmul(a, b) if callee == "matmul" else _shapes.dot(a, b) if callee == "dot" else (
            (_shapes.prod(a), _shapes.prod(b)))
        return res is not None and tuple(res) == tuple(out)
    res = tuple(out)
    for s in shapes:
        res = _shapes.broadcast(res, s)
        if res is None:
            return False
    return res == tuple(out)  # the operands broadcast to the output's shape, not beyond it


def _meant(callee: str, texts: list[str], shapes: list, third: str, third_shape, plain: str):
    """The call with its extra argument as one more operand, when shape algebra says it works and it is
    no outer broadcast: (expression, result shape) or None."""
    from ._rules import _paren

    if len(texts) != 2:
        return None
    a, b = shapes
    if callee in ("matmul", "dot"):
        first = _shapes.matmul(a, b) if callee == "matmul" else _shapes.dot(a, b)
        if first is None:
            # the product fails: the elementwise product was meant (`o * (1 - o) * error`)
            first, plain = _shapes.broadcast(a, b), f"{_paren(texts[0])} * {_paren(texts[1])}"
            if first is None or first not in (tuple(a), tuple(b)):
                return None
        op = "*"
    elif callee in _BINARY_OPS:
        op = _BINARY_OPS[callee]
        first = _shapes.broadcast(a, b)
        plain = f"{_paren(texts[0])} {op} {_paren(texts[1])}"
    else:
        return None
    if first is None:
        return None
    res = _shapes.broadcast(first, third_shape)
    if res is None or (_shapes.stretched(first, res) and _shapes.stretched(third_shape, res)):
        return None
    return f"{plain} {op} {_paren(third)}", res


def explain_crash(crash: Crash, site: Site, rec: Record, ctx) -> bool:
    """A crash that SC401 or SC402 judges at its own site (`s * (1 - s)` on np.matrix columns, a third
    argument of `np.matmul` taken as its output): the trap is the cause, and the fix is what was meant.
    Transposing an operand would also run, as an outer product or into the wrong output: not offered."""
    from ._rules import _paren

    for rule in (matrix_star, positional_out):
        found = rule(site, rec, ctx)
        if found is None or found.severity != "warning":
            continue
        crash.explanation = found.message.split("`: ", 1)[-1]
        a, b = rec.operands[0], rec.operands[1]
        if found.code == "SC401":
            shape = _shapes.broadcast(a.shape, b.shape)
            crash.fixes = [Fix(f"np.multiply({site.operands[0].text}, {site.operands[1].text})", shape,
                               "elementwise, as `*` means on ndarrays")]
        else:
            specs = site.operands
            plain = f"{site.op}({specs[0].text}, {specs[1].text})"
            meant = _meant(site.callee, [specs[0].text, specs[1].text], [a.shape, b.shape], specs[2].text,
                           rec.operands[2].shape, plain) if site.kind == "call" else None
            crash.fixes = [Fix(meant[0], meant[1], f"{_paren(specs[2].text)} as an operand, not the output")] \
                if meant else []
        return True
    return False


# -- SC501 ------------------------------------------------------------------


def glued_assignment(site: Site, rec: Record, ctx) -> Finding | None:
    """SC501: `W =- lr * dW` assigns `-lr * dW` to W.  A warning when W held an array before the
    statement (read or assigned above it in its scope; for `self.W` anywhere in the file) and the
    right-hand side does not read W: `-=` was meant.  `W=-lr*dW`, without any space, is a note."""
    glued = site.glued_sign
    if glued is None or len(site.targets) != 1 or rec.result is None:
        return None
    target = site.targets[0]
    if _reads(site.text, target):
        return None  # `x =- x`: a negation of itself, written oddly
    held = _held_array(target, site, ctx)
    if held is None:
        return None
    sign = glued[-1]
    rest = site.text[1:].lstrip()
    statement = f"{target}{glued}{site.text[1:]}"
    msg = (f"`{statement}` assigns {sign}{rest} to {target}, which held an array {fmt(held.shape)}: "
           f"`={sign}` is `= {sign}`, so {target}'s old value is thrown away and the update is lost; "
           f"`{sign}=` was almost certainly meant")
    fix = f"{target} {sign}= {rest} (or {target} = {sign}{rest}, with a space, if the sign is meant)"
    severity = "warning" if glued[0].isspace() else "info"
    ops = (Operand(target, held.kind, held.shape, held.dtype, "before this line"),
           Operand.of(f"{sign}{rest}", rec.result))
    return Finding("SC501", severity, site, ops, rec.result.shape, msg, fix, rec.count)


def _reads(text: str, target: str) -> bool:
    """Does the expression read `target` (a name, `self.W`, `params["W"]`)?"""
    try:
        tree = ast.parse(text.strip(), mode="eval")
        want = ast.dump(ast.parse(target.strip(), mode="eval").body)
    except SyntaxError:
        return True  # unsure: stay quiet
    return any(ast.dump(n) == want for n in ast.walk(tree) if isinstance(n, (ast.Name, ast.Attribute,
                                                                               ast.Subscript)))


def _held_array(target: str, site: Site, ctx) -> Value | None:
    """An array `target` held before `site` ran: a recorded read or assignment of it above the site in
    its scope (for an attribute or item, anywhere in the file: methods run in any order)."""
    plain = target.isidentifier()
    for log in ctx.logs:
        other = log.site
        if other.id == site.id or other.path != site.path:
            continue
        if plain and (other.scope != site.scope or other.line >= site.line):
            continue
        if target in other.targets and log.last is not None and _is_array(log.last.result):
            return log.last.result
        for i, spec in enumerate(other.operands):
            if spec.text == target:
                for r in log.records:
                    if i < len(r.operands) and _is_array(r.operands[i]):
                        return r.operands[i]
    return None


# -- SC502 ------------------------------------------------------------------


def broadcast_update(site: Site, rec: Record, ctx) -> Finding | None:
    """SC502: a parameter updated in place or from itself (`b -= lr * db`, `b = b - lr * db`) with a
    gradient smaller than it that broadcasts onto it: the parameter keeps its shape and every entry in
    a broadcast direction moves by the same step.  The classic: `db = np.sum(dZ)` without an axis."""
    found = _update(site, rec, ctx)
    if found is None:
        return None
    target, t, step_spec, step = found
    if t.size is None or t.size <= 1:
        return None  # a scalar parameter, a scalar gradient
    if step.shape is None or (step.size or 0) >= t.size:
        return None  # the step as a whole is as big as the parameter (`lr * dz * x.T`, an outer product)
    leaves = list(_leaves(step_spec, step, site, ctx, 0))
    if not leaves or any(v is not None and v.shape is not None and tuple(v.shape) == tuple(t.shape)
                         for _, v, _ in leaves):
        return None  # the gradient has the parameter's shape; smaller factors scale it (a mask, a rate)
    for spec, v, made in leaves:
        if v is None or v.shape is None or _reads(spec.text, target) or spec is step_spec:
            continue  # weight decay, a max-shift, `X -= X_mean` (no rate: a centring, not a step)
        if _shapes.broadcast(v.shape, t.shape) != tuple(t.shape) or (v.size or 0) >= t.size:
            continue
        reduction = _full_reduction(spec, made, site, ctx)
        if reduction is not None and _reads(reduction[0].text, target):
            continue  # `x -= lr * np.mean(x)`: the array's own mean
        inline = reduction is not None and made is not None  # `lr * np.sum(dZ)`: a gradient step, whatever dZ is
        if (reduction is None and (v.size or 0) <= 1) or not (inline or _gradient_name(spec.name or spec.text)):
            continue  # a rate, a schedule, a literal, a mean: not a gradient
        return _broadcast_finding(site, rec, target, t, spec, v, reduction, ctx)
    return None


def _gradient_name(text: str) -> bool:
    """`db`, `grad_b`, `grads["db1"]`, `self.dW`, `delta`: named as a gradient."""
    from ._rules import _GRADIENT

    m = re.search(r"(\w+)\W*$", text)
    base = m.group(1) if m else ""
    return re.match(_GRADIENT, base) is not None or base.lower() in ("grad", "grads", "gradient", "delta", "g")


def _update(site: Site, rec: Record, ctx):
    """(target text, its Value, the step's spec, the step's Value) of `W -= step`, `W += step`,
    `W = W - step`, `W = W + step`, `W = step + W`, when W keeps its shape; else None."""
    vals = rec.operands
    if len(vals) != 2 or len(site.operands) != 2 or rec.error:
        return None
    sa, sb = site.operands
    if site.kind == "augassign" and site.op in ("-=", "+="):
        t = vals[0] if _is_array(vals[0]) else _target_value(sa.text, site, ctx)
        return (sa.text, t, sb, vals[1]) if t is not None else None
    if site.kind == "binop" and site.op in ("-", "+") and site.targets:
        for i in ((0, 1) if site.op == "+" else (0,)):
            spec, t = site.operands[i], vals[i]
            if spec.text in site.targets and _is_array(t):
                if rec.result is None or rec.result.shape is None or tuple(rec.result.shape) != tuple(t.shape):
                    return None  # the shape changed: SC103 says so
                return spec.text, t, site.operands[1 - i], vals[1 - i]
    return None


def _target_value(text: str, site: Site, ctx) -> Value | None:
    """`params["b1"]` or `self.b` as read elsewhere in the file, when every read saw one shape."""
    seen = set()
    value = None
    for log in ctx.logs:
        if log.site.path != site.path or log.site.id == site.id:
            continue
        for i, spec in enumerate(log.site.operands):
            if spec.text == text:
                for r in log.records:
                    if i < len(r.operands) and _is_array(r.operands[i]):
                        seen.add(tuple(r.operands[i].shape))
                        value = r.operands[i]
    return value if len(seen) == 1 else None


_SCALING = frozenset({"*", "/"})


def _leaves(spec: OperandSpec, v: Value | None, site: Site, ctx, depth: int):
    """(spec, value, site that made it or None) of the factors of a step: `lr * dW / (np.sqrt(v) + eps)`
    gives lr, dW and `np.sqrt(v) + eps`.  A product of scalars is not recorded (`lr * db` with db a
    numpy scalar): its factors are scalars like it."""
    child = ctx.by_id.get(spec.child) if spec.child is not None else None
    if child is not None and depth < 6 and child.site.kind == "binop" and child.site.op in _SCALING:
        if child.last is not None and len(child.last.operands) == 2:
            for s, cv in zip(child.site.operands, child.last.operands):
                yield from _leaves(s, cv, site, ctx, depth + 1)
            return
        if child.last is None and v is not None and not v.shape:
            for s in child.site.operands:
                yield from _leaves(s, v, site, ctx, depth + 1)
            return
    if child is not None and child.last is None:
        child = None
    if spec.name is None and child is None:
        factor = _scaled_factor(spec.text)
        if factor is not None:
            made = _call_on_line(factor, site, ctx)
            if made is not None:
                yield OperandSpec(factor), v, made
                return
            name = factor if factor.isidentifier() else None
            yield OperandSpec(factor, name=name), v, None
            return
    yield spec, v, child.site if child is not None else None


def _scaled_factor(text: str) -> str | None:
    """`db` for `0.1 * db`, `grads["db1"]` for `lr / m * grads["db1"]`, `np.sum(dZ)` for `0.1 * np.sum(dZ)`:
    the one factor of a product that is not a number or a rate (`_rules._RATE`), as written."""
    from ._rules import _RATE

    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None

    def numeric(n) -> bool:
        return isinstance(n, ast.Constant) or (isinstance(n, ast.Name) and re.match(_RATE, n.id) is not None) or (
            isinstance(n, ast.UnaryOp) and numeric(n.operand)) or (
            isinstance(n, ast.BinOp) and numeric(n.left) and numeric(n.right))

    while True:
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)) and numeric(node.left):
            node = node.right
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)) and numeric(node.right):
            node = node.left
        elif isinstance(node, ast.UnaryOp):
            node = node.operand
        else:
            break
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Call)) and node is not None:
        return ast.get_source_segment(text.strip(), node)
    return None


def _call_on_line(text: str, site: Site, ctx) -> Site | None:
    """The recorded call written `text` on the statement's line.  (A product with a literal is not a
    site of its own, so the step's operand does not point at the call in it.)"""
    for log in ctx.logs:
        call = log.site
        if call.path == site.path and call.line == site.line and call.kind in ("call", "method") \
                and log.last is not None and call.text == text:
            return call
    return None


def _full_reduction(spec: OperandSpec, made: Site | None, site: Site, ctx):
    """(the reduction's site, the reduced array's Value, the name it was stored in and the statement that
    stored it, or None for both) when the operand is a sum/mean over every axis of a bigger array:
    `np.sum(dZ)` here, or `db` made by one (`db = np.sum(dZ)`, `db = 1 / m * np.sum(dZ)`)."""
    call, name, maker = (_reduction_in(made, ctx, 0), None, None) if made is not None else (None, None, None)
    if call is None and made is None:
        name = spec.name or spec.text
        maker = _assigned_above(name, site, ctx)
        call = _reduction_in(maker, ctx, 0) if maker is not None else None
        if maker is None:  # `grads["db1"]`: what a dictionary display stored under that key
            name, maker, call = _entry_made(spec.text, site, ctx) or (name, None, None)
    if call is None or call.callee.startswith("arg") or any(k in ("axis", "keepdims") for k, _ in call.keywords):
        return None
    log = ctx.by_id.get(call.id)
    if log is None or log.last is None:
        return None
    recv, args = _calls.call_operands(call, log.last.operands)
    array = recv if recv is not None and recv.is_array else (args[0] if args else None)
    rest = args if recv is not None and recv.is_array else args[1:]
    if not _is_array(array) or (array.size or 0) <= 1 or rest:
        return None  # an axis given positionally, or a reduction of one element
    return call, array, name, maker


def _entry_made(text: str, site: Site, ctx) -> tuple[str, Site, Site | None] | None:
    """(variable, the statement that made it, the reduction in it or None) for a dictionary entry read at
    `site`, `grads["db1"]`, when the dictionary is a display `{"db1": db1, ...}` of the file (for an entry
    written as an expression, `{"db1": np.sum(dZ1) / m}`, the key as `"db1":` and the entry itself),
    assigned to the name in its scope, or
    returned by the user's function whose result it is, or passed as a parameter to which every call passes
    the same variable (the course's `update_parameters(parameters, grads)`)."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
            and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
        return None
    found = _display_entry(node.value.id, node.slice.value, site.path, site.scope, site.line, ctx, 0)
    if found is None:
        return None
    value, scope = found
    if isinstance(value, ast.Name):
        at = Site(id=-1, path=site.path, line=value.lineno, col=value.col_offset + 1, end_line=value.lineno,
                  end_col=value.end_col_offset or 0, kind="assign", op="", text=value.id, operands=(), scope=scope)
        maker = _assigned_above(value.id, at, ctx)
        return (value.id, maker, _reduction_in(maker, ctx, 0)) if maker is not None else None
    # `{"db1": np.sum(dZ1) / m}`: the entry's own expression, as written on its line
    text = _written(site.path, value)
    factor = _scaled_factor(text) if text else None
    if factor is None:
        return None
    at = Site(id=-1, path=site.path, line=value.lineno, col=value.col_offset + 1, end_line=value.lineno,
              end_col=value.end_col_offset or 0, kind="assign", op="", text=text, operands=(), scope=scope)
    call = _call_on_line(factor, at, ctx)
    if call is None or call.callee not in _calls.REDUCE:
        return None
    return f'"{node.slice.value}":', at, call


def _written(path: str, node: ast.expr) -> str | None:
    """The source text of a one-line expression of a user's file."""
    import linecache

    if node.end_lineno != node.lineno or node.end_col_offset is None:
        return None
    raw = linecache.getline(path, node.lineno).encode("utf-8")  # ast's columns count UTF-8 bytes
    return raw[node.col_offset:node.end_col_offset].decode("utf-8", "replace") or None


def _display_entry(container: str, key: str, path: str, scope: str, line: int, ctx, depth: int):
    """(the value expression, its scope) stored under `key` in the dictionary `container` holds at `line`."""
    from ._roots import scope_function, scopes_named, static_bindings

    if depth > 3:
        return None
    fn = scope_function(path, scope)
    if fn is None:
        return None
    assigned = [n for n in _statements(fn.body) if isinstance(n, ast.Assign) and n.lineno < line
                and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) and n.targets[0].id == container]
    if not assigned:
        bound = static_bindings(ctx.logs).get((path, scope), {}).get(container)
        return _display_entry(bound[0], key, path, bound[1].scope, bound[1].line, ctx, depth + 1) if bound else None
    value = max(assigned, key=lambda n: n.lineno).value
    if isinstance(value, ast.Dict):
        return _display_entry_of(value, key, scope)
    if isinstance(value, ast.Call):
        callee = value.func.attr if isinstance(value.func, ast.Attribute) else getattr(value.func, "id", None)
        inner = scopes_named(path, callee)
        if len(inner) != 1:
            return None
        returns = [n for n in ast.walk(scope_function(path, inner[0])) if isinstance(n, ast.Return) and n.value]
        if len(returns) != 1:
            return None
        ret = returns[0].value
        if isinstance(ret, ast.Dict):
            return _display_entry_of(ret, key, inner[0])
        if isinstance(ret, ast.Name):
            return _display_entry(ret.id, key, path, inner[0], returns[0].lineno, ctx, depth + 1)
    return None


def _display_entry_of(display: ast.Dict, key: str, scope: str):
    for k, v in zip(display.keys, display.values):
        if isinstance(k, ast.Constant) and k.value == key:
            return v, scope
    return None


def _statements(body: list):
    """The statements of a function's body, in nested blocks too, but not in nested functions or classes."""
    for st in body:
        yield st
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from _statements(getattr(st, field, None) or [])


def _assigned_above(name: str, site: Site, ctx) -> Site | None:
    """The statement that last assigned `name` above `site` in its scope (else the last one in the scope),
    recorded or not: `db = 1 / m * np.sum(dZ)` multiplies numbers, which the recorder does not keep."""
    logs = [lg for lg in ctx.logs if lg.site.path == site.path and lg.site.scope == site.scope
            and name in lg.site.targets and lg.site.id != site.id]
    if not logs:
        return None
    above = [lg for lg in logs if lg.site.line < site.line]
    found = max(above or logs, key=lambda lg: lg.site.line).site
    if found.kind == "assign" and found.value_of is not None:
        inner = ctx.by_id.get(found.value_of)
        return inner.site if inner is not None else None
    if found.kind == "assign":  # `g = 0.5 * np.sum(dZ)`: a product with a literal is no site
        factor = _scaled_factor(found.text)
        return _call_on_line(factor, found, ctx) if factor is not None else None
    return found


def _reduction_in(made: Site, ctx, depth: int) -> Site | None:
    """The reduction call a scalar was made by, looking through products and quotients of numbers."""
    if made.kind in ("call", "method") and made.callee in _calls.REDUCE:
        return made
    if made.kind == "binop" and made.op in _SCALING and depth < 4:
        for spec in made.operands:
            child = ctx.by_id.get(spec.child) if spec.child is not None else None
            if child is not None:
                found = _reduction_in(child.site, ctx, depth + 1)
                if found is not None:
                    return found
    return None


def _broadcast_finding(site: Site, rec: Record, target: str, t: Value, spec: OperandSpec, v: Value,
                       reduction, ctx) -> Finding:
    gname = spec.name or spec.text
    statement = site.text if site.kind == "augassign" else f"{target} = {site.text}"
    what = "a scalar ()" if not v.shape else f"{fmt(v.shape)}"
    if reduction is not None:
        call, array, name, maker = reduction
        origin = f" from `{call.text}` at line {call.line}" if name else ""
        msg = (f"`{statement}`: {gname} is {what}{origin}, a {call.callee} over every axis of "
               f"{call.operands[0].text} {fmt(array.shape)}; "
               f"broadcast onto {target} {fmt(t.shape)}, it moves every entry of {target} by the same step")
        fix = _reduction_fix(call, array, t, name, maker, statement)
        severity = "warning"
    else:
        msg = (f"`{statement}`: {gname} {fmt(v.shape)} is smaller than {target} {fmt(t.shape)} and broadcasts "
               f"onto it: every entry of {target} along the stretched axes moves by the same step")
        fix = f"{gname} must be {fmt(t.shape)} like {target}: compute it per entry of {target}"
        severity = "warning"
    ops = (Operand(target, t.kind, t.shape, t.dtype, "the parameter"), Operand.of(spec.text, v))
    return Finding("SC502", severity, site, ops, tuple(t.shape), msg, fix, rec.count)


def _reduction_fix(call: Site, array: Value, t: Value, name: str | None, maker: Site | None, statement: str) -> str:
    """The reduction with the axis that gives the parameter's shape, verified by shape algebra; written in
    the statement that stored it in `name` (`maker`) when there is one."""
    want = tuple(t.shape)
    new, also = None, ""
    for keep in (False, True):
        axes = [axis for axis in range(len(array.shape)) if _shapes.reduce(array.shape, axis, keep) == want]
        if axes:
            new = _with_args(call.text, f"axis={axes[0]}" + (", keepdims=True" if keep else ""))
            if len(axes) > 1:  # a square array: shapes cannot tell the batch axis
                also = (f" (or axis={', axis='.join(map(str, axes[1:]))}: each gives {fmt(want)}; sum over the "
                        f"batch axis)")
            break
    if new is None:
        for axis in range(len(array.shape)):
            out = _shapes.reduce(array.shape, axis, False)
            if out is not None and _shapes.prod(out) == _shapes.prod(want):
                new = f"{_with_args(call.text, f'axis={axis}')}.reshape({', '.join(map(str, want))})"
                break
    if new is None:
        return f"reduce {call.operands[0].text} over the batch axis only, to {fmt(want)} like the parameter"
    if name:
        stmt = new if maker is None or maker.id == call.id else maker.text.replace(call.text, new)
        lead = name if name.endswith(":") else f"{name} ="  # a dictionary's entry (`"db1": ...`) or a name
        return f"{lead} {stmt} at line {call.line} -> {fmt(want)}{also}"
    return f"{statement.replace(call.text, new)} ({new} -> {fmt(want)}){also}"


def _with_args(text: str, extra: str) -> str:
    """`np.sum(dZ)` -> `np.sum(dZ, axis=1)`; `dZ.sum()` -> `dZ.sum(axis=1)`."""
    body = text.rstrip()
    if not body.endswith(")"):
        return f"{body}({extra})"
    return f"{body[:-2]}({extra})" if body.endswith("()") else f"{body[:-1]}, {extra})"


SITE_RULES = (matrix_star, positional_out, glued_assignment, broadcast_update)
