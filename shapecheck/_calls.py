"""What a numpy call gives for operands of given shapes: the call half of the shape algebra."""

from __future__ import annotations

import ast
from builtins import all, bool, frozenset, int, isinstance, len, list, str, tuple  # noqa: A004

from . import _shapes
from ._events import Site, Value

# The builtins above are bound at import: the recorder's slow path runs this module, and must not call a
# script's replacement of a builtin.

ELEMENTWISE_1 = frozenset("""
    exp log log1p log2 log10 expm1 sqrt square tanh sinh cosh sin cos tan arctan arcsin arccos abs
    absolute sign negative positive reciprocal floor ceil round rint clip nan_to_num isnan isinf
    isfinite copy exp2 sigmoid relu logical_not
""".split())
ELEMENTWISE_N = frozenset("""
    maximum minimum add subtract multiply divide true_divide power where fmax fmin logical_and
    logical_or greater less equal not_equal greater_equal less_equal heaviside hypot arctan2 mod
""".split())
REDUCE = frozenset("""
    sum mean std var max min prod amax amin nansum nanmean nanstd nanvar nanmax nanmin median nanmedian
    argmax argmin all any
""".split())


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _kw(site: Site, name: str):
    for k, text in site.keywords:
        if k == name:
            return _literal(text), True
    return None, False


def _arrays(vals: tuple[Value, ...]) -> list[Value]:
    return [v for v in vals if v.shape is not None and v.kind != "tuple"]


def call_operands(site: Site, vals: tuple[Value, ...]) -> tuple[Value | None, tuple[Value, ...]]:
    """(receiver, positional arguments) of a recorded call."""
    if site.kind == "method":
        return vals[0], vals[1:]
    return None, vals


def result_of_call(site: Site, vals: tuple[Value, ...]) -> tuple[tuple[int, ...] | None, str | None]:
    """(result shape, None), (None, error code) when numpy would raise, or (None, None) when unknown."""
    name = site.callee or ""
    recv, args = call_operands(site, vals)
    first = [recv] + list(args) if recv is not None and recv.is_array else list(args)
    shapes = [v.shape for v in first if v.shape is not None and v.kind not in ("tuple",)]
    if name in ("dot", "matmul", "inner", "outer", "vdot"):
        if len(first) < 2 or first[0].shape is None or first[1].shape is None:
            return None, None
        a, b = first[0].shape, first[1].shape
        if name == "dot":
            out = _shapes.dot(a, b)
        elif name == "matmul":
            out = _shapes.matmul(a, b)
        elif name == "outer":
            out = (_shapes.prod(a), _shapes.prod(b))
        else:
            return None, None
        return (out, None) if out is not None else (None, "inner")
    if name == "reshape":
        base = recv if recv is not None and recv.is_array else (args[0] if args else None)
        dims = args if recv is not None and recv.is_array else args[1:]
        new = _dims(dims)
        if new is None:
            new, found = _kw(site, "newshape") if site.kind != "method" else (None, False)
            if not found and site.kind != "method":
                new, found = _kw(site, "shape")
            new = (new,) if isinstance(new, int) else new
        if base is None or base.shape is None or new is None:
            return None, None
        out = _shapes.reshape(base.shape, new)
        return (out, None) if out is not None else (None, "size")
    if name in ("transpose",) and first and first[0].shape is not None and len(args) <= (0 if recv else 1):
        return _shapes.transpose(first[0].shape), None
    if name in ("ravel", "flatten") and first and first[0].shape is not None:
        return (_shapes.prod(first[0].shape),), None
    if name == "squeeze" and first and first[0].shape is not None:
        return tuple(d for d in first[0].shape if d != 1), None
    if name in REDUCE and first and first[0].shape is not None:
        axis, found = _kw(site, "axis")
        if not found:
            pos = args if recv is not None and recv.is_array else args[1:]
            if pos and pos[0].literal is not None:
                axis = pos[0].literal
        keepdims, _ = _kw(site, "keepdims")
        if axis is not None and not isinstance(axis, (int, tuple)):
            return None, None
        out = _shapes.reduce(first[0].shape, axis, bool(keepdims))
        return (out, None) if out is not None else (None, "axis")
    if name in ELEMENTWISE_1 and len(shapes) >= 1:
        return shapes[0], None
    if name in ELEMENTWISE_N and len(shapes) >= 2:
        out = shapes[0]
        for s in shapes[1:]:
            out = _shapes.broadcast(out, s)
            if out is None:
                return None, "shapes"
        return out, None
    return None, None


def _dims(vals: tuple[Value, ...]) -> tuple[int, ...] | None:
    """reshape's arguments as a shape: reshape(-1, 1) or reshape((4, 1))."""
    if not vals:
        return None
    if len(vals) == 1 and isinstance(vals[0].literal, tuple):
        return vals[0].literal
    if all(isinstance(v.literal, int) for v in vals):
        return tuple(v.literal for v in vals)
    return None
