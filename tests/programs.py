"""Hypothesis strategies for the differential tests: small, varied Python programs over numpy arrays.

A generated program is a fixed prelude (arrays of shapes that broadcast, outer-broadcast and fail;
Python and numpy scalars; optionally pandas Series; evaluation-order probes; objects with attributes,
properties, dictionaries and lists to update in place) followed by drawn statements: assignments,
augmented assignments to names, attributes and subscripts (with side-effecting indexes), calls (numpy
functions, methods, keyword arguments, `*args`/`**kwargs`), comparisons (single and chained),
comprehensions, lambdas, generators with `yield` inside expressions, walrus, try/except/else/finally,
warnings turned into errors, `global`/`nonlocal`, `match`, class bodies with computations, zero-argument
`super()`, `locals()`, annotations and `from __future__ import annotations`.

Everything the program observes goes into the list `log` (probe tags with the caller's line, caught
exceptions with their formatted tracebacks, values, `x is before` identity checks); the test compares
`log`, the final namespace, warnings, stdout and any uncaught exception between a plain and a traced run.

A few constructs are known to behave differently when traced (see FEATURES); `programs()` writes them
only when asked, so that the property test checks everything else while each known difference has its
own minimal xfail test; test_differential.ENABLED_FEATURES turns a fixed one back on.

Sizes stay bounded whatever hypothesis draws: an exponent or a shift amount is always a small leaf,
outer products and `[:, None]` only take the fixed arrays (never a variable that could have grown), and
lists and strings appear only next to a fixed array, so nothing can repeat a sequence a huge number of
times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from hypothesis import strategies as st

PRELUDE = '''\
import functools
import sys
import traceback
import warnings

import numpy as np
{pandas_import}
log = []


def p(tag, value):
    """Evaluation-order probe: note the tag and the line the caller is at; hand the value back."""
    log.append((tag, sys._getframe(1).f_lineno))
    return value


class Probe:
    """The same probe reached through calls the rewriter wraps (an instance, a method named `map`)."""

    def __call__(self, tag, value):
        log.append(("call", tag, sys._getframe(1).f_lineno))
        return value

    def map(self, tag, value):
        log.append(("map", tag, sys._getframe(1).f_lineno))
        return value


class Warner:
    """Warns on behalf of its caller (stacklevel=2): the warning must name the caller's line."""

    def __call__(self, tag, value):
        warnings.warn(f"warned {{tag}}", UserWarning, stacklevel=2)
        return value


probe = Probe()
warner = Warner()
q = functools.partial(p, "partial")


def caught(ex):
    log.append(("caught", type(ex).__name__, str(ex), "".join(traceback.format_exception(ex))))


def drive(gen, values):
    out = []
    try:
        out.append(next(gen))
        for v in values:
            out.append(gen.send(v))
    except StopIteration as stop:
        out.append(("return", stop.value))
    return out


def twice(a, b=None):
    log.append("twice")
    return a + a if b is None else a + b


