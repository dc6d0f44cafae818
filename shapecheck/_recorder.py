"""The runtime half: the hooks that rewritten code calls, and what they keep.

The hooks are the only hot path.  Each one builds a cheap key from the
operands' types and shapes, and when the key equals the site's last key it
only counts.  (Dtypes are described with each new shape signature, not
checked on every run: reading `.dtype` would cost a fifth of a hook.)  A new key goes to `_observe`, which describes the
operands as plain `Value`s (no references to user arrays are kept) and works
out the result's shape.  Memory is bounded by sites x signatures.

Nothing here may raise into user code: the slow path is guarded, and the fast
path only touches attributes of exact numpy types.  The guards catch only
failures of shapecheck's own making (`raised_by_shapecheck`): an exception from a
signal handler that ran meanwhile propagates, as it would without us.
Nothing here calls what a script can replace: the builtins used are bound at
import (a script may swap `builtins.len` for a traced wrapper), classes are
neither hashed nor compared unless their metaclass is `type` (a metaclass may
define `__eq__`), and instances are asked `issubclass(type(x), ...)`, never
`isinstance` (which reads `__class__`).
"""

from __future__ import annotations

import _signal  # signal's C half: the module itself builds enums at import (start-up time)
import _thread  # not threading: importing it costs start-up time
import builtins
import contextlib
import types
from builtins import (all, bool, complex, dict, float, frozenset, getattr, id, int, issubclass, len, list,  # noqa: A004
                      object, range, set, setattr, str, tuple, type, zip)

import numpy as np

from . import _numerics, _shapes
from ._calls import result_of_call
from ._events import Record, Site, SiteLog, Value
from ._rewrite import (HOOK_ASSIGN, HOOK_AUGVALUE, HOOK_BINOP, HOOK_CALL, HOOK_CALL1, HOOK_CALL2, HOOK_KEY, HOOK_METHOD,
                       HOOK_METHOD0, HOOK_METHOD1, HOOK_METHOD2, hook_functions)

ND = np.ndarray
MAX_SIGNATURES = 32  # distinct operand signatures kept per site; later ones are counted as capped

# Builtin types that are never arrays: operations between them are not recorded.  Only tested for classes
# whose metaclass is `type` (`type(t) is type and t in _PLAIN`): hashing another class can run its metaclass.
# The hooks test `float` and `int` by identity first: the common scalars then cost no call.
_PLAIN = frozenset({int, float, bool, complex, str, bytes, type(None), np.float64, np.float32, np.int64,
                    np.int32, np.bool_, np.intp, range, dict, set, frozenset, slice})
_G = object()  # first element of generic keys, so they never compare equal to a fast key
_NO_KEY = object()  # no key held for an augmented assignment (a slice, or a key that is not a str or int)
_UNKNOWN_TARGET = object()  # the target of `obj.attr += v`, which the hooks do not read


class _Live:
    """Per-site state touched by the hooks."""

    __slots__ = ("key", "cur", "sigs", "log", "held_key", "over")

    def __init__(self, site: Site):
        self.key = None
        self.cur = _UNRECORDED
        self.sigs: dict = {}
        self.log = SiteLog(site)
        self.held_key = _NO_KEY  # an augmented assignment's computed key, until its value hook
        self.over: Record | None = None  # counts the runs past the signature cap; never described


class _State:
    __slots__ = ("internal_errors", "untraced")

    def __init__(self):
        self.internal_errors = 0
        self.untraced: list[str] = []  # files run as written because rewriting them failed


_UNRECORDED = Record(operands=())  # stands for "the last run of this site had no array operand"
STATE = _State()
LIVE: list[_Live] = []  # site id -> live state; ids are global across files
POSITIONS: dict[tuple, int] = {}  # (filename, line, col, end_line, end_col) -> site id, bytes offsets
FILES: dict[str, str] = {}  # real filename -> display path, for every rewritten file
_CLAIM = _thread.allocate_lock()


