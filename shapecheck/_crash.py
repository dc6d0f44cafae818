"""From an exception to an explained crash: find the failing site in the traceback, read the failing
frame's names (never evaluating anything), explain, and attach the explanation as a PEP 678 note."""

from __future__ import annotations

import dis
import itertools

from . import _recorder
from ._events import replace
from ._explain import NOTE_MARK, Failure, explain, note
from ._events import OperandSpec, Record, Site, Value
from ._report import Crash
from ._rules import Context, run

_MAX_DICT = 200  # dict entries read from the failing frame, per dict (parameters/grads dictionaries)


def _user_entries(tb):
    """Traceback entries in rewritten user files, innermost last."""
    out = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in _recorder.FILES:
            out.append(tb)
        tb = tb.tb_next
    return out


def _position(tb) -> tuple[int, int, int, int] | None:
    code = tb.tb_frame.f_code
    index = tb.tb_lasti // 2
    pos = next(itertools.islice(code.co_positions(), index, None), None)
    if pos is None or None in pos:
        return None
    line, end_line, col, end_col = pos
    return line, col, end_line, end_col


def known_names(frame) -> dict:
    """Arrays visible in a frame, described: locals, globals, dict entries (`params["W1"]`), `self.` attributes."""
    from ._recorder import describe, kind_of_type

    out = {}

    def add(name, value):
        kind = kind_of_type(type(value))
        if kind in ("ndarray", "matrix", "Series", "DataFrame"):
            out.setdefault(name, describe(value))
        elif type(value) is dict and len(value) <= _MAX_DICT:
            for k, v in value.items():
                if type(k) is str and kind_of_type(type(v)) in ("ndarray", "matrix", "Series", "DataFrame"):
                    out.setdefault(f'{name}["{k}"]', describe(v))

    for ns in (frame.f_locals, frame.f_globals):
        for name, value in list(ns.items()):
            if not name.startswith("__"):
                add(name, value)
    inst = frame.f_locals.get("self")
    d = getattr(type(inst), "__dict__", None) and _instance_dict(inst)
    if d:
        for name, value in list(d.items()):
            add(f"self.{name}", value)
    return out


def _instance_dict(obj) -> dict | None:
    try:
        d = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        return None
    return d if type(d) is dict else None


def _has_get(obj) -> bool:
    """Is obj a descriptor?  Looked up on its type's dicts, so that no `__getattr__` of the user's runs."""
    return any("__get__" in vars(k) for k in type(obj).__mro__)


def _read_attr(obj, name: str):
    """`obj.name` read from the instance's own dict: never a property, a descriptor or `__getattr__`."""
    inst = _instance_dict(obj)
    if inst is None:
        return _MISSING
    for k in type(obj).__mro__:
        cls_attr = vars(k).get(name, _MISSING)
        if cls_attr is not _MISSING:
            if _has_get(cls_attr):
                return _MISSING
            break
    return inst.get(name, _MISSING)


def _read_item(container, k):
    """`container[k]` for a builtin dict or list and a str or int key, or an ndarray and an int (a view)."""
    t = type(container)
    if type(k) not in (str, int):
        return _MISSING
    try:
        if t is dict or t is list or (t is _recorder.ND and type(k) is int):
            return container[k]
    except (KeyError, IndexError, TypeError):
        pass
    return _MISSING


def _lookup(frame, name: str):
    """A name's value as the failing frame sees it (locals, then globals), read, never evaluated."""
    scope = frame.f_locals
    return scope[name] if name in scope else frame.f_globals.get(name, _MISSING)


def _aug_target(site, frame):
    """The target of a failed `obj.attr += v` / `c[k] += v`, read from the frame (nothing is evaluated)."""
    how = site.aug_target
    if how is None:
        return _MISSING
    container = _lookup(frame, how[1])
    if container is _MISSING:
        return _MISSING
    if how[0] == "attr":
        return _read_attr(container, how[2])
    key = how[2]
    if key[0] == "const":
        k = key[1]
    elif key[0] == "name":
        k = _lookup(frame, key[1])
    else:
        k = _recorder.LIVE[site.id].held_key
    return _read_item(container, k)


