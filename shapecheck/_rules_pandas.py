"""SC202 pandas label alignment: where pandas pairs values by label (or lines a vector up with the
columns) and the code meant positions (or rows).

A pure function over what the recorder noted: the operands' kinds and shapes, and for two pandas
operands how their labels relate (`Record.labels`, read once per signature by `_recorder._labels`).
`_rules.run` runs it with the rules there (it imports this module when it runs: this one builds on its helpers).
"""

from __future__ import annotations

from . import _shapes
from ._events import OperandSpec, Record, Site, Value
from ._report import Crash, Finding, Fix, operands_of
from ._rules import _PANDAS_ARITHMETIC, ELEMENTWISE, Context, _paren, _to_numpy_fix
from ._shapes import fmt

# `df - s` as a method that takes an axis; the reflected one when the DataFrame is on the right.
_METHOD = {"+": ("add", "add"), "-": ("sub", "rsub"), "*": ("mul", "mul"), "/": ("div", "rdiv")}


def label_alignment(site: Site, rec: Record, ctx: Context) -> Finding | None:
    """SC202: two pandas objects whose labels differ, a Series of row values (or a 1-D array as long as
    the rows) that pandas lines up with a DataFrame's columns, and `DataFrame.dot` / `@` whose column
    labels are not the other operand's row labels."""
    found = _judge(site, rec, ctx)
    if found is None:
        return None
    severity, msg, fixes = found
    return Finding("SC202", severity, site, operands_of(site, rec), rec.result.shape if rec.result else None,
                   msg, _fix_text(fixes), rec.count)


def _judge(site: Site, rec: Record, ctx: Context) -> tuple[str, str, list] | None:
    """(severity, message, fixes: checked `Fix`es and advice as text), or None when pandas pairs as meant."""
    how = _pairing(site, rec.operands)
    if how is None:
        return None
    (sa, a), (sb, b) = zip(site.operands[:2], rec.operands[:2])
    if how == "product":
        return _product(site, rec, sa, a, sb, b)
    if a.is_pandas and b.is_pandas and a.kind == b.kind:
        return _same_kind(site, rec, ctx, sa, a, sb, b)
    return _frame_and_vector(site, rec, ctx)


def _fix_text(fixes: list) -> str | None:
    """`df.sub(s, axis=0) -> (6, 3) (to go row by row), or ...`: the fixes of a finding, on one line."""
    return ", or ".join(f"{f.expression} -> {fmt(f.shape)}" + (f" ({f.why})" if f.why else "")
                        if isinstance(f, Fix) else f for f in fixes) or None


def explain_crash(crash: Crash, site: Site, rec: Record, ctx: Context) -> None:
    """A crash at a site SC202 judges (`X.dot(W)` with other labels, `df - arr` as long as the rows) that
    the explainer found no fix for: its cause in pandas' terms, and its fixes (shape-checked, compiled)."""
    found = _judge(site, rec, ctx)
    if found is None or found[0] != "warning" or crash.fixes:
        return  # `p - y` with y one column: the explainer's own `.ravel()` fixes say it already
    crash.explanation = found[1].split("`: ", 1)[-1]
    checked = [f for f in found[2] if isinstance(f, Fix) and f.shape is not None and compiles(f.expression)]
    crash.fixes = checked


def compiles(text: str) -> bool:
    """Is a fix's text a Python expression (its shapes are checked apart)?"""
    try:
        compile(text, "<fix>", "eval")
    except SyntaxError:
        return False
    return True


def _pairing(site: Site, vals: tuple[Value, ...]) -> str | None:
    """"product" for a matrix product of two pandas objects, "elementwise" where pandas pairs two
    operands value by value on its own terms, None where it does not (or the user chose an axis)."""
    if len(vals) < 2 or len(site.operands) < 2 or vals[0].shape is None or vals[1].shape is None:
        return None
    a, b = vals[0], vals[1]
    if site.kind in ELEMENTWISE:
        op = site.op
    elif site.kind == "method" and a.is_pandas and site.callee in _PANDAS_ARITHMETIC | {"dot"}:
        if any(k in ("axis", "fill_value") for k, _ in site.keywords) or len(vals) > 2:
            return None  # `df.sub(s, axis=0)`, `s1.add(s2, fill_value=0)`: the user said how to line them up
        op = site.callee
    else:
        return None
    if op in ("@", "dot"):
        return "product" if a.is_pandas and b.is_pandas else None
    if a.is_pandas and b.is_pandas:
        return "elementwise"
    if "DataFrame" in (a.kind, b.kind) and any(v.kind in ("ndarray", "matrix") and len(v.shape) == 1
                                               for v in (a, b)):
        return "elementwise"
    return None


def rows_meant(site: Site, vals: tuple[Value, ...]) -> bool:
    """Does SC202 judge this site's DataFrame-and-vector pairing (so SC201 stands aside)?  A 1-D array
    as long as the frame's rows and not its columns, or a per-row reduction of the frame itself."""
    if _pairing(site, vals) != "elementwise" or vals[0].is_pandas == vals[1].is_pandas:
        return False
    i = 0 if vals[0].kind == "DataFrame" else 1
    frame, vec = vals[i], vals[1 - i]
    return (vec.shape[0] == frame.shape[0] != frame.shape[1]
            or _per_row(site.operands[1 - i], site.operands[i]))