def claim(make_sites) -> list[Site]:
    """Allocate site ids and the hooks' state for them in one step: `make_sites(first_id)` gives the sites
    numbered from `first_id`.  Two threads importing two of the script's modules never share ids."""
    with _CLAIM:
        sites = make_sites(len(LIVE))
        LIVE.extend(_Live(site) for site in sites)
    return sites


def register(rw, filename: str) -> None:
    """Make a rewritten module's positions known to the crash explainer (its sites were claimed when rewritten)."""
    for site, pos in zip(rw.sites, rw.positions):
        if pos is not None:
            POSITIONS[(filename,) + pos] = site.id
    for sid, pos in rw.lookups.items():
        POSITIONS.setdefault((filename,) + pos, sid)
    FILES[filename] = rw.sites[0].path if rw.sites else filename


def next_id() -> int:
    """The id the next claimed site will get, if no other thread claims first."""
    return len(LIVE)


def install() -> None:
    """Put the hooks where rewritten code finds them: in builtins, under `__sc_*__` names."""
    _numerics.watch()  # SC301: the floating-point warnings numpy shows, noticed as they pass
    if getattr(builtins, HOOK_BINOP, None) is hook_binop:
        return
    for name, fn in hook_functions().items():
        setattr(builtins, name, fn)
    for name, fn in _hooks().items():
        setattr(builtins, name, fn)


class _Anchor:
    """Rides in the constants of rewritten code (see `_rewrite.Rewritten`): pickled, it is a call that
    installs hooks in the process that unpickles it.  A process that has none gets ones that only hand
    their operands back: it has no sites, and what it computes is what matters there."""

    __slots__ = ()

    def __reduce__(self):
        return (_anchor, ())

    def __repr__(self):
        return "<shapecheck hooks>"


def _anchor() -> _Anchor:
    if getattr(builtins, HOOK_BINOP, None) is None:
        for name, fn in {**hook_functions(), **_PASSTHROUGH}.items():
            setattr(builtins, name, fn)
    return ANCHOR


ANCHOR = _Anchor()


@contextlib.contextmanager
def paused():
    """Run traced code without recording (the gradient check calls the script's functions thousands of
    times with the same shapes): the hooks are swapped for ones that only hand their operands back."""
    saved = {name: getattr(builtins, name) for name in _PASSTHROUGH}
    for name, fn in _PASSTHROUGH.items():
        setattr(builtins, name, fn)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(builtins, name, fn)


def _pass_operands(sid, *operands):
    return operands


def _pass_value(sid, value, *rest):
    return value


_PASSTHROUGH = {HOOK_BINOP: _pass_operands, HOOK_CALL: _pass_operands, HOOK_CALL1: _pass_operands,
                HOOK_CALL2: _pass_operands, HOOK_METHOD: _pass_operands, HOOK_METHOD0: _pass_operands,
                HOOK_METHOD1: _pass_operands, HOOK_METHOD2: _pass_operands, HOOK_ASSIGN: _pass_value,
                HOOK_AUGVALUE: _pass_value, HOOK_KEY: _pass_value}


def _hooks() -> dict:
    """The recording hooks by their builtins name (`_PASSTHROUGH` has the same names)."""
    return {HOOK_BINOP: hook_binop, HOOK_CALL: hook_call, HOOK_CALL1: hook_call1, HOOK_CALL2: hook_call2,
            HOOK_METHOD: hook_method, HOOK_METHOD0: hook_method0, HOOK_METHOD1: hook_method1,
            HOOK_METHOD2: hook_method2, HOOK_ASSIGN: hook_assign, HOOK_AUGVALUE: hook_augvalue, HOOK_KEY: hook_key}


def snapshot() -> list[SiteLog]:
    """The site logs, with each one's most recent run noted (the hooks keep that on `_Live`)."""
    for live in LIVE:
        live.log.last = live.cur if live.cur is not _UNRECORDED and live.cur is not live.over else None
        live.log.capped = live.over.count if live.over is not None else 0
    return [live.log for live in LIVE]


# -- hooks (hot) ------------------------------------------------------------