def locate(exc: BaseException) -> Failure | None:
    """The failing site of an exception raised in rewritten code, with what it was run with."""
    entries = _user_entries(exc.__traceback__)
    if not entries:
        return None
    tb = entries[-1]
    filename = tb.tb_frame.f_code.co_filename
    path = _recorder.FILES.get(filename, filename)
    pos = _position(tb)
    site = record = receiver = None
    sid = _recorder.POSITIONS.get((filename,) + pos) if pos is not None else None
    if sid is not None:
        live = _recorder.LIVE[sid]
        site = live.log.site
        if dis.opname[tb.tb_frame.f_code.co_code[tb.tb_lasti]] in ("LOAD_ATTR", "LOAD_METHOD"):
            # `y.reshape(...)` on a Series fails while the method is looked up, before the hook runs.
            # The error holds the receiver (`data["sales"]` as well as `y`): nothing is evaluated again.
            recv_name = site.operands[0].name
            value = _lookup(tb.tb_frame, recv_name) if recv_name is not None else _MISSING
            if isinstance(exc, AttributeError) and getattr(exc, "name", None) == site.callee \
                    and getattr(exc, "obj", None) is not None:
                value = exc.obj
            if value is not _MISSING:
                receiver = _recorder.describe(value)
        else:
            record = live.cur if live.cur is not _recorder._UNRECORDED else None
            if record is not None and site.kind == "augassign" and record.operands[0].kind == "unknown":
                target = _aug_target(site, tb.tb_frame)
                if target is not _MISSING:
                    record = replace(record, operands=(_recorder.describe(target),) + record.operands[1:])
    if site is None and isinstance(exc, AssertionError) and pos is not None:
        site, record = _shape_assert(tb, filename, path, pos)
    if site is None and isinstance(exc, TypeError) and pos is not None:
        # `'%.3f' % loss`, `f"{loss:.3f}"`: Python's own conversions are no sites; the arrays they read are
        # still in the frame.  A one-element array of rank >= 1 there is what numpy 2 refuses to convert.
        site, record = _conversion(tb, filename, path, pos)
    if site is None and isinstance(exc, OverflowError) and pos is not None:
        # `img + 300` with img uint8: numpy 2 refuses the Python int.  An operation with a number is no site.
        site, record = _int_literal_op(tb, filename, path, pos)
    known = known_names(tb.tb_frame) if site is not None else {}
    params = _passed(tb, entries[-2]) if site is not None and len(entries) >= 2 else None
    return Failure(site, record, exc, known, receiver, path, tb.tb_lineno, params)


def _passed(tb, caller) -> dict | None:
    """The failing function's parameters as the calling line wrote them: {"dvalues": ("loss.dinputs", site)}."""
    import ast

    code = tb.tb_frame.f_code
    names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    filename = caller.tb_frame.f_code.co_filename
    pos = _position(caller)
    text = _segment(filename, pos) if pos is not None else None
    try:
        call = ast.parse(text.strip(), mode="eval").body if text else None
    except SyntaxError:
        return None
    if not isinstance(call, ast.Call) or any(isinstance(a, ast.Starred) for a in call.args):
        return None
    positional = list(names)
    if names and names[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        positional = positional[1:]  # a bound method: the receiver is not among the arguments
    src = text.strip()
    passed = {p: ast.get_source_segment(src, a) for p, a in zip(positional, call.args)}
    passed.update({k.arg: ast.get_source_segment(src, k.value) for k in call.keywords if k.arg in names})
    site = Site(id=-1, path=_recorder.FILES.get(filename, filename), line=pos[0], col=pos[1] + 1,
                end_line=pos[2], end_col=pos[3], kind="call", op="", text=src, operands=(),
                scope=caller.tb_frame.f_code.co_qualname.replace(".<locals>", ""))
    return {p: (a, site) for p, a in passed.items() if a}


def _segment(filename: str, pos) -> str | None:
    """The source text at a traceback position (the user's file, as linecache reads it)."""
    import linecache

    line, col, end_line, end_col = pos
    lines = [linecache.getline(filename, n) for n in range(line, end_line + 1)]
    if not all(lines):
        return None
    if len(lines) == 1:
        return lines[0][col:end_col]
    return lines[0][col:] + "".join(lines[1:-1]) + lines[-1][:end_col]


def _shape_assert(tb, filename: str, path: str, pos) -> tuple:
    """`assert db.shape == b.shape` (or `== (3, 1)`) that failed: a site comparing the two shapes."""
    import ast

    text = _segment(filename, pos)
    try:
        stmt = ast.parse(text.strip()).body if text else None
    except SyntaxError:
        return None, None
    if stmt and len(stmt) == 1 and isinstance(stmt[0], ast.Assert):
        # Python 3.12 places the failing raise on the whole `assert` statement (3.11 and 3.13 on its
        # test): keep only the test, so the site and its position are the same on every version.
        test = stmt[0].test
        if test.lineno != test.end_lineno:
            return None, None
        offset = len(text) - len(text.lstrip())
        pos = (pos[0], pos[1] + offset + test.col_offset, pos[0], pos[1] + offset + test.end_col_offset)
        text = ast.get_source_segment(text.strip(), test)
        node = test
    else:
        node = stmt[0].value if stmt and len(stmt) == 1 and isinstance(stmt[0], ast.Expr) else None
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq)):
        return None, None
    specs, vals = [], []
    for side in (node.left, node.comparators[0]):
        if isinstance(side, ast.Attribute) and side.attr == "shape" and isinstance(side.value, ast.Name):
            value = _lookup(tb.tb_frame, side.value.id)
            if value is _MISSING or _recorder.kind_of_type(type(value)) not in ("ndarray", "Series", "DataFrame"):
                return None, None
            specs.append(OperandSpec(side.value.id, name=side.value.id))
            vals.append(_recorder.describe(value))
        else:
            try:
                shape = ast.literal_eval(side)
            except (ValueError, SyntaxError, TypeError):
                return None, None
            if type(shape) is not tuple or not all(type(d) is int for d in shape):
                return None, None
            specs.append(OperandSpec(ast.unparse(side)))
            vals.append(Value("tuple", shape, literal=shape))
    if not any(s.name for s in specs):
        return None, None
    site = Site(id=-1, path=path, line=pos[0], col=pos[1] + 1, end_line=pos[2], end_col=pos[3],
                kind="shape-assert", op="==", text=text.strip(), operands=tuple(specs),
                scope=tb.tb_frame.f_code.co_qualname.replace(".<locals>", ""))
    return site, Record(operands=tuple(vals))


