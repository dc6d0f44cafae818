"""Numerics: where a NaN or inf was first made (SC301), and integer arithmetic that went wrong (SC302).

SC301 costs nothing per operation: numpy already reports the first NaN or inf
an operation makes, as a RuntimeWarning ("divide by zero encountered in log")
issued from inside the ufunc, in the user's frame.  `watch` wraps
`warnings._showwarnmsg`, the function every shown warning passes through
(Python's C warning code looks it up too).  It is wrapped rather than
`showwarning` because `catch_warnings(record=True)`, which pytest enters
around every test, swaps `showwarning` but keeps `_showwarnmsg`; and because
the wrapper hands the very same message object on, what the user sees is
unchanged.  A warning the filters or `np.errstate` silenced never reaches it:
then there is no finding.

SC302's wrap-around check runs when the recorder makes a new record (once per
operand signature at a site), on integer arrays of at most 4 bytes only; its
other two traps are read from what was recorded (a float result stored into an
int array by indexing) and from a crash (`explain_cast`: an in-place float
update of an int array).  Nothing of the user's runs again: operands are read
from the running frame and only plain arrays and numbers are computed with.
"""

from __future__ import annotations

import ast
import linecache
import re
import sys
import warnings
# Bound at import, as in _recorder: `on_record` runs inside the hooks, and a script may replace builtins.len
# with a traced wrapper of its own, whose hooks would then run inside ours.
from builtins import (all, any, enumerate, float, getattr, int, isinstance, issubclass, len, list, max, min,  # noqa: A004
                      next, sorted, str, type)

import numpy as np

from . import _recorder
from ._events import Record, Site, SiteLog
from ._shapes import fmt

# The report's classes are imported where findings are made (after the script): the recorder imports
# this module at start-up, and the report is not part of tracing (tests/test_startup.py).

# -- SC301: NaN or inf produced ---------------------------------------------------

_FP = r"(divide by zero|overflow|invalid value) encountered in (?:scalar )?(\w+)"  # compiled at first use
_OPS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "true_divide": "/", "floor_divide": "//",
        "power": "**", "remainder": "%", "matmul": "@"}
_REDUCE = frozenset({"sum", "prod", "mean", "cumsum", "cumprod", "dot", "var", "std"})
_LOGS = frozenset({"log", "log2", "log10", "log1p"})
_ROOTS = frozenset({"sqrt", "power", "arcsin", "arccos", "arccosh", "arctanh"})


class Event:
    """A NaN or inf first made at a site: the record that run used (None if it held no array) and the words."""

    __slots__ = ("record", "severity", "message", "fix")

    def __init__(self, record: Record | None, severity: str, message: str, fix: str | None):
        self.record = record
        self.severity = severity
        self.message = message
        self.fix = fix


EVENTS: dict[int, Event] = {}  # site id -> the first NaN/inf made there
_SEEN: set[tuple] = set()  # (filename, line, warning text) already looked at: `-W always` costs one look-up
_ORIGINAL: list = []  # the `_showwarnmsg` found when watching began
_BUSY: list = []  # non-empty while a warning is being looked at: our own never recurse


def watch() -> None:
    """Start noticing the floating-point warnings numpy shows for traced files (idempotent).  Like the hooks
    in builtins, the wrapper stays for the life of the process: it hands every warning on unchanged."""
    current = getattr(warnings, "_showwarnmsg", None)
    if current is None or getattr(current, "_shapecheck", False):
        return
    _ORIGINAL[:] = [current]

    def _showwarnmsg(msg):
        if not _BUSY:
            _BUSY.append(1)
            try:
                _notice(msg, sys._getframe(1))
            except Exception as e:  # never let a look at a warning change what the user's program does
                if not _recorder.raised_by_shapecheck(e):
                    raise  # a signal handler's exception (a time limit) is the program's own
                _recorder.STATE.internal_errors += 1
            finally:
                _BUSY.clear()
        return current(msg)

    _showwarnmsg._shapecheck = True
    warnings._showwarnmsg = _showwarnmsg