def hook_binop(sid, x, y):
    tx = type(x)
    ty = type(y)
    if tx is ND:
        if ty is ND:
            key = (x.shape, y.shape)
        elif ty is float or ty is int:
            key = (x.shape, ty)
        else:
            key = _key((x, y))
    elif ty is ND:
        if tx is float or tx is int:
            key = (tx, y.shape)
        else:
            key = _key((x, y))
    elif (tx is float or tx is int or (type(tx) is type and tx in _PLAIN)) and (
            ty is float or ty is int or (type(ty) is type and ty in _PLAIN)):
        key = None
    else:
        key = _key((x, y))
    s = LIVE[sid]
    if key == s.key:
        s.cur.count += 1
    else:
        _observe(s, key, (x, y))
    return (x, y)


# The fixed-arity hooks (`hook_call1`...) key their operands exactly as `hook_call` and `hook_method` do for
# the same number of arguments: which hook a site gets changes its cost, never its records.


def hook_call(sid, *fa):  # three or more arguments (fewer: hook_call1, hook_call2)
    key = _key(fa[1:])
    s = LIVE[sid]
    if key == s.key:
        s.cur.count += 1
    else:
        _observe(s, key, fa[1:])
    return fa


def hook_call1(sid, f, x):
    key = (x.shape,) if type(x) is ND else _key((x,))
    s = LIVE[sid]
    if key == s.key:
        s.cur.count += 1
    else:
        _observe(s, key, (x,))
    return (f, x)


def hook_call2(sid, f, x, y):
    if type(x) is ND and type(y) is ND:
        key = (x.shape, y.shape)
    else:
        key = _key((x, y))
    s = LIVE[sid]
    if key == s.key:
        s.cur.count += 1
    else:
        _observe(s, key, (x, y))
    return (f, x, y)


_METHOD = types.MethodType
_BUILTIN_METHOD = types.BuiltinMethodType


def hook_method(sid, *fa):  # three or more arguments (fewer: hook_method0...)
    f = fa[0]
    # Only real bound methods: reading `__self__` of anything else could run user code (`__getattr__`).
    # Compared by identity: `type(f) in (...)` would run the == of a metaclass of the user's.
    tf = type(f)
    recv = f.__self__ if tf is _METHOD or tf is _BUILTIN_METHOD else None
    key = _key((recv,) + fa[1:])
    s = LIVE[sid]
    if key == s.key:
        s.cur.count += 1
    else:
        _observe(s, key, (recv,) + fa[1:])
    return fa


def hook_method0(sid, f):
    tf = type(f)
    recv = f.__self__ if tf is _METHOD or tf is _BUILTIN_METHOD else None
    key = (recv.shape,) if type(recv) is ND else _key((recv,))
    s = LIVE[sid]
    if key == s.key:
        s.cur.count += 1
    else:
        _observe(s, key, (recv,))
    return (f,)


def hook_method1(sid, f, x):
    tf = type(f)
    recv = f.__self__ if tf is _METHOD or tf is _BUILTIN_METHOD else None
    if type(recv) is ND and type(x) is ND:
        key = (recv.shape, x.shape)
    else:
        key = _key((recv, x))
    s = LIVE[sid]
    if key == s.key:
        s.cur.count += 1
    else:
        _observe(s, key, (recv, x))
    return (f, x)


def hook_method2(sid, f, x, y):
    tf = type(f)
    recv = f.__self__ if tf is _METHOD or tf is _BUILTIN_METHOD else None
    if type(recv) is ND and type(x) is int and type(y) is int:
        key = (recv.shape, int, int)  # x.reshape(784, 1): `_key` too keys an int by its type, not its value
    else:
        key = _key((recv, x, y))
    s = LIVE[sid]
    if key == s.key:
        s.cur.count += 1
    else:
        _observe(s, key, (recv, x, y))
    return (f, x, y)


def hook_assign(sid, value):
    s = LIVE[sid]
    t = type(value)
    if t is ND:
        key = (value.shape,)
    elif t is float or t is int or (type(t) is type and t in _PLAIN):
        key = None
    else:
        key = _key((value,))
    if key == s.key:
        s.cur.count += 1
    else:
        _observe(s, key, (), value, assigned=True)
    return value