def _conversion(tb, filename: str, path: str, pos) -> tuple:
    """(a site standing for the failing expression, its array operands) when it reads one-element arrays."""
    import ast

    line, col, end_line, end_col = pos
    text = _segment(filename, pos)
    try:
        tree = ast.parse(text.strip(), mode="eval") if text else None
    except SyntaxError:
        return None, None
    if tree is None:
        return None, None
    specs, vals = [], []
    for name in dict.fromkeys(n.id for n in ast.walk(tree) if isinstance(n, ast.Name)):
        value = _lookup(tb.tb_frame, name)
        if value is _MISSING or _recorder.kind_of_type(type(value)) not in ("ndarray", "Series", "DataFrame"):
            continue
        v = _recorder.describe(value)
        if v.shape and v.size == 1:
            specs.append(OperandSpec(name, name=name))
            vals.append(v)
    if not specs:
        return None, None
    scope = tb.tb_frame.f_code.co_qualname.replace(".<locals>", "")
    site = Site(id=-1, path=path, line=line, col=col + 1, end_line=end_line, end_col=end_col, kind="convert",
                op="", text=text.strip(), operands=tuple(specs), scope=scope)
    return site, Record(operands=tuple(vals))


def _int_literal_op(tb, filename: str, path: str, pos) -> tuple:
    """(a site standing for `name OP int` or `name OP= int`, its operands) when `name` is an integer array."""
    import ast

    from ._numerics import _parse_literal_op

    line, col, end_line, end_col = pos
    text = _segment(filename, pos)
    try:
        node = ast.parse(text.strip()).body[0] if text else None
    except SyntaxError:
        return None, None
    augmented = isinstance(node, ast.AugAssign)
    if augmented:  # `img += 300` is read as `img + 300`, whose operands it has
        node = ast.Expr(ast.BinOp(node.target, node.op, node.value))
    found = _parse_literal_op(ast.unparse(node)) if isinstance(node, ast.Expr) else None
    if found is None or (augmented and found[3]):
        return None, None
    op, name, literal, literal_first = found
    value = _lookup(tb.tb_frame, name)
    if value is _MISSING or type(value) is not _recorder.ND or value.dtype.kind not in "iu":
        return None, None
    specs = [OperandSpec(name, name=name), OperandSpec(str(literal))]
    vals = [_recorder.describe(value), Value("scalar", (), "int", type_name="int", literal=literal)]
    if literal_first:
        specs.reverse()
        vals.reverse()
    scope = tb.tb_frame.f_code.co_qualname.replace(".<locals>", "")
    site = Site(id=-1, path=path, line=line, col=col + 1, end_line=end_line, end_col=end_col,
                kind="augassign" if augmented else "binop", op=op + ("=" if augmented else ""), text=text.strip(),
                operands=tuple(specs), scope=scope, targets=(name,) if augmented else ())
    return site, Record(operands=tuple(vals))


_MISSING = object()


def annotate(exc: BaseException, ignore=()) -> Crash | None:
    """Explain an exception raised in rewritten code and add the explanation to it as a note (once)."""
    try:
        failure = locate(exc)
        if failure is None:
            return None
        logs = _recorder.snapshot()
        crash = explain(failure, Context(logs), run(logs, ignore))
        if failure.site is not None and not any(
                isinstance(n, str) and n.startswith(NOTE_MARK) for n in getattr(exc, "__notes__", ())):
            exc.add_note(note(crash))
        return crash
    except Exception as e:  # explaining must never hide the user's own exception, nor a signal's
        if not _recorder.raised_by_shapecheck(e):
            raise
        _recorder.STATE.internal_errors += 1
        return None