def _notice(msg, frame) -> None:
    if type(msg.message) is not RuntimeWarning or msg.filename not in _recorder.FILES:
        return
    text = msg.message.args[0] if msg.message.args else ""
    m = re.fullmatch(_FP, text) if type(text) is str else None
    if m is None:
        return
    key = (msg.filename, msg.lineno, text)
    if key in _SEEN:
        return
    _SEEN.add(key)
    while frame is not None and not (frame.f_code.co_filename == msg.filename and frame.f_lineno == msg.lineno):
        frame = frame.f_back
    if frame is None:
        return
    path = _recorder.FILES[msg.filename]
    sites = [live.log.site for live in _recorder.LIVE
             if live.log.site.path == path and live.log.site.line <= msg.lineno <= live.log.site.end_line]
    if any(s.id in EVENTS for s in sites):
        return  # a later warning on the line is a consequence of the first (`0 * -inf` after `log(0)`)
    candidates = [s for s in sorted(sites, key=lambda s: (s.line, s.col)) if _matches(s, m[2])]
    names = {**frame.f_globals, **frame.f_locals}
    found, unsure = None, []
    for site in candidates:
        texts = _operand_texts(site)
        values = [_value(t, names) for t in texts]
        result = judge(site, m[1], m[2], values, texts)
        if result is _CONSEQUENCE:
            return
        if result is not None and all(v is not None for v in values):
            found = site, result
            break
        if result is not None:
            unsure.append((site, result))
    if found is None and unsure:
        found = unsure[0]
        if len(unsure) > 1:  # numpy names the function, not which of its calls on the line
            severity, message, fix = found[1]
            others = " or ".join(f"`{s.text}`" for s, _ in unsure[1:])
            found = found[0], (severity, message + f" (or {others} on the same line made it)", fix)
    if found is None:
        return
    site, (severity, message, fix) = found
    guard = _guarded(site, sites)
    if guard is not None and severity == "warning":
        severity = "info"
        message += f"; {guard} replaces those entries, so the result may be right"
        if site.op.startswith("/") and len(site.operands) == 2:
            num, den = (spec.text for spec in site.operands)
            fix = (f"np.divide({num}, {den}, out=np.zeros_like({num}, dtype=float), where={_paren(den)} != 0) "
                   f"divides only where it can (and keeps numpy quiet)")
    live = _recorder.LIVE[site.id]
    rec = live.cur if live.cur.operands and live.cur is not live.over else None
    EVENTS[site.id] = Event(rec, severity, message, fix)


class _Spec:
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _operand_texts(site: Site) -> list[str]:
    """The operands' source texts; for an assignment site (`r = x ** 0.5`: an operation with a literal
    operand is no site of its own), those of the operation it assigns."""
    if site.kind != "assign":
        return [spec.text for spec in site.operands]
    node = _top(site)
    parts = [node.left, node.right] if isinstance(node, ast.BinOp) else node.args if isinstance(node, ast.Call) else []
    return [ast.get_source_segment(site.text.strip(), p) or "" for p in parts]


def _top(site: Site):
    try:
        return ast.parse(site.text.strip(), mode="eval").body
    except SyntaxError:
        return None


def _assigned_op(site: Site) -> str:
    node = _top(site)
    return _SYMBOLS.get(type(node.op), "") if isinstance(node, ast.BinOp) else ""


_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Pow: "**",
            ast.Mod: "%", ast.MatMult: "@"}


_GUARDS = frozenset({"where", "nan_to_num", "isfinite", "isnan", "isinf", "clip"})


def _guarded(site: Site, sites: list[Site]) -> str | None:
    """`np.where(d > 0, x / d, 0)`: numpy computes (and warns about) every entry, then keeps the good ones."""
    for s in sites:
        if s.kind in ("call", "method") and s.callee in _GUARDS and s is not site \
                and any(site.text in spec.text for spec in s.operands):
            return f"np.{s.callee}"
    return None


def _matches(site: Site, ufunc: str) -> bool:
    """Could this site be the ufunc numpy named?  `np.log(x)` for log, `a / b` for divide, `x.sum()` for reduce."""
    if site.kind in ("binop", "augassign"):
        return ("**" if ufunc == "sqrt" else _OPS.get(ufunc)) == site.op.rstrip("=") if site.op != "==" else False
    if site.kind in ("call", "method"):
        return site.callee == ufunc or (ufunc == "reduce" and site.callee in _REDUCE) or \
            (ufunc in _OPS and site.callee in ("divide", "true_divide") and _OPS[ufunc] == "/")
    if site.kind == "assign":
        node = _top(site)
        if isinstance(node, ast.BinOp):  # numpy computes `x ** 0.5` with sqrt, and says so
            return _SYMBOLS.get(type(node.op)) == ("**" if ufunc == "sqrt" else _OPS.get(ufunc))
        if isinstance(node, ast.Call) and not node.keywords:
            func = node.func
            return (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)) == ufunc
    return False