def hook_key(sid, key):
    # Only an immutable key is held (a str or an int), for an explanation if the statement fails:
    # holding anything else could keep a user's object alive and change what reference counts see.
    LIVE[sid].held_key = key if type(key) is str or type(key) is int else _NO_KEY
    return key


def hook_augvalue(sid, value):
    s = LIVE[sid]
    key = _key((_UNKNOWN_TARGET, value))
    if key == s.key:
        s.cur.count += 1
    else:
        _observe(s, key, (_UNKNOWN_TARGET, value))
    return value


# -- keys and descriptions ---------------------------------------------------

_KINDS: dict[type, str] = {}  # only classes whose metaclass is `type`: their hash and == are identity
_TYPE_DICT = type.__dict__["__dict__"]  # read through `type` itself: a metaclass may override attribute access
_TYPE_NAME = type.__dict__["__name__"]


def type_name(t: type) -> str:
    """A class's __name__, read without running its metaclass."""
    return _TYPE_NAME.__get__(t, type)


def _module_of(t: type) -> str:
    """The top package a type comes from ("" when its __module__ is not a string, as a class may set)."""
    mod = _TYPE_DICT.__get__(t, type).get("__module__")
    return mod.partition(".")[0] if type(mod) is str else ""


def kind_of_type(t: type) -> str:
    """ndarray, matrix, Series, DataFrame, list, tuple, scalar or other; cached per type."""
    cacheable = type(t) is type
    kind = _KINDS.get(t) if cacheable else None
    if kind is None:
        if issubclass(t, np.matrix):
            kind = "matrix"
        elif issubclass(t, ND):
            kind = "ndarray"
        elif _module_of(t) == "pandas" and type_name(t) in ("Series", "DataFrame"):
            kind = type_name(t)  # recognised by module: pandas is never imported here
        elif t is list or t is tuple:
            kind = type_name(t)
        elif t is int or t is float or t is bool or t is complex or issubclass(t, np.generic):
            kind = "scalar"
        else:
            kind = "other"
        if cacheable:
            _KINDS[t] = kind
    return kind


_ARRAY_KINDS = frozenset({"ndarray", "matrix", "Series", "DataFrame"})
_PANDAS_KINDS = frozenset({"Series", "DataFrame"})
# An ndarray subclass may override `shape` or `dtype` with a property of its own, which the plain program
# (numpy's C code) never reads: the recorder reads ndarray's own.
_ND_SHAPE = ND.__dict__["shape"]
_ND_DTYPE = ND.__dict__["dtype"]


def _key(ops):
    """A comparable key for any operands, or None when none of them is an array.  Never raises for a
    reason of its own.  A class with its own metaclass is keyed by id: its == and hash are not ours to run."""
    items = [_G]
    arrays = False
    try:
        for x in ops:
            t = type(x)
            if t is ND:
                arrays = True
                items.append((t, x.shape))
                continue
            if t is int or t is float:
                items.append(t)
                continue
            plain = type(t) is type
            kind = (_KINDS.get(t) if plain else None) or kind_of_type(t)
            if kind in _ARRAY_KINDS:
                arrays = True
                shape = _ND_SHAPE.__get__(x) if kind == "ndarray" or kind == "matrix" else x.shape
                items.append((t if plain else id(t), shape))
            elif kind == "list" or kind == "tuple":
                items.append((t, len(x)))
            else:
                items.append(t if plain else id(t))
    except Exception as e:
        if not raised_by_shapecheck(e):
            raise
        STATE.internal_errors += 1
        return None
    return tuple(items) if arrays else None