def _per_row(vec: OperandSpec, frame: OperandSpec) -> bool:
    """`df.mean(axis=1)` met with `df`: one value per row of that very frame."""
    return vec.reduction_axis == 1 and vec.reduced is not None and vec.reduced.strip() == frame.text.strip()


def _by_position(spec: OperandSpec, site: Site, ctx: Context) -> bool:
    """Is this pandas operand labelled by position: `pd.Series(values)` without `index=`, written here
    or where its name was assigned?  Its labels 0..n-1 then say nothing about which rows it belongs to."""
    import ast

    text, made = spec.text, None
    if spec.name:
        log = ctx.assignment(spec.name, site)
        if log is None:
            return False
        text = log.site.text
        made = ctx.by_id.get(log.site.value_of) if log.site.value_of is not None else None
    elif spec.child is not None:
        made = ctx.by_id.get(spec.child)
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return False
    if not isinstance(call, ast.Call) or not call.args or any(k.arg == "index" for k in call.keywords):
        return False
    func = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
    if func not in ("Series", "DataFrame"):
        return False
    first = made.last.operands[0] if made is not None and made.last is not None and made.last.operands else None
    if first is not None:
        return first.kind in ("ndarray", "matrix", "list", "tuple")
    return isinstance(call.args[0], (ast.List, ast.Tuple, ast.ListComp)) or \
        ast.unparse(call.args[0]).startswith(("np.", "numpy."))


def _kind_labels(v: Value) -> str:
    return f"{v.kind} {fmt(v.shape)}, index {v.index or '?'}" + (f", columns {v.columns}" if v.columns else "")


def _product(site: Site, rec: Record, sa, a: Value, sb, b: Value):
    """`X.dot(W)` / `X @ W` with W a DataFrame or Series: pandas pairs X's columns with W's row labels."""
    if a.shape[-1] != b.shape[0] or rec.labels not in ("reordered", "differ"):
        return None  # shapes that disagree crash on their own; equal labels pair as the maths does
    cols = f"{sa.text}'s column labels" if a.kind == "DataFrame" else f"{sa.text}'s labels"
    where = f"({a.columns or a.index or '?'})"
    res = _shapes.matmul(a.shape, b.shape)
    by_position = (f"{_paren(sa.text)}.dot({_paren(sb.text)}.to_numpy())" if site.kind == "method"
                   else f"{_paren(sa.text)} @ {_paren(sb.text)}.to_numpy()")
    if rec.labels == "reordered":
        msg = (f"`{site.text}`: {sb.text}'s row labels ({b.index or '?'}) are {cols} in another order; pandas "
               f"reorders {sb.text}'s rows to match them by label before multiplying")
        return "info", msg, [Fix(by_position, res, f"if {sb.text}'s rows follow {sa.text}'s columns by position")]
    msg = (f"`{site.text}`: {cols} {where} are not {sb.text}'s row labels ({b.index or '?'}); the shapes agree, "
           f"but pandas multiplies by label, not position, and raises `ValueError: matrices are not aligned`")
    label = f"{sa.text}.columns" if a.kind == "DataFrame" else f"{sa.text}.index"
    return "warning", msg, [Fix(by_position, res, "pairs them by position"),
                            f"label {sb.text}'s rows where it is made: pd.DataFrame(..., index={label})"]


def _same_kind(site: Site, rec: Record, ctx: Context, sa, a: Value, sb, b: Value):
    """Two Series, or two DataFrames: pandas pairs them label by label."""
    if rec.labels not in ("reordered", "differ"):
        return None
    op = site.op if site.kind in ELEMENTWISE else None
    fresh = [s for s in (sa, sb) if _by_position(s, site, ctx)]
    same_shape = tuple(a.shape) == tuple(b.shape)
    if len(fresh) == 1 and same_shape and op is not None:
        kept = sb if fresh[0] is sa else sa
        texts = [f"{_paren(s.text)}.reset_index(drop=True)" if s is kept else s.text for s in (sa, sb)]
        fix = [Fix(f"{texts[0]} {op} {texts[1]}", a.shape, "pairs them by position"),
               f"give {fresh[0].text} the labels where it is made: index={kept.text}.index"]
    elif same_shape and op is not None:
        fix = [Fix(f"{_paren(sa.text)}.to_numpy() {op} {_paren(sb.text)}.to_numpy()", a.shape,
                   "pairs them by position")]
    elif same_shape:
        fix = ["convert both with .to_numpy() to pair them by position"]
    else:
        fix = [f"select the same rows in both first: they have {a.shape[0]} and {b.shape[0]} rows"]
    both = f"{sa.text} ({_kind_labels(a)}) and {sb.text} ({_kind_labels(b)})"
    if site.kind == "compare":  # even the same labels in another order
        return "warning", (f"`{site.text}`: {both} are labelled differently; pandas refuses to compare them "
                           f"(`ValueError: Can only compare identically-labeled ...`)"), fix
    if rec.labels == "reordered":
        if len(fresh) != 1:
            return ("info", f"`{site.text}`: {both} hold the same labels in different orders; pandas pairs "
                            f"them by label", [])
        kept = sb if fresh[0] is sa else sa
        msg = (f"`{site.text}`: {both} hold the same labels in different orders; pandas pairs them by label, not "
               f"position: if {fresh[0].text}'s values were computed for {kept.text}'s rows in order, they now "
               f"meet other rows")
        return "warning", msg, fix
    msg = f"`{site.text}`: {both} are labelled differently; pandas pairs them by label"
    res = rec.result.shape if rec.result is not None else None
    if a.kind == "Series" and res is not None:
        common = a.shape[0] + b.shape[0] - res[0]
        shared = f"only {common}" if common > 0 else "none"
        msg += (f": {shared} of their labels are in both, and the result has {res[0]} labels, "
                f"{res[0] - max(common, 0)} of them NaN")
    else:
        msg += " and fills labels found in only one of them with NaN" + (f" (the result is {fmt(res)})" if res else "")
    return "warning", msg, fix