_ALLOWED = (ast.Expression, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.Mult,
            ast.Div, ast.Pow, ast.USub, ast.UAdd)
_BINARY = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide, ast.Pow: np.power}


def _value(text: str, names: dict):
    """The operand's value, when its text is names and numbers joined by + - * / ** whose names hold plain
    arrays or numbers (so working it out runs nothing of the user's); else None."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None
    if not all(isinstance(n, _ALLOWED) for n in ast.walk(tree)):
        return None
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            v = names.get(n.id, _MISSING)
            if not (type(v) is np.ndarray and v.dtype.kind in "iufb" or type(v) in (int, float)
                    or (issubclass(type(v), np.generic) and type(v).__module__ == "numpy" and v.dtype.kind in "iufb")):
                return None
        elif isinstance(n, ast.Constant) and type(n.value) not in (int, float):
            return None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Name):
            return names[node.id]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp):
            return np.negative(ev(node.operand)) if isinstance(node.op, ast.USub) else ev(node.operand)
        return _BINARY[type(node.op)](ev(node.left), ev(node.right))

    with np.errstate(all="ignore"):
        return np.asarray(ev(tree))


_MISSING = object()
_CONSEQUENCE = object()  # an operand already held NaN or inf: the warning is not where they were made


def _stats(v: np.ndarray) -> str:
    return f"min {_num(v.min())}, max {_num(v.max())}" if v.size else "empty"


def _num(x) -> str:
    return f"{float(x):.4g}"


def _entries(n: int, total: int, what: str) -> str:
    return f"has {n} of {total} entries {what}" if total > 1 else f"is {what}"


def judge(site: Site, error: str, ufunc: str, values: list | None, texts: list[str] | None = None):
    """(severity, message, fix) for the warning `error encountered in ufunc` at `site`, given its operands'
    values (None where they could not be read); None when these values do not explain the warning;
    `_CONSEQUENCE` when an operand already held NaN or inf."""
    if values is not None:
        known = [v for v in values if v is not None]
        with np.errstate(all="ignore"):
            if any(v.dtype.kind in "fc" and not np.isfinite(v).all() for v in known):
                return _CONSEQUENCE
    specs = [_Spec(t) for t in texts] if texts is not None else site.operands
    op = site.op.rstrip("=") if site.kind != "assign" else _assigned_op(site)
    arg = values[0] if values and len(values) == 1 else None
    text = specs[0].text if len(specs) == 1 else None
    said = f"numpy warned \"{error} encountered in {ufunc}\""
    if ufunc in _LOGS and len(specs) == 1:
        floor = "1e-12" if ufunc != "log1p" else "-1 + 1e-12"
        what = "-inf" if error == "divide by zero" else "NaN"
        if arg is not None:
            zero = int(np.count_nonzero(arg == (0 if ufunc != "log1p" else -1)))
            neg = int(np.count_nonzero(arg < (0 if ufunc != "log1p" else -1)))
            if error == "divide by zero" and zero:
                why = _entries(zero, arg.size, "equal to 0" if ufunc != "log1p" else "equal to -1")
            elif error == "invalid value" and neg:
                why = _entries(neg, arg.size, "negative" if ufunc != "log1p" else "below -1")
            else:
                return None
            why = f": {text} {_shape(arg)} {why} ({_stats(arg)})"
        else:
            had = "a 0" if what == "-inf" else "a negative value"
            why = f": {text} had {had} (not a plain name: its range is not shown)"
        # np.maximum(x, eps) is at least eps wherever x is a number, so the log of it is finite.
        fix = f"{_substitute(site, text, f'np.maximum({text}, {floor})')} (an epsilon keeps the log finite"
        probabilities = arg is None or bool(((arg >= 0) & (arg <= 1)).all())
        fix += f"; for probabilities np.clip({text}, 1e-12, 1 - 1e-12) guards both logs of a cross-entropy)" \
            if probabilities and ufunc != "log1p" else ")"
        tail = ", and -inf turns into NaN at the next `0 * -inf` or `inf - inf`" if what == "-inf" else ""
        return "warning", f"`{site.text}` made {what}{why}; {said}{tail}", fix
    if ufunc in _ROOTS and error == "invalid value" and arg is not None and len(specs) == 1:
        neg = int(np.count_nonzero(arg < 0))
        if not neg:
            return None
        return "warning", (f"`{site.text}` made NaN: {text} {_shape(arg)} {_entries(neg, arg.size, 'negative')} "
                           f"({_stats(arg)}); {said}"), f"{_substitute(site, text, f'np.maximum({text}, 0)')}"
    if ufunc in ("exp", "exp2", "expm1") and error == "overflow" and arg is not None:
        limit = np.log(np.finfo(arg.dtype if arg.dtype.kind == "f" else np.float64).max)
        big = int(np.count_nonzero(arg > limit))
        if not big:
            return None
        msg = (f"`{site.text}` made inf: {text} {_shape(arg)} {_entries(big, arg.size, f'above {_num(limit)}')}, "
               f"where exp overflows {arg.dtype if arg.dtype.kind == 'f' else 'float64'} ({_stats(arg)}); {said}")
        return _exp_advice(site, text, arg, msg)
    if ufunc in ("divide", "true_divide", "floor_divide", "remainder") and values is not None and len(values) == 2:
        num, den = values
        if den is None:
            return None
        den_text = specs[1].text
        zero = den == 0
        nz = int(np.count_nonzero(zero))
        if not nz:
            return None
        both = int(np.count_nonzero(zero & (num == 0))) if num is not None else 0
        what = "NaN" if error == "invalid value" else "inf"
        why = f"{den_text} {_shape(den)} {_entries(nz, den.size, 'equal to 0')}"
        if error == "invalid value" and num is not None:
            why += f", and {both} entries are 0/0" if both > 1 else ", and one entry is 0/0"
        fix = None
        for guarded in (f"np.maximum({den_text}, 1e-12)", f"({den_text} + 1e-12)"):
            g = np.maximum(den, 1e-12) if guarded.startswith("np.") else den + 1e-12
            if (den >= 0).all() or not guarded.startswith("np."):
                with np.errstate(all="ignore"):
                    ok = num is None or np.isfinite(np.true_divide(num, g)).all()
                if ok:
                    fix = f"{_guard_denominator(site, specs[0].text, den_text, guarded, op)} (or skip the entries " \
                          f"with nothing to divide)"
                    break
        return "warning", f"`{site.text}` made {what}: {why}; {said}", fix
    if ufunc in ("power", "sqrt") and error == "invalid value" and values is not None and len(values) == 2 \
            and values[0] is not None and values[1] is not None:
        base, power = values
        neg = int(np.count_nonzero((base < 0) & (np.asarray(power) != np.round(power))))
        if neg:
            text = specs[0].text
            return "warning", (f"`{site.text}` made NaN: {text} {_shape(base)} {_entries(neg, base.size, 'negative')} "
                               f"({_stats(base)}), and a fractional power of a negative number is NaN; {said}"), \
                f"np.maximum({text}, 0) {op} {specs[1].text}"
    if values is not None and any(v is None for v in values):
        return "warning", (f"`{site.text}` made NaN or inf; {said} (its operands are not plain names: their range "
                           f"is not shown)"), None
    if error == "overflow" and values is not None:
        return "warning", (f"`{site.text}` overflowed to inf from finite operands; {said}: values this large "
                           f"usually mean unscaled inputs (standardise X) or a learning rate that is too big"), None
    return "warning", f"`{site.text}` made NaN or inf from finite operands; {said}", None


def _guard_denominator(site: Site, num: str, den: str, guarded: str, op: str) -> str:
    """`a / b` -> `a / guarded`; `np.divide(a, b)` -> `np.divide(a, guarded)`."""
    if site.kind in ("call", "method"):
        text = site.text
        start = text.find(num, text.find("(") + 1) + len(num)
        return text[:start] + text[start:].replace(den, guarded, 1)
    return f"{num} {op} {guarded}"


def _shape(v: np.ndarray) -> str:
    return f"{fmt(v.shape)} {v.dtype}" if v.ndim else str(v.dtype)


def _substitute(site: Site, old: str, new: str) -> str:
    """The site's text with its operand `old` written as `new` (inside the call's parentheses)."""
    text = site.text
    at = text.find(old, text.find("(") + 1 if site.kind in ("call", "method") else 0)
    return text[:at] + new + text[at + len(old):] if at >= 0 else new


def _exp_advice(site: Site, text: str, arg: np.ndarray, msg: str):
    """A softmax wants the max-shift (same result, no overflow); `1 / (1 + np.exp(-z))` is still right
    (1 / inf is 0), so there it is only a note; elsewhere, clip."""
    if _in_sigmoid(site):
        return "info", msg + "; in a sigmoid 1 / (1 + inf) is 0, so the result is still right", \
            f"{_substitute(site, text, f'np.clip({text}, -500, 500)')} to keep numpy quiet"
    if arg.ndim == 2:
        axis = _normalised_axis(site)
        if axis is not None:
            shifted = f"{text} - np.max({text}, axis={axis}, keepdims=True)"
            return "warning", msg, (f"{_substitute(site, text, shifted)} (subtracting the max gives the same "
                                    f"softmax and never overflows)")
    if arg.ndim <= 1 and site.targets:
        shifted = f"{text} - np.max({text})"
        clipped = _substitute(site, text, f"np.clip({text}, None, 700)")
        return "warning", msg, (f"{_substitute(site, text, shifted)} if this is a softmax (the same result, "
                                f"never overflows); else clip: {clipped}")
    return "warning", msg, f"{_substitute(site, text, f'np.clip({text}, None, 700)')}, or shift by the max in a softmax"


def _in_sigmoid(site: Site) -> bool:
    """Is this exp the denominator of `1 / (1 + np.exp(-z))`?  Literal operands make no sites of their own,
    so the source line says it."""
    line = linecache.getline(_filename(site), site.line)
    one = r"1(?:\.0*)?\s*"
    return re.search(one + r"/\s*\(\s*" + one + r"\+\s*" + re.escape(site.text), line) is not None


def _filename(site: Site) -> str:
    return next((real for real, shown in _recorder.FILES.items() if shown == site.path), site.path)


def _normalised_axis(site: Site) -> int | None:
    """For `e = np.exp(Z)`, the axis of the sum that `e` is divided by a few lines below (a softmax)."""
    if not site.targets:
        return None
    name = site.targets[0]
    for live in _recorder.LIVE:
        s = live.log.site
        if s.path == site.path and site.line <= s.line <= site.line + 5 and s.callee == "sum" \
                and name in re.findall(r"\w+", s.text):
            for key, value in s.keywords:
                if key == "axis" and value.lstrip("-").isdigit():
                    return int(value)
    return None


# -- SC302: integer traps ---------------------------------------------------------

WRAPS: dict[int, tuple[str, str]] = {}  # id(record) -> (message, fix), for records whose first run wrapped
_INT_OPS = {"+": np.add, "-": np.subtract, "*": np.multiply}
_INT_CALLS = {"add": "+", "subtract": "-", "multiply": "*"}
_EXACT_LIMIT = 1 << 22  # array-with-array checks compute in int64 up to this many elements
_NUMPY2 = int(np.__version__.split(".", 1)[0]) >= 2  # NEP 50: an out-of-range Python int raises


def on_record(site: Site, rec: Record, operands, value=None) -> None:
    """Called by the recorder when it makes a new record: did this run of `+ - *` on small integers wrap?
    `value` is what an assignment assigned (its site has no operands)."""
    if len(operands) == 2 and site.kind in ("binop", "augassign"):
        op = site.op.rstrip("=")
        pairs = [(op, operands[0], operands[1])] if op in _INT_OPS else []
    elif len(operands) == 2 and site.kind == "call" and site.callee in _INT_CALLS:
        pairs = [(_INT_CALLS[site.callee], operands[0], operands[1])]
    else:
        pairs = []
    if pairs:
        x, y = pairs[0][1:]
        if _small(x) or _small(y):
            found = wrapped(pairs[0][0], x, y, inplace=site.kind == "augassign")
            if found is not None:
                WRAPS[id(rec)] = _wrap_words(site, pairs[0][0], pairs[0][1:], found)
        return
    # `img + 100` with a literal is not a site of its own (a number broadcasts as a scalar): its value is an
    # operand of this site, or what this assignment assigns.  Its array is read from the user's frame.
    values = [value] if site.kind == "assign" else list(operands)
    for i, v in enumerate(values):
        if not _small(v):
            continue
        shape = _literal_op(site, i)
        if shape is None:
            continue
        op, name, const, left = shape
        frame = _user_frame()
        a = frame.f_locals.get(name, frame.f_globals.get(name)) if frame is not None else None
        if not _small(a):
            continue
        x, y = (const, a) if left else (a, const)
        found = wrapped(op, x, y)
        if found is not None:
            texts = [str(const), name] if left else [name, str(const)]
            WRAPS[id(rec)] = _wrap_words(site, op, (x, y), found, texts)
            return


def _small(v) -> bool:
    return type(v) is np.ndarray and v.dtype.kind in "iu" and v.dtype.itemsize <= 4


_LITERAL_OPS: dict[int, list] = {}  # site id -> per operand: (op, name, int, literal on the left) or None


def _literal_op(site: Site, i: int):
    """`img + 100`, `2 * img`: the operand's text as (op, name, literal, literal first), else None."""
    if site.id not in _LITERAL_OPS:
        texts = [site.text] if site.kind == "assign" else [s.text for s in site.operands]
        _LITERAL_OPS[site.id] = [_parse_literal_op(t) for t in texts]
    shapes = _LITERAL_OPS[site.id]
    return shapes[i] if i < len(shapes) else None