def describe(x) -> Value:
    """A plain description of a runtime value (kind, shape, dtype): never the value itself."""
    if x is _UNKNOWN_TARGET:
        return Value("unknown", None)
    t = type(x)
    kind = (_KINDS.get(t) if type(t) is type else None) or kind_of_type(t)
    if kind in ("ndarray", "matrix"):
        return Value(kind, _ND_SHAPE.__get__(x), str(_ND_DTYPE.__get__(x)))
    if kind == "Series":
        return Value(kind, tuple(x.shape), str(x.dtype), index=_index_text(x.index))
    if kind == "DataFrame":
        dtypes = {str(d) for d in x.dtypes}
        return Value(kind, tuple(x.shape), dtypes.pop() if len(dtypes) == 1 else "mixed", index=_index_text(x.index),
                     columns=_index_text(x.columns))
    if kind == "scalar":
        dtype = str(x.dtype) if issubclass(t, np.generic) else type_name(t)
        literal = int(x) if t is int or issubclass(t, np.integer) else None
        return Value(kind, (), dtype, type_name=type_name(t), literal=literal)
    if kind in ("list", "tuple"):
        literal = None
        if t is tuple and len(x) <= 32 and all(type(d) is int or issubclass(type(d), np.integer) for d in x):
            literal = tuple(int(d) for d in x)
        return Value(kind, _nested_shape(x), None, type_name=type_name(t), literal=literal)
    return Value("other", None, None, type_name=type_name(t))


def _nested_shape(x) -> tuple[int, ...]:
    shape = []
    while type(x) is list or type(x) is tuple:  # not subclasses: their __len__ would be user code
        shape.append(len(x))
        if not x:
            break
        x = x[0]
    return tuple(shape)


def _index_text(index) -> str:
    name = type(index).__name__
    if name == "RangeIndex" and index.step == 1:
        return f"RangeIndex {index.start}..{index.stop - 1}" if len(index) else "empty RangeIndex"
    n = len(index)
    # The first labels, when they are plain strings and numbers (another object's repr could be user code).
    first = index[:4].tolist() if n else []
    if first and all(type(v) is str or type(v) is int or type(v) is float for v in first):
        return f"[{', '.join(map(repr, first))}]" if n <= 4 else f"[{', '.join(map(repr, first))}, ...], {n} labels"
    return f"{name} of {n} labels"


# -- slow path -------------------------------------------------------------


def _observe(s: _Live, key, operands, value=None, assigned: bool = False) -> None:
    """A key the site has not just seen: find or make its record.  For an assignment there are no
    operands, and `value` is what was assigned.  Past the cap a run costs a dictionary look-up, as a
    seen signature's does: nothing is described or kept."""
    if key is None:
        s.key = None
        s.cur = _UNRECORDED
        return
    try:
        rec = s.sigs.get(key)
        if rec is None:
            if len(s.sigs) >= MAX_SIGNATURES:
                rec = s.over
                if rec is None:
                    rec = s.over = Record(operands=())
            else:
                rec = _new_record(s.log.site, operands, value, assigned)
                s.sigs[key] = rec
                s.log.records.append(rec)
        rec.count += 1
        s.key = key
        s.cur = rec
    except Exception as e:
        if not raised_by_shapecheck(e):
            raise
        STATE.internal_errors += 1
        s.key = None
        s.cur = _UNRECORDED


def raised_by_shapecheck(e: BaseException) -> bool:
    """May a guard of ours swallow `e`?  Yes when our own computation raised it: our code, or what it
    called (numpy, pandas, even a property of the user's that the plain program would never have read).
    No when a signal handler raised it (a SIGALRM timeout that fired meanwhile): the plain program gets
    that exception too, so it must propagate.  A handler's frame is in the traceback."""
    handlers = _signal_handler_codes()
    if not handlers:
        return True
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in handlers:
            return False
        tb = tb.tb_next
    return True


def _signal_handler_codes() -> set:
    codes = set()
    for signum in _signal.valid_signals():
        handler = _signal.getsignal(signum)
        if type(handler) is types.MethodType:
            handler = handler.__func__
        if type(handler) is types.FunctionType:
            codes.add(handler.__code__)
    return codes