def deco(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        log.append(("deco", fn.__name__))
        return fn(*args, **kwargs)
    return wrapper


class Obj:
    pass


class Tracked:
    """An attribute behind a property: `t.v += e` gets, evaluates e, operates, sets."""

    def __init__(self, v):
        self._v = v

    @property
    def v(self):
        log.append("get v")
        return self._v

    @v.setter
    def v(self, value):
        log.append(("set v", value is self._v))
        self._v = value


class Slot:
    __slots__ = ("v",)


class Dyn:
    """Attributes from __getattr__ until assigned: `dyn.z += e` reads through it, then stores."""

    def __getattr__(self, name):
        log.append(("getattr", name))
        if name.startswith("__"):
            raise AttributeError(name)
        return np.ones(3)


def _val(v):
    return v.v if isinstance(v, Num) else v


class Num:
    """A user number: numpy defers to it (`__array_ufunc__ = None`); it logs what Python calls on it."""

    __array_ufunc__ = None

    def __init__(self, v):
        self.v = v

    def __repr__(self):
        return f"Num({{self.v!r}})"

    def __add__(self, other):
        log.append("Num.add")
        return Num(self.v + _val(other))

    def __radd__(self, other):
        log.append("Num.radd")
        return Num(_val(other) + self.v)

    def __iadd__(self, other):
        log.append("Num.iadd")
        self.v = self.v + _val(other)
        return self

    def __mul__(self, other):
        log.append("Num.mul")
        return Num(self.v * _val(other))

    __rmul__ = __mul__

    def __matmul__(self, other):
        log.append("Num.matmul")
        return Num(np.dot(self.v, _val(other)))

    def __lt__(self, other):
        log.append("Num.lt")
        return Num(self.v < _val(other))

    def __eq__(self, other):
        log.append("Num.eq")
        return Num(self.v == _val(other))

    __hash__ = None

    def __bool__(self):
        log.append("Num.bool")
        return bool(np.all(self.v))


async def ready(v):
    return v


def run_coro(coro):
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    return "suspended"


A = np.arange(6, dtype=float).reshape(2, 3) / 4 + 0.5
B = np.array([1.0, -2.0, 0.5])
C = np.array([[2.0], [-1.0]])
D = np.array([[1.0], [0.0], [3.0]])
M = np.arange(6, dtype=float).reshape(3, 2) - 2
I = np.arange(6).reshape(2, 3)
J = np.array([1, 0, 2])
K = np.array([True, False, True])
Z = np.array([0.0, 1.0, -0.0])
G = np.array([800.0, 1.0, -800.0])
α = A.T.copy()
n = 2
x = 1.5
z = 0
neg = -1
f32 = np.float32(0.25)
i64 = np.int64(3)
L = [1.0, 2.0, 3.0]
s = "ab"
{pandas_values}
r0 = A.copy()
r1 = B * 1.0
r2 = I.copy()
r3 = C + 0.0
R = np.zeros((2, 3))
i = 1
lst = [A.copy(), B.copy(), 2.0]
d = {{"k": A.copy(), "j": 1.5, "n": 3}}
o = Obj()
o.x = B.copy()
o.y = 2
t = Tracked(A.copy())
it = iter([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
w = None
sl = Slot()
sl.v = B.copy()
dyn = Dyn()
num = Num(1.5)
'''

PANDAS_IMPORT = "import pandas as pd\n"
PANDAS_VALUES = "S = pd.Series([1.0, 2.0, 3.0])\nT = pd.Series([1.0, 2.0, 3.0], index=[1, 2, 3])\n"

BASE_ARRAYS = ("A", "B", "C", "D", "M", "I", "J", "K", "Z", "G", "α")
SCALARS = ("n", "x", "z", "neg", "f32", "i64")
RVARS = ("r0", "r1", "r2", "r3")
CONSTANTS = ("2", "0.5", "-1", "3", "(-2.0)")
SMALL = ("n", "z", "neg", "i64", "2", "3", "-1", "0.5", "J")  # exponents and shift amounts
OPS = ("+", "-", "*", "/", "//", "%", "**", "@", "&", "|", "^", "<<", ">>")
COMMON_OPS = ("+", "-", "*", "/", "@")
COMPARES = ("==", "!=", "<", "<=", ">", ">=")
UNARY_NP = ("np.exp", "np.log", "np.sqrt", "np.tanh", "np.abs", "np.sign")
BINARY_NP = ("np.maximum", "np.minimum", "np.dot", "np.matmul", "np.add", "np.multiply", "np.divide")
REDUCE_NP = ("np.sum", "np.mean", "np.max", "np.prod")
METHODS0 = ("sum", "mean", "max", "copy", "ravel", "argmax", "cumsum")
AXES = ("0", "1", "-1", "2")
SHAPES = ("-1", "3, 2", "-1, 1", "1, -1", "2, 3", "(6,)")


@dataclass(frozen=True)
class Ctx:
    """What an expression may use where it is generated."""

    names: tuple[str, ...]  # array-like names readable here
    yield_ok: bool = False  # inside a generator function's own body
    walrus: str | None = "w"  # the name `:=` binds here; None where walrus is not allowed
    depth: int = 0  # comprehension nesting, for fresh loop variable names
    pandas: bool = False
    features: frozenset[str] = frozenset()  # opt-in constructs, see FEATURES


# Constructs the generator writes only when asked, because tracing is known to change what they do (each
# has an xfail test in test_differential.py; once fixed, add it to test_differential.ENABLED_FEATURES):
#   "multiline_methods": a method call whose `.method` is on a later line than the call's start,
#                        `(x\n .sum())` or `(a\n + b).sum()`
#   "cond_compare": a comparison that is itself the condition of if/while/assert/ifexp/a comprehension's
#                   `if`/a match guard, or an operand of and/or/not there (`if a == b:`)
#   "late_first_line": an operation that starts on an earlier line than the operand evaluated first,
#                      `(a\n if c else b)` (the test is evaluated first)
#   "late_kwargs": a call whose positional arguments end on a later line than the call's start, followed by
#                  keyword arguments there: `np.sum(\n    x, axis=0)`
FEATURES = frozenset({"multiline_methods", "cond_compare", "late_first_line", "late_kwargs"})


def _leaf_names(ctx: Ctx) -> tuple[str, ...]:
    return ctx.names + SCALARS + (("S", "T") if ctx.pandas else ()) + ("num",)


@st.composite
def leaf(draw, ctx: Ctx) -> str:
    kind = draw(st.sampled_from(("name", "name", "name", "scalar", "const", "probe", "num")))
    if "multiline_methods" in ctx.features and draw(st.integers(0, 2)) == 0:
        return f'(probe\n    .map("multiline", {draw(st.sampled_from(ctx.names))}))'
    if kind == "num":
        return "num"
    if kind == "name":
        return draw(st.sampled_from(ctx.names + (("S", "T") if ctx.pandas else ())))
    if kind == "scalar":
        return draw(st.sampled_from(SCALARS))
    if kind == "const":
        return draw(st.sampled_from(CONSTANTS))
    inner = draw(st.sampled_from(_leaf_names(ctx)))
    return draw(_probe(ctx, inner))


@st.composite
def _probe(draw, ctx: Ctx, inner: str) -> str:
    tag = draw(st.sampled_from(("a", "b", "c", "d", "é", "ß→")))
    how = draw(st.sampled_from(("p", "p", "probe", "map", "q", "warn")))
    if how == "p":
        return f'p("{tag}", {inner})'
    if how == "probe":
        return f'probe("{tag}", {inner})'
    if how == "map":
        if "multiline_methods" in ctx.features and draw(st.booleans()):
            return f'(probe\n    .map("{tag}", {inner}))'
        return f'probe.map("{tag}", {inner})'
    if how == "warn":
        return f'warner("{tag}", {inner})'
    return f"q({inner})"


def _recv(e: str) -> str:
    """A receiver of `.attr` or `[...]`: a bare number needs brackets (`(3).T`, not `3.T`)."""
    return f"({e})" if e[:1].isdigit() or e[:1] in "-." else e


def _oneline(e: str) -> str:
    """The expression on one line (brackets keep it valid; a backslash continuation goes with its newline)."""
    return re.sub(r"\s*\\?\n\s*", " ", e)


def _binop_text(left: str, op: str, right: str, layout: int) -> str:
    if layout == 4:
        return f"({left} {op} \\\n    {right})"
    if layout == 1:
        return f"({left}\n    {op} {right})"
    if layout == 2:
        return f"({left} {op}\n        {right})"
    if layout == 3:
        return f"{left}{op}{right}"  # parenthesised by the caller's context: used only at the top
    return f"({left} {op} {right})"


@st.composite
def expr(draw, ctx: Ctx, depth: int = 2) -> str:
    """An expression: mostly array arithmetic, with every construct the rewriter touches."""
    if depth <= 0:
        return draw(leaf(ctx))
    sub = lambda c=ctx: expr(c, depth - 1)  # noqa: E731
    kind = draw(st.sampled_from((
        "binop", "binop", "binop", "binop", "binop_small", "compare", "compare", "chain", "unary",
        "np1", "np2", "reduce", "method", "method_kw", "reshape", "attr_T", "subscript", "outer",
        "probe", "lambda", "listcomp", "genexp", "dictcomp", "walrus", "ifexp", "starred", "kwstarred",
        "where", "concat", "yield", "fstring_len", "leaf", "list_side", "boolop", "not", "user_call",
    )))
    layout = draw(st.sampled_from((0, 0, 0, 0, 0, 1, 2, 4)))
    if kind == "binop":
        op = draw(st.sampled_from(OPS + COMMON_OPS))
        left = draw(sub())
        right = draw(st.sampled_from(SMALL)) if op in ("**", "<<", ">>") else draw(sub())
        return _binop_text(left, op, right, layout)
    if kind == "binop_small":  # a whole binop of leaves: constants make it skip the hook
        op = draw(st.sampled_from(OPS))
        return _binop_text(draw(leaf(ctx)), op, draw(st.sampled_from(SMALL)), layout)
    if kind == "compare":
        op = draw(st.sampled_from(COMPARES))
        return _binop_text(draw(sub()), op, draw(sub()), layout)
    if kind == "chain":
        op1, op2 = draw(st.sampled_from(COMPARES)), draw(st.sampled_from(COMPARES))
        return f"({draw(sub())} {op1} {draw(sub())} {op2} {draw(sub())})"
    if kind == "unary":
        op = draw(st.sampled_from(("-", "+", "~", "abs")))
        e = draw(sub())
        return f"abs({e})" if op == "abs" else f"({op}{e})"
    if kind == "np1":
        fn = draw(st.sampled_from(UNARY_NP))
        return f"{fn}({draw(sub())})"
    if kind == "np2":
        fn = draw(st.sampled_from(BINARY_NP))
        if layout:
            return f"{fn}(\n    {draw(sub())},\n    {draw(sub())})"
        return f"{fn}({draw(sub())}, {draw(sub())})"
    if kind == "reduce":
        fn = draw(st.sampled_from(REDUCE_NP))
        e = draw(sub())
        form = draw(st.sampled_from(("plain", "axis", "keepdims", "positional", "probe_kw")))
        ax = draw(st.sampled_from(AXES))
        if "late_kwargs" in ctx.features and draw(st.booleans()):
            return f"{fn}(\n    {e}, axis={ax})"
        call = {"plain": f"{fn}({e})", "axis": f"{fn}({e}, axis={ax})",
                "keepdims": f"{fn}({e}, axis={ax}, keepdims=True)", "positional": f"{fn}({e}, {ax})",
                "probe_kw": f'{fn}({e}, axis=p("axis", {ax}))'}[form]
        return call if "late_kwargs" in ctx.features or form in ("plain", "positional") else _oneline(call)
    if kind in ("method", "method_kw", "reshape"):
        recv = _recv(draw(sub()))
        if "multiline_methods" not in ctx.features:
            recv = _oneline(recv)  # a receiver on several lines puts `.method` on a later line than the call
        if kind == "method":
            call = f"{draw(st.sampled_from(METHODS0))}()"
        elif kind == "method_kw":
            m = draw(st.sampled_from(("sum", "mean", "max", "std")))
            ax = draw(st.sampled_from(AXES))
            call = draw(st.sampled_from((f"{m}(axis={ax})", f"{m}(axis={ax}, keepdims=True)", f"{m}({ax})",
                                         f"dot({draw(sub())})", "clip(0, 1)", "astype(float)",
                                         f'clip(p("lo", -1), max=p("hi", 1))')))
        else:
            call = f"reshape({draw(st.sampled_from(SHAPES))})"
        if "multiline_methods" in ctx.features and layout:
            return f"({recv}\n    .{call})"
        return f"{recv}.{call}"
    if kind == "attr_T":
        return f"{_recv(draw(sub()))}.T"
    if kind == "subscript":
        e = _recv(draw(sub()))
        index = draw(st.sampled_from(("0", "-1", ":, 0", "..., :1", "::-1", 'p("idx", 0)', "1:", "K")))
        return f"{e}[{index}]"
    if kind == "outer":  # only fixed arrays: a grown variable must never be squared again
        a, b = draw(st.sampled_from(BASE_ARRAYS)), draw(st.sampled_from(BASE_ARRAYS))
        op = draw(st.sampled_from(("+", "-", "*", "==", "<")))
        return draw(st.sampled_from((f"np.outer({a}, {b})", f"({a}[:, None] {op} {b})",
                                     f"({a}[:, np.newaxis] {op} {b}[None, :])")))
    if kind == "probe":
        return draw(_probe(ctx, draw(sub())))
    if kind == "lambda":
        inner = Ctx(names=ctx.names + ("a", "b"), walrus="lw", depth=ctx.depth, pandas=ctx.pandas,
                    features=ctx.features)
        body = draw(expr(inner, depth - 1))
        form = draw(st.sampled_from(("one", "default", "star")))
        if form == "one":
            return f"(lambda a, b=B: {body})({draw(sub())})"
        if form == "default":
            return f"(lambda a, b={draw(sub())}: {body})(A)"
        call = f"(lambda *xs, **kw: (lambda a, b: {body})(xs[0], kw['b']))({draw(sub())}, b={draw(sub())})"
        return call if "late_kwargs" in ctx.features else _oneline(call)
    if kind in ("listcomp", "genexp", "dictcomp"):
        v = f"v{ctx.depth}"
        # a comprehension sees the names around it, but not a class body's: callers pass names that work
        inner = replace(ctx, names=ctx.names + (v,), yield_ok=False, depth=ctx.depth + 1,
                        walrus=ctx.walrus)
        body = draw(expr(inner, depth - 1))
        it = draw(st.sampled_from(("(A, B)", "(B, C, D)", "(r1, J)", "range(2)", "[A, M.T]")))
        cond = draw(st.sampled_from(("", f" if np.all({v} == {v})", f" if p('cond', {v}) is not None",
                                     f" if {draw(condition(inner))}")))
        if kind == "listcomp":
            return f"[{body} for {v} in {it}{cond}][-1]"
        if kind == "genexp":  # sum() is wrapped: its keyword must not follow a later line (see "late_kwargs")
            call = f"sum(({body} for {v} in {it}{cond}), start=0.0)"
            return call if "late_kwargs" in ctx.features else _oneline(call)
        return f"{{str(k{ctx.depth}): {body} for k{ctx.depth}, {v} in enumerate({it}){cond}}}['0']"
    if kind == "walrus" and ctx.walrus:
        return f"({ctx.walrus} := {draw(sub())})"
    if kind == "ifexp":
        body = draw(sub())
        if "late_first_line" not in ctx.features:
            body = _oneline(body)  # else the test, evaluated first, starts on a later line than the whole
        elif draw(st.booleans()):
            body = f"({body}\n    )"
        return f"({body} if {draw(condition(ctx, depth - 1))} else {draw(sub())})"
    if kind == "boolop":  # in a value, not a condition: the operands' truth is tested by and/or
        return f"({draw(sub())} {draw(st.sampled_from(('and', 'or')))} {draw(sub())})"
    if kind == "not":
        return f"(not {draw(sub())})"
    if kind == "user_call":  # a module-level user function, with probes in positional, keyword, */** arguments
        form = draw(st.sampled_from(("kw", "star", "dstar", "wrapped_kw")))
        a, b = draw(sub()), draw(sub())
        return {"kw": f'twice(p("x", {a}), b=p("y", {b}))', "star": f"twice(*[{a}], **{{'b': {b}}})",
                "dstar": f"twice({a}, **{{'b': p('kw', {b})}})",
                "wrapped_kw": f'probe(p("tag", "kw"), value=np.add(p("l", {a}), {b}))'}[form]
    if kind == "starred":
        fn = draw(st.sampled_from(BINARY_NP))
        return f"{fn}(*({draw(sub())}, {draw(sub())}))"
    if kind == "kwstarred":
        fn = draw(st.sampled_from(REDUCE_NP))
        return f'{fn}({draw(sub())}, **{{"axis": {draw(st.sampled_from(AXES))}}})'
    if kind == "where":
        return f"np.where({draw(sub())} > 0, {draw(sub())}, {draw(sub())})"
    if kind == "concat":
        return f"np.concatenate([{draw(sub())}, {draw(sub())}])"
    if kind == "yield" and ctx.yield_ok:
        return f"(yield {draw(sub())})"
    if kind == "fstring_len":  # an f-string around an operation of plain names (3.11 f-strings take no quotes)
        a, b = draw(st.sampled_from(ctx.names)), draw(st.sampled_from(ctx.names + SCALARS))
        return f'len(f"{{{a} {draw(st.sampled_from(COMMON_OPS))} {b}!r:.12}}")'
    if kind == "list_side":  # lists and strings only ever meet a fixed array
        arr = draw(st.sampled_from(BASE_ARRAYS))
        seq = draw(st.sampled_from(("L", "[1, 2, 3]", "lst[1]", "s")))
        op = draw(st.sampled_from(OPS + COMPARES))
        return f"({arr} {op} {seq})" if draw(st.booleans()) else f"({seq} {op} {arr})"
    return draw(leaf(ctx))


@st.composite
def condition(draw, ctx: Ctx, depth: int = 1) -> str:
    """A condition of if/while/assert/ifexp/comprehension/match guard.

    A comparison (or and/or/not of comparisons) is itself the condition only with the "cond_compare"
    feature; otherwise the truth test is of a call or of a Python int comparison."""
    if "cond_compare" in ctx.features and draw(st.booleans()):
        op = draw(st.sampled_from(COMPARES))
        cmp = f"{draw(st.sampled_from(ctx.names))} {op} {draw(expr(ctx, depth))}"  # mostly arrays: ambiguous
        form = draw(st.sampled_from(("plain", "plain", "not", "and", "or", "multiline")))
        if form == "not":
            return f"(not {cmp})"
        if form in ("and", "or"):
            return f"({draw(expr(ctx, depth))} {form} {cmp})"
        if form == "multiline":
            return f"({draw(st.sampled_from(ctx.names))}\n        {op} {draw(expr(ctx, depth))})"
        return f"({cmp})"
    e = _recv(draw(expr(ctx, depth)))
    return draw(st.sampled_from((f"np.any({e})", f"np.all({e})", f"{e}.size > 2", f"bool(np.sum({e}))")))


# -- statements ---------------------------------------------------------------


@dataclass
class Gen:
    """Per-program state while drawing statements: fresh names for functions and classes."""

    pandas: bool
    future: bool
    counter: int = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"


def indent(lines: list[str], n: int = 1) -> list[str]:
    pad = "    " * n
    return [pad + line if line else line for line in lines]


def _ml(text: str, n: int = 1) -> str:
    """Re-indent the continuation lines of a multi-line expression (cosmetic: they are in brackets)."""
    return text.replace("\n", "\n" + "    " * n)


@st.composite
def simple_stmt(draw, g: Gen, ctx: Ctx, targets: tuple[str, ...]) -> list[str]:
    """One statement: assignment, augmented assignment (name, attribute, subscript) or a logged value."""
    e = draw(expr(ctx))
    if "late_kwargs" in ctx.features and draw(st.booleans()):
        fn, ax = draw(st.sampled_from(REDUCE_NP)), draw(st.sampled_from(AXES))
        return [f"{draw(st.sampled_from(targets))} = {fn}(\n    {_oneline(draw(expr(ctx, 1)))}, axis={ax})"]
    if "late_first_line" in ctx.features and draw(st.booleans()):
        body, test, orelse = draw(expr(ctx, 1)), draw(condition(ctx, 0)), draw(expr(ctx, 1))
        return [f"{draw(st.sampled_from(targets))} = ({body}\n    if {test} else {orelse})"]
    kind = draw(st.sampled_from(("assign", "aug_name", "aug_name", "aug_attr", "aug_prop", "aug_dict",
                                 "aug_dict_probe", "aug_list", "aug_array", "aug_next", "log", "log",
                                 "ann", "chain_assign", "unpack", "aug_slice", "aug_slot", "aug_dyn",
                                 "aug_num", "print", "refcount", "resize")))
    op = draw(st.sampled_from(OPS + COMMON_OPS))
    if op in ("**", "<<", ">>"):
        e = draw(st.sampled_from(SMALL))
    target = draw(st.sampled_from(targets))
    if kind == "assign":
        return [f"{target} = {e}"]
    if kind == "ann":
        ann = draw(st.sampled_from(("np.ndarray", '"Array"', "int | None", "B.shape")))
        return [f"{target}: {ann} = {e}"]
    if kind == "chain_assign":
        return [f"{target} = w = {e}"] if ctx.walrus == "w" else [f"{target} = {e}"]
    if kind == "unpack":
        return [f"{target}, _u = {e}, p('unpack', 1)"]
    if kind == "refcount":  # a reference the hooks kept behind would show here (and in resize)
        return [f'log.append(("refs", sys.getrefcount({target}), sys.getrefcount(o), sys.getrefcount(d)))']
    if kind == "resize":  # refuses an array referenced from anywhere else
        return [f"{target}.resize({target}.shape)", f"R.resize(R.shape)"]
    if kind == "print":
        return [f"print({e}, sep='|')"]
    if kind == "aug_name":
        lines = [f"_before = {target}", f"{target} {op}= {e}", f'log.append(("same", {target} is _before))']
        return ["; ".join(lines)] if "\n" not in e and draw(st.booleans()) else lines
    if kind == "aug_attr":
        return ["_before = o.x", f"o.x {op}= {e}", 'log.append(("same", o.x is _before))']
    if kind == "aug_prop":
        return [f"t.v {op}= {e}"]
    if kind == "aug_dict":
        key = draw(st.sampled_from(('"k"', '"j"', '"n"', '"missing"')))
        return [f"d[{key}] {op}= {e}"]
    if kind == "aug_dict_probe":
        return [f'd[p("key", "k")] {op}= {e}']
    if kind == "aug_list":
        index = draw(st.sampled_from(("i", "0", "-1", 'p("index", 1)', "neg")))
        return [f"lst[{index}] {op}= {e}"]
    if kind == "aug_array":
        index = draw(st.sampled_from(("i", "0", ":, 1", 'p("row", 0)', "K[:2]", "...")))
        return ["_before = R", f"R[{index}] {op}= {e}", 'log.append(("same", R is _before))']
    if kind == "aug_slice":
        return [f"r0[:, p('col', 1)] {op}= {e}"]
    if kind == "aug_slot":
        return ["_before = sl.v", f"sl.v {op}= {e}", 'log.append(("same", sl.v is _before))']
    if kind == "aug_dyn":
        return [f"dyn.z {op}= {e}", "log.append(vars(dyn))"]
    if kind == "aug_num":
        return ["_before = num", f"num {op}= {e}", 'log.append(("same", num is _before))']
    if kind == "aug_next":
        return [f"R[next(it)] {op}= {e}"]
    return [f"log.append({e})"]


@st.composite
def guarded(draw, g: Gen, body: list[str]) -> list[str]:
    """The body, maybe inside try/except[/else][/finally] or with RuntimeWarnings turned into errors."""
    form = draw(st.sampled_from(("try", "try", "try", "try_finally", "try_else", "narrow", "warn_error",
                                 "bare")))
    if form == "bare":
        return body
    if form == "warn_error":
        return (["try:", "    with warnings.catch_warnings():",
                 '        warnings.simplefilter("error", RuntimeWarning)'] + indent(body, 2)
                + ["except Exception as ex:", "    caught(ex)"])
    out = ["try:"] + indent(body)
    out += (["except (ValueError, TypeError) as ex:", "    caught(ex)"] if form == "narrow"
            else ["except Exception as ex:", "    caught(ex)"])
    if form == "try_else":
        out += ["else:", '    log.append("else")']
    if form == "try_finally":
        out += ["finally:", '    log.append("finally")']
    return out


@st.composite
def compound(draw, g: Gen, ctx: Ctx) -> list[str]:
    """A construct with its own scope or control flow, and the statements that exercise it."""
    kind = draw(st.sampled_from(("function", "global_fn", "closure", "generator", "class_body", "super",
                                 "locals", "match_shape", "match_class", "for", "if", "genexp_lazy",
                                 "comprehension_walrus", "decorated", "assert", "while", "with", "async",
                                 "raise_from")))
    sub_ctx = replace(ctx, names=ctx.names + ("a", "b"), walrus="w")
    if kind == "function":
        name = g.fresh("f")
        ann = " -> np.ndarray" if g.future else ""
        body = draw(st.lists(simple_stmt(g, sub_ctx, ("u", "a")), min_size=1, max_size=3))
        lines = [f"def {name}(a, b=B){ann}:", "    u = a * 1.0"]
        lines += indent([line for stmt in body for line in stmt])
        lines += [f"    return {_ml(draw(expr(sub_ctx)), 1)}"]
        return lines + draw(guarded(g, [f"log.append({name}({draw(expr(ctx, 1))}))"]))
    if kind == "global_fn":
        name = g.fresh("g")
        target = draw(st.sampled_from(RVARS))
        op = draw(st.sampled_from(COMMON_OPS))
        lines = [f"def {name}(a):", f"    global {target}", f"    {target} {op}= {_ml(draw(expr(sub_ctx)), 1)}",
                 f"    {target} = {target} {draw(st.sampled_from(COMMON_OPS))} a", f"    return {target}"]
        return lines + draw(guarded(g, [f"log.append({name}({draw(expr(ctx, 1))}))"]))
    if kind == "closure":
        name = g.fresh("mk")
        op = draw(st.sampled_from(OPS[:8]))
        inner_ctx = replace(ctx, names=ctx.names + ("acc", "v"), walrus=None)
        lines = [f"def {name}(a):", "    acc = a * 1.0", "", "    def inner(v):", "        nonlocal acc",
                 f"        acc {op}= v", f"        acc = {_ml(draw(expr(inner_ctx, 1)), 2)}", "        return acc",
                 "    return inner"]
        calls = [f"fn = {name}({draw(expr(ctx, 1))})", f"log.append(fn({draw(expr(ctx, 1))}))",
                 f"log.append(fn({draw(expr(ctx, 1))}))"]
        return lines + draw(guarded(g, calls))
    if kind == "generator":
        name = g.fresh("gen")
        gctx = replace(sub_ctx, names=sub_ctx.names + ("got",), yield_ok=True, walrus="gw")
        lines = [f"def {name}(a):", f"    got = yield {_ml(draw(expr(replace(gctx, yield_ok=False))), 1)}",
                 f"    got = {_ml(draw(expr(gctx)), 1)}",
                 f"    log.append(p('in', a) {draw(st.sampled_from(COMMON_OPS))} (yield got))",
                 f"    got {draw(st.sampled_from(COMMON_OPS))}= (yield a)",
                 f"    o.x {draw(st.sampled_from(COMMON_OPS))}= (yield got)",
                 f"    yield from ({_ml(draw(expr(replace(gctx, yield_ok=False), 1)), 1)} for _ in range(2))",
                 "    return got"]
        sends = ", ".join(draw(expr(ctx, 1)) for _ in range(draw(st.integers(1, 5))))
        return lines + draw(guarded(g, [f"log.append(drive({name}({draw(expr(ctx, 1))}), [{sends}]))"]))
    if kind == "class_body":
        name = g.fresh("K")
        # class-level names are visible in the class body itself, not in its comprehensions or lambdas
        cctx = replace(ctx, names=ctx.names, walrus=None)
        cls_ctx = replace(cctx, names=cctx.names + ("ca",))
        op = draw(st.sampled_from(OPS[:8]))
        lines = [f"class {name}:", f"    ca = {_ml(draw(expr(cctx)), 1)}", f"    cb = ca {op} {draw(leaf(cctx))}",
                 f"    ca {draw(st.sampled_from(COMMON_OPS))}= {_ml(draw(expr(cls_ctx, 1)), 1)}",
                 f"    cc: np.ndarray = {_ml(draw(expr(cls_ctx, 1)), 1)}",
                 f"    r1 {draw(st.sampled_from(COMMON_OPS))}= ca  # reads the global, binds a class attribute",
                 f"    powers = [2 ** k for k in range(3)]",
                 "", "    def meth(self, v):", f"        return v {op} self.ca"]
        body = lines
        use = [f"log.append(({name}.ca, {name}.cb, {name}.cc, {name}.powers, {name}.r1, r1))",
               f"log.append({name}().meth({draw(expr(ctx, 1))}))"]
        return draw(guarded(g, body)) + draw(guarded(g, use))
    if kind == "super":
        base, subc = g.fresh("Base"), g.fresh("Sub")
        mctx = replace(ctx, names=ctx.names + ("v",), walrus=None)
        op = draw(st.sampled_from(COMMON_OPS))
        lines = [f"class {base}:", "    def __init__(self, v):", f"        self.v = {_ml(draw(expr(mctx, 1)), 2)}",
                 "", "    def f(self, v):", f"        return self.v {op} v", "",
                 f"class {subc}({base}):", "    def __init__(self, v):",
                 f"        super().__init__({_ml(draw(expr(mctx, 1)), 2)})",
                 f"        self.v {op}= {_ml(draw(expr(mctx, 1)), 2)}", "",
                 "    def f(self, v):", f"        return super().f({_ml(draw(expr(mctx, 1)), 2)}) {op} v"]
        use = [f"inst = {subc}({draw(expr(ctx, 1))})", f"log.append(inst.f({draw(expr(ctx, 1))}))",
               "log.append(inst.v)"]
        return lines + draw(guarded(g, use))
    if kind == "locals":
        name = g.fresh("loc")
        lctx = replace(sub_ctx, names=sub_ctx.names + ("t1",), walrus="lw")
        lines = [f"def {name}(a):", f"    t1 = {_ml(draw(expr(sub_ctx, 1)), 1)}",
                 f"    t2 = {_ml(draw(expr(lctx, 1)), 1)}", "    return sorted(locals()), t2"]
        return lines + draw(guarded(g, [f"log.append({name}({draw(expr(ctx, 1))}))", "log.append(sorted(locals()))"]))
    if kind == "match_shape":
        mctx = replace(ctx, walrus=None)
        lines = [f"match np.shape({draw(expr(ctx))}):",
                 f"    case (m_, k_) if m_ * k_ > n and {_ml(draw(condition(mctx)), 2)}:",
                 f"        log.append(('matrix', m_, k_, {draw(expr(mctx, 1))}))", "    case (m_,):",
                 f"        log.append(('vector', m_ {draw(st.sampled_from(COMMON_OPS))} {draw(leaf(mctx))}))",
                 "    case _:", "        log.append('other')"]
        return draw(guarded(g, lines))
    if kind == "match_class":
        mctx = replace(ctx, names=ctx.names + ("m_",), walrus=None)
        lines = [f"match {draw(expr(ctx))}:",
                 f"    case np.ndarray(ndim=2) as m_ if np.sum({draw(expr(mctx, 1))}) > 0:",
                 f"        log.append(('2d', {draw(expr(mctx, 1))}))",
                 "    case np.ndarray() as m_:", "        log.append(('nd', m_.shape))",
                 "    case float() | int() as m_:", "        log.append(('number', m_))",
                 "    case _:", "        log.append('other')"]
        return draw(guarded(g, lines))
    if kind == "for":
        fctx = replace(ctx, names=ctx.names + ("v",))
        body = draw(st.lists(simple_stmt(g, fctx, RVARS), min_size=1, max_size=2))
        lines = ["for v in (A, B, C):"] + indent([line for stmt in body for line in stmt])
        return draw(guarded(g, lines))
    if kind == "if":
        body = draw(simple_stmt(g, ctx, RVARS))
        lines = [f"if {_ml(draw(condition(ctx)), 1)}:"] + indent(body)
        if draw(st.booleans()):
            lines += [f"elif {_ml(draw(condition(ctx)), 1)}:", "    log.append('elif')"]
        lines += ["else:", "    log.append('not taken')"]
        return draw(guarded(g, lines))
    if kind == "while":
        body = draw(simple_stmt(g, ctx, RVARS))
        lines = ["_k = 0", f"while _k < 3 and {_ml(draw(condition(ctx)), 1)}:"] + indent(body) + ["    _k += 1"]
        return draw(guarded(g, lines))
    if kind == "with":
        body = draw(simple_stmt(g, ctx, RVARS))
        lines = ["with np.errstate(divide='ignore', invalid='ignore'):"] + indent(body)
        return draw(guarded(g, lines))
    if kind == "async":
        name = g.fresh("co")
        actx = replace(sub_ctx, walrus="aw")
        lines = [f"async def {name}(a):", f"    u = a {draw(st.sampled_from(COMMON_OPS))} await ready({draw(expr(actx, 1))})",
                 f"    return {_ml(draw(expr(replace(actx, names=actx.names + ('u',)), 1)), 1)}"]
        return lines + draw(guarded(g, [f"log.append(run_coro({name}({draw(expr(ctx, 1))})))"]))
    if kind == "raise_from":
        lines = ["try:", f"    log.append({_ml(draw(expr(ctx)), 1)})", "except Exception as ex:",
                 f"    raise RuntimeError('wrapped') from {draw(st.sampled_from(('ex', 'None')))}"]
        return draw(guarded(g, lines))
    if kind == "genexp_lazy":
        gctx = replace(ctx, names=ctx.names + ("v",), walrus=None)
        return draw(guarded(g, [f"lazy = ({draw(expr(gctx, 1))} for v in (A, B))", "log.append(next(lazy))",
                                "r1 = r1 * 2", "log.append(next(lazy))"]))
    if kind == "comprehension_walrus" and ctx.walrus:
        cctx = replace(ctx, names=ctx.names + ("v",))
        return draw(guarded(g, [f"log.append([(w := {draw(expr(cctx, 1))}) for v in (A, B)])",
                                "log.append(w)"]))
    if kind == "decorated":
        name = g.fresh("dec")
        return [ "@deco", f"def {name}(a, b=B):", f"    return {_ml(draw(expr(sub_ctx)), 1)}"] + draw(
            guarded(g, [f"log.append({name}({draw(expr(ctx, 1))}))"]))
    if kind == "assert":
        return draw(guarded(g, [f"assert {_ml(draw(condition(ctx)), 1)}, 'not equal'"]))
    return draw(guarded(g, draw(simple_stmt(g, ctx, RVARS))))


@dataclass(frozen=True)
class Program:
    source: str
    pandas: bool
    future: bool

    def __repr__(self) -> str:  # hypothesis shows this on failure: the program itself, readable
        return f"Program(pandas={self.pandas}, future={self.future}) with source:\n{self.source}"


@st.composite
def programs(draw, features: frozenset[str] = frozenset()) -> Program:
    """A whole program: prelude, then statements at module level (the last one may raise uncaught)."""
    assert features <= FEATURES, features - FEATURES
    pandas = draw(st.booleans())
    future = draw(st.booleans())
    g = Gen(pandas=pandas, future=future)
    ctx = Ctx(names=BASE_ARRAYS + RVARS, pandas=pandas, features=frozenset(features))
    head = []
    if draw(st.booleans()):
        head.append('"""A generated program."""')
    if future:
        head.append("from __future__ import annotations")
    prelude = PRELUDE.format(pandas_import=PANDAS_IMPORT if pandas else "",
                             pandas_values=PANDAS_VALUES if pandas else "")
    body: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 2)) == 0:
            body += draw(compound(g, ctx))
        else:
            body += draw(guarded(g, draw(simple_stmt(g, ctx, RVARS))))
    tail = draw(st.sampled_from(("", "", "annotations", "raise")))
    if tail == "annotations":
        body.append("log.append(sorted(__annotations__.items()) if '__annotations__' in dir() else None)")
    elif tail == "raise":  # an uncaught exception, maybe from an array operation
        body.append(f"log.append({_ml(draw(expr(ctx)), 0)})")
    source = "\n".join(head + [prelude] + body) + "\n"
    return Program(source, pandas, future)