def _parse_literal_op(text: str):
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(node, ast.BinOp) or type(node.op) not in (ast.Add, ast.Sub, ast.Mult):
        return None
    op = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}[type(node.op)]
    for name, lit, left in ((node.left, node.right, False), (node.right, node.left, True)):
        if isinstance(lit, ast.UnaryOp) and isinstance(lit.op, ast.USub) and isinstance(lit.operand, ast.Constant):
            lit = ast.Constant(-lit.operand.value) if type(lit.operand.value) is int else lit
        if isinstance(name, ast.Name) and isinstance(lit, ast.Constant) and type(lit.value) is int:
            return op, name.id, lit.value, left
    return None


def _user_frame():
    """The frame of the user's code that called the hook: the first one outside this package."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
    return frame


_PACKAGE = __file__.rsplit("_numerics", 1)[0]


def _int_operand(v) -> bool:
    return (type(v) is np.ndarray and v.dtype.kind in "iu") or type(v) is int or \
        (issubclass(type(v), np.integer) and type(v).__module__ == "numpy")


def wrapped(op: str, x, y, inplace: bool = False):
    """(result dtype, how many entries wrapped, the range of the true values) when `x op y` on integers wrapped
    around in its result dtype; else None.  numpy 2 refuses a Python int that the array's dtype cannot
    hold (it raises, and nothing wraps); numpy 1.26 picks a wider dtype for it: `result_type` knows."""
    if not (_int_operand(x) and _int_operand(y)):
        return None
    arrays = [v for v in (x, y) if type(v) is np.ndarray]
    for v, other in ((x, y), (y, x)):
        if type(v) is int and type(other) is np.ndarray and _NUMPY2:
            info = np.iinfo(other.dtype)
            if not info.min <= v <= info.max:
                return None
    dtype = x.dtype if inplace else np.result_type(x, y)
    if dtype.kind not in "iu" or dtype.itemsize > 4:
        return None
    info = np.iinfo(dtype)
    if len(arrays) == 1:  # array with a number: the extremes decide, no copy made
        a = arrays[0]
        c = int(y if a is x else x)
        if a.size == 0:
            return None
        lo, hi = int(a.min()), int(a.max())
        if op == "*":
            ends = (lo * c, hi * c)
        elif op == "+":
            ends = (lo + c, hi + c)
        else:
            ends = (lo - c, hi - c) if a is x else (c - hi, c - lo)
        low, high = min(ends), max(ends)
        if info.min <= low and high <= info.max:
            return None
        wide = a.astype(np.int64)
        exact = _INT_OPS[op](wide, c) if a is x else _INT_OPS[op](c, wide)
    else:
        size = np.broadcast(x, y).size
        if size > _EXACT_LIMIT or size == 0:
            return None
        exact = _INT_OPS[op](np.asarray(x).astype(np.int64), np.asarray(y).astype(np.int64))
        low, high = int(exact.min()), int(exact.max())
        if info.min <= low and high <= info.max:
            return None
    n = int(np.count_nonzero((exact < info.min) | (exact > info.max)))
    return dtype, n, exact.size, low, high


def _wrap_words(site: Site, op: str, pair, found, texts: list[str] | None = None) -> tuple[str, str]:
    """The message and the fix for a wrap-around; `texts` are the operands' when the wrapping expression is
    not the site's own (`img + 60`, a literal operation inside an assignment or a call)."""
    dtype, n, total, low, high = found
    if texts is None:
        texts = [s.text for s in site.operands[-2:]]
        expr = site.text
    else:
        expr = f"{texts[0]} {op} {texts[1]}"
    info = np.iinfo(dtype)
    msg = (f"`{expr}` wrapped around: the true values run from {low} to {high}, but {dtype} holds "
           f"{info.min}..{info.max}, so {n} of {total} entries came out modulo {int(info.max) - int(info.min) + 1} "
           f"(numpy does not warn for integer arrays)")
    i = next(k for k, v in enumerate(pair) if type(v) is np.ndarray)
    tail = f"; np.clip(..., {info.min}, {info.max}).astype(np.{dtype}) afterwards to saturate instead"
    if site.kind == "augassign":
        fix = f"{texts[0]} = {texts[0]}.astype(int) {op} {texts[1]} (a wider dtype{tail})"
    else:
        new = list(texts)
        new[i] = f"{_paren(texts[i])}.astype(int)"
        fix = f"{new[0]} {op} {new[1]} (compute in a wider dtype{tail})"
    return msg, fix