def _new_record(site: Site, operands, value, assigned: bool) -> Record:
    rec = Record(operands=tuple(map(describe, operands)))  # map: no generator frame for a tracer to see
    if assigned:
        rec.result = describe(value)
        if site.value_of is not None:
            _attach_result(LIVE[site.value_of], rec.result)
    else:
        _analyse(site, rec, operands)
    _numerics.on_record(site, rec, operands, value)  # SC302: did this first run wrap around?
    if site.self_refs and rec.result is not None:
        _check_drift(LIVE[site.id], site, rec.result, rec)
    return rec


def _attach_result(child: _Live, result: Value) -> None:
    """An assignment tells the call it assigns what came out of it (calls have no result hook)."""
    rec = child.cur
    if rec is not _UNRECORDED and rec is not child.over and rec.result is None:
        rec.result = result


def _check_drift(s: _Live, site: Site, after: Value, own: Record) -> None:
    """`b = b - lr * db` gave b a new shape: compare with b as it was read on the right-hand side."""
    if not after.is_array or after.shape is None:
        return
    for child_id, index in site.self_refs:
        rec = own if child_id == site.id else LIVE[child_id].cur
        if rec is _UNRECORDED or rec is LIVE[child_id].over or index >= len(rec.operands):
            continue
        before = rec.operands[index]
        if before.is_array and before.shape is not None and before.size and before.size > 1 \
                and before.shape != after.shape:
            entry = (LIVE[child_id].log.site.operands[index].text, before.shape, after.shape)
            if entry not in s.log.drift:
                s.log.drift.append(entry)
            return


def _analyse(site: Site, rec: Record, operands) -> None:
    """Work out, once per signature, what the operation gives: result shape, or that it cannot work."""
    vals = rec.operands
    if site.kind in ("binop", "compare") or (site.kind == "augassign" and len(vals) == 2):
        a, b = vals
        a_pandas, b_pandas = a.kind in _PANDAS_KINDS, b.kind in _PANDAS_KINDS
        if a_pandas and b_pandas:
            rec.aligned = _aligned(operands[0], operands[1])
            rec.labels = _labels(site.op, operands[0], operands[1])
        if not (a.shape is not None and b.shape is not None):
            return
        if a_pandas or b_pandas:
            shape = _pandas_result(site.op, a, b, operands, rec.aligned)
            if shape is not None:
                pv = a if a_pandas else b
                kind = "DataFrame" if "DataFrame" in (a.kind, b.kind) and len(shape) == 2 else "Series"
                rec.result = Value(kind if len(shape) else "scalar", shape, "bool" if site.kind == "compare"
                                   else _result_dtype(a, b) or pv.dtype)  # int frame - float array: float
            return
        if site.op == "@" or (site.op == "*" and "matrix" in (a.kind, b.kind)):
            shape = _shapes.matmul(a.shape, b.shape) if site.op == "@" else _shapes.dot(a.shape, b.shape)
        else:
            shape = _shapes.broadcast(a.shape, b.shape)
        if shape is None:
            rec.error = "shapes"
            return
        if site.kind == "augassign" and a.kind in ("ndarray", "matrix") and shape != a.shape:
            rec.error = "inplace"
            return
        kind = "matrix" if "matrix" in (a.kind, b.kind) else "ndarray"
        if site.kind == "compare":
            dtype = "bool"
        else:
            dtype = _result_dtype(a, b)
        rec.result = Value(kind, shape, dtype)
    elif site.kind in ("call", "method"):
        _analyse_call(site, rec)
        if site.kind == "method" and len(vals) >= 2 and vals[0].is_pandas and vals[1].is_pandas:
            rec.labels = _labels(site.callee, operands[0], operands[1])  # `df.dot(W)`, `s1.sub(s2)`


_SCALAR_PROXY = {"int": 0, "float": 0.0, "bool": False, "complex": 0j}  # a Python scalar's weak dtype


def _result_dtype(a: Value, b: Value) -> str | None:
    try:
        x = _SCALAR_PROXY.get(a.dtype) if a.kind == "scalar" else None
        y = _SCALAR_PROXY.get(b.dtype) if b.kind == "scalar" else None
        return str(np.result_type(np.dtype(a.dtype) if x is None else x, np.dtype(b.dtype) if y is None else y))
    except Exception as e:
        if not raised_by_shapecheck(e):
            raise
        return None