def _frame_and_vector(site: Site, rec: Record, ctx: Context):
    """A DataFrame met with a Series or a 1-D array: pandas lines the vector up with its columns."""
    vals = rec.operands
    i = 0 if vals[0].kind == "DataFrame" else 1
    fs, frame = site.operands[i], vals[i]
    vs, vec = site.operands[1 - i], vals[1 - i]
    m, n = frame.shape
    per_row = _per_row(vs, fs)
    if vec.is_pandas:
        if (rec.labels == "equal" and not per_row) or rec.labels in ("reordered", None):
            return None  # `df - df.mean()`: a value per column, on purpose
        if rec.labels == "differ":
            return _unmatched_series(site, rec, fs, frame, vs, vec)
        what = f"labelled like {fs.text}'s rows ({vec.index or '?'})"
    else:
        if not (vec.shape[0] == m != n or per_row):
            return None  # SC201 says what a 1-D array of another length does
        what = f"{m} values long, like {fs.text}'s rows"
    if per_row:
        what = f"one value per row of {fs.text}"
    outcome = "raises ValueError" if not vec.is_pandas and m != n else \
        f"gives {fmt(rec.result.shape) if rec.result and rec.result.shape else 'a result'} with NaN wherever a label is in only one of them" \
        if rec.labels == "rows" else "runs, pairing each value with a column"
    msg = (f"`{site.text}`: {vs.text} is {what}, but pandas lines a {vec.kind if vec.is_pandas else '1-D array'} "
           f"up with a DataFrame's columns ({frame.columns or '?'}), not its rows, and {outcome}")
    by_row = Fix(_by_row(site, i, fs, vs), frame.shape, "to go row by row")
    if n == 1 and not vec.is_pandas and site.kind in ELEMENTWISE:
        # One column: `y.to_numpy().ravel()` (checked by SC201's helper) reads better than `y.rsub(p, axis=0)`.
        return "warning", msg, [_to_numpy_fix(fs, site, ctx, frame, vec)]
    return "warning", msg, [by_row]


def _by_row(site: Site, i: int, fs: OperandSpec, vs: OperandSpec, vec_text: str | None = None) -> str:
    """`df.sub(s, axis=0)`: the DataFrame's method that pairs a vector with its rows."""
    vec_text = vec_text or vs.text
    if site.kind == "method":
        return f"{_paren(fs.text)}.{site.callee}({vec_text}, axis=0)"
    name = _METHOD.get(site.op.rstrip("="), ("sub", "rsub"))[0 if i == 0 else 1]
    return f"{_paren(fs.text)}.{name}({vec_text}, axis=0)"


def _unmatched_series(site: Site, rec: Record, fs, frame: Value, vs, vec: Value):
    """`df - s` where s's labels are neither the columns nor the rows of df."""
    m, n = frame.shape
    res = rec.result.shape if rec.result is not None else None
    msg = (f"`{site.text}`: pandas matches the labels of the Series {vs.text} ({vec.index or '?'}) with the "
           f"columns of the DataFrame {fs.text} ({frame.columns or '?'}), and they differ")
    if res is not None and len(res) == 2:
        common = n + vec.shape[0] - res[1]
        msg += f": {max(common, 0)} of them match, and the result {fmt(res)} has {res[1] - max(common, 0)} NaN columns"
    i = site.operands.index(fs)
    if vec.shape[0] == m:
        fix = Fix(_by_row(site, i, fs, vs, f"{_paren(vs.text)}.to_numpy()"), frame.shape, "to go row by row")
    elif vec.shape[0] == n and site.kind in ELEMENTWISE:
        texts = [s.text if s is fs else f"{_paren(s.text)}.to_numpy()" for s in site.operands[:2]]
        fix = Fix(f"{texts[0]} {site.op} {texts[1]}", frame.shape, "pairs its values with the columns by position")
    else:
        fix = f"give {vs.text} {fs.text}'s column labels (index={fs.text}.columns)"
    return "warning", msg, [fix]