def _paren(text: str) -> str:
    from ._rules import _paren  # the rules' one; imported when a fix is written (_rules imports this module)

    return _paren(text)


_ROUNDING = frozenset({"floor", "ceil", "round", "rint", "trunc", "fix", "around", "astype"})
_TARGET = r"([A-Za-z_]\w*)\[.*\]"


def float_into_int(site: Site, rec: Record, ctx):
    """SC302: `W[i] = W[i] - lr * g` with W an integer array: numpy truncates the float values it stores."""
    from ._report import Finding, operands_of

    if site.kind == "augassign" or rec.result is None or not (rec.result.dtype or "").startswith("float"):
        return None
    if site.callee in _ROUNDING or rec.result.kind != "ndarray":
        return None
    for target in site.targets:
        m = re.fullmatch(_TARGET, target)
        if m is None:
            continue
        log = ctx.assignment(m[1], site)
        held = ctx.value(log) if log is not None else None
        # int64/int32 are what `dtype=int` and lists of Python ints give (weights, counts); uint8 images
        # scaled in place (`img[m] = img[m] * 0.5`) are truncated on purpose.
        if held is None or held.kind != "ndarray" or held.dtype not in ("int64", "int32"):
            continue
        fixed = _float_source(log.site.text)
        msg = (f"`{target} = {site.text}` stores {rec.result.dtype} values in {m[1]}, which is {held.dtype} "
               f"since line {log.site.line} (`{log.site.text}`): numpy truncates them toward 0, so small "
               f"updates are lost")
        fix = f"{m[1]} = {fixed} at line {log.site.line}"
        return Finding("SC302", "warning", site, operands_of(site, rec), rec.result.shape, msg, fix, rec.count)
    return None