def _analyse_call(site: Site, rec: Record) -> None:
    shape, error = result_of_call(site, rec.operands)
    if error:
        rec.error = error
    elif shape is not None:
        dtype = None
        for v in rec.operands:
            if v.kind == "ndarray" or v.kind == "matrix":
                dtype = v.dtype
                break
        rec.result = Value("ndarray", shape, dtype)


def _pandas_result(op: str, a: Value, b: Value, operands, aligned) -> tuple[int, ...] | None:
    """What pandas makes of an operation: it aligns labels where numpy would broadcast positions."""
    op = op.rstrip("=")
    if op == "@":
        return _shapes.matmul(a.shape, b.shape)
    if a.is_pandas and b.is_pandas:
        if aligned:
            return a.shape if len(a.shape) >= len(b.shape) else b.shape
        x, y = operands
        try:
            if a.kind == b.kind == "Series":
                return (len(x.index.union(y.index)),)
            if a.kind == b.kind == "DataFrame":
                return (len(x.index.union(y.index)), len(x.columns.union(y.columns)))
            df, ser = (x, y) if a.kind == "DataFrame" else (y, x)
            return (len(df.index), len(df.columns.union(ser.index)))
        except Exception as e:
            if not raised_by_shapecheck(e):
                raise
            return None
    p, o = (a, b) if a.is_pandas else (b, a)
    if o.kind == "scalar" or tuple(o.shape) == tuple(p.shape):
        return p.shape
    if len(o.shape) == 1 and o.shape[0] == p.shape[-1]:
        return p.shape  # a Series by position, a DataFrame by columns
    return None


def _aligned(x, y) -> bool | None:
    try:
        kx, ky = kind_of_type(type(x)), kind_of_type(type(y))
        if kx == ky == "Series":
            return bool(x.index.equals(y.index))
        if kx == ky == "DataFrame":
            return bool(x.index.equals(y.index) and x.columns.equals(y.columns))
        if kx == "DataFrame":
            return bool(x.columns.equals(y.index))
        return bool(y.columns.equals(x.index))
    except Exception as e:
        if not raised_by_shapecheck(e):
            raise
        return None


def _labels(op: str | None, x, y) -> str | None:
    """How two pandas operands' labels line up for `op` (SC202): "equal"; "reordered" (the same labels
    in another order: pandas reorders by label); "rows" (a Series labelled like the DataFrame's rows,
    which pandas matches with its columns); "differ".  For a matrix product, x's columns (a Series': its
    index) against y's index.  Only pandas' arithmetic methods and `dot` are judged: others (`merge`)
    do not pair values by label."""
    from ._rules import _PANDAS_ARITHMETIC  # here, not at import: only a new pandas signature needs it

    matmul = op in ("@", "@=", "dot")
    if op is None or (op.isidentifier() and not matmul and op not in _PANDAS_ARITHMETIC):
        return None
    try:
        kx, ky = kind_of_type(type(x)), kind_of_type(type(y))
        if matmul:
            return _relation(x.columns if kx == "DataFrame" else x.index, y.index)
        if kx == ky:
            rel = {_relation(x.index, y.index)}
            if kx == "DataFrame":
                rel.add(_relation(x.columns, y.columns))
            return "differ" if "differ" in rel else "reordered" if "reordered" in rel else "equal"
        df, ser = (x, y) if kx == "DataFrame" else (y, x)
        rel = _relation(df.columns, ser.index)
        return "rows" if rel != "equal" and ser.index.equals(df.index) else rel
    except Exception as e:
        if not raised_by_shapecheck(e):
            raise
        return None


def _relation(a, b) -> str:
    if a.equals(b):
        return "equal"
    if len(a) == len(b) and a.is_unique and b.is_unique and len(a.intersection(b)) == len(a):
        return "reordered"
    return "differ"