def _float_source(text: str) -> str:
    """`np.zeros((3, 4), dtype=int)` -> `np.zeros((3, 4), dtype=float)`; else `(...).astype(float)`."""
    new = re.sub(r"dtype\s*=\s*(int|np\.int\w*|\"int\w*\"|'int\w*'|np\.uint\w*)", "dtype=float", text)
    return new if new != text else f"{_paren(text)}.astype(float)"


def explain_cast(crash, site: Site, vals, exc: BaseException, ctx) -> bool:
    """`W -= lr * dW` with W an integer array: numpy will not store floats in it in place (UFuncTypeError
    "Cannot cast ufunc 'subtract' output from dtype('float64') to dtype('int64')").  Says so, where W got
    its dtype, and the fix there.  False when the crash is not that."""
    from ._report import Fix

    m = re.search(r"Cannot cast ufunc '(\w+)' output from dtype\('(\w+)'\) to dtype\('(\w+)'\)", str(exc))
    if m is None or site.kind != "augassign" or len(vals) != 2:
        return False
    target, value = site.operands
    crash.explanation = (f"{target.text} is {m[3]}, and an in-place `{site.op}` keeps its dtype: numpy will not "
                         f"store the {m[2]} values of {value.text} in it (casting 'same_kind'); the shapes are fine")
    log = ctx.assignment(target.name, site) if target.name else None
    if log is not None:
        crash.explanation += f"; {target.text} is {m[3]} since line {log.site.line} (`{log.site.text}`)"
        crash.fixes = [Fix(f"{target.text} = {_float_source(log.site.text)} at line {log.site.line}", None,
                           f"then {target.text} holds floats and `{site.text}` updates it")]
    else:
        crash.fixes = [Fix(f"{target.text} = {target.text}.astype(float) before this line", None,
                           f"then `{site.text}` updates it")]
    return True


_WIDER = ("int16", "int32", "int64")


def explain_overflow(crash, site: Site, vals, exc: BaseException, ctx) -> bool:
    """`img + 300` with img uint8: numpy 2 computes in the array's dtype (NEP 50) and refuses a Python int
    that does not fit ("Python integer 300 out of bounds for uint8"), where numpy 1 picked a wider type.
    Says so, where the array got its dtype, and a fix in the narrowest type that holds every result the
    operation can give (the dtype's range through the operation).  False when the crash is not that."""
    from ._report import Fix

    m = re.fullmatch(r"Python integer (-?\d+) out of bounds for (\w+)", str(exc))
    op = site.op.rstrip("=") if site.kind in ("binop", "augassign") else _INT_CALLS.get(site.callee or "")
    if m is None or op not in _INT_OPS or len(vals) != 2:
        return False
    n, dtype = int(m[1]), m[2]
    sides = [i for i, v in enumerate(vals) if v.kind == "ndarray" and v.dtype == dtype]
    if len(sides) != 1 or vals[1 - sides[0]].literal != n:
        return False
    spec, v = site.operands[sides[0]], vals[sides[0]]
    info = np.iinfo(dtype)
    ends = [int(_INT_OPS[op](*((a, n) if sides[0] == 0 else (n, a)), dtype=object)) for a in (info.min, info.max)]
    wide = next((w for w in _WIDER if np.iinfo(w).min <= min(ends + [n]) and max(ends + [n]) <= np.iinfo(w).max),
                None)
    crash.explanation = (f"{spec.text} is {dtype}, which holds {info.min}..{info.max}, and numpy 2 computes "
                         f"`{spec.text} {op} {n}` in {dtype} (NEP 50): the Python integer {n} does not fit, so numpy "
                         f"raises (numpy 1 picked a wider type); the shapes are fine")
    log = ctx.assignment(spec.name, site) if spec.name else None
    if log is not None:
        crash.explanation += f"; {spec.text} is {dtype} since line {log.site.line} (`{log.site.text}`)"
    if wide is None:
        return True
    widened = f"{spec.text}.astype(np.{wide})"
    value = _substitute(site, spec.text, widened) if site.kind != "augassign" else \
        f"{widened} {op} {n}"
    keep = site.kind == "augassign" or spec.name in site.targets
    fixes = [Fix(f"{spec.text} = {value}" if site.kind == "augassign" else value, v.shape,
                 f"{wide} holds every result, {min(ends)}..{max(ends)}")]
    if keep and op in ("+", "-") and dtype == "uint8":
        fixes.append(Fix(f"{spec.text} = np.clip({value}, 0, 255).astype(np.uint8)", v.shape,
                         "stays uint8, as an image's pixels: results past 255 or below 0 are clipped"))
    crash.fixes = fixes
    return True


# -- the findings ------------------------------------------------------------------


def findings(log: SiteLog, records: list[Record], whole: bool, ctx) -> list:
    """SC301 and SC302 at one site, for the records judged (`whole`: the whole run is judged, so a NaN made
    by an operation on plain numbers, which has no record, counts too)."""
    from ._report import Finding, operands_of

    out = []
    site = log.site
    ev = EVENTS.get(site.id)
    if ev is not None and ((ev.record is None and whole) or any(r is ev.record for r in records)):
        ops = operands_of(site, ev.record) if ev.record is not None else ()
        out.append(Finding("SC301", ev.severity, site, ops, None, ev.message, ev.fix, 1))
    for rec in records:
        words = WRAPS.get(id(rec))
        if words is not None:
            out.append(Finding("SC302", "warning", site, operands_of(site, rec),
                               rec.result.shape if rec.result else None, words[0], words[1], rec.count))
        f = float_into_int(site, rec, ctx)
        if f is not None:
            out.append(f)
    return out
