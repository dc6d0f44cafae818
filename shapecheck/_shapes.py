"""Shape algebra: what numpy would do with operands of given shapes, without any arrays.

Every function returns the result shape, or None when numpy would raise.
"""

from __future__ import annotations

from builtins import any, bool, enumerate, int, isinstance, len, max, reversed, set, str, tuple, zip  # noqa: A004
from collections.abc import Sequence

# The builtins above are bound at import: the recorder's slow path runs this module, and must not call a
# script's replacement of a builtin.

Shape = tuple[int, ...]


def fmt(shape: Sequence[int] | None) -> str:
    """`(130, 1)` as Python prints it; `?` when unknown."""
    if shape is None:
        return "?"
    return str(tuple(shape))


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """numpy's broadcasting of two shapes, or None when they do not broadcast."""
    n = max(len(a), len(b))
    pa = (1,) * (n - len(a)) + tuple(a)
    pb = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(pa, pb):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(out)


def stretched(shape: Shape, result: Shape) -> bool:
    """True when broadcasting `shape` to `result` repeats its data along some axis."""
    padded = (1,) * (len(result) - len(shape)) + tuple(shape)
    return any(s != r for s, r in zip(padded, result))


def matmul(a: Shape, b: Shape) -> Shape | None:
    """The shape of `a @ b` (np.matmul), or None when the inner dimensions disagree."""
    if len(a) == 0 or len(b) == 0:
        return None
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    if a2[-1] != b2[-2]:
        return None
    batch = broadcast(a2[:-2], b2[:-2])
    if batch is None:
        return None
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def dot(a: Shape, b: Shape) -> Shape | None:
    """The shape of `np.dot(a, b)` (scalars multiply; N-D sums over a's last and b's second-to-last axis)."""
    if len(a) == 0:
        return tuple(b)
    if len(b) == 0:
        return tuple(a)
    if len(b) == 1:
        return tuple(a[:-1]) if a[-1] == b[0] else None
    if a[-1] != b[-2]:
        return None
    return tuple(a[:-1]) + tuple(b[:-2]) + (b[-1],)


def transpose(a: Shape) -> Shape:
    return tuple(reversed(a))


def reshape(a: Shape, new: Sequence[int]) -> Shape | None:
    """The shape of `x.reshape(new)` for x of shape `a`, resolving one -1; None when sizes differ."""
    size = prod(a)
    new = tuple(int(d) for d in new)
    unknown = [i for i, d in enumerate(new) if d == -1]
    if len(unknown) > 1 or any(d < -1 for d in new):
        return None
    known = prod(d for d in new if d != -1)
    if unknown:
        if known == 0 or size % known:
            return None
        return tuple(size // known if d == -1 else d for d in new)
    return new if known == size else None


def reduce(a: Shape, axis: int | tuple[int, ...] | None, keepdims: bool = False) -> Shape | None:
    """The shape of a reduction (sum, mean, max, ...) over `axis`."""
    if axis is None:
        return (1,) * len(a) if keepdims else ()
    axes = axis if isinstance(axis, tuple) else (axis,)
    norm = set()
    for ax in axes:
        if not -len(a) <= ax < len(a):
            return None
        norm.add(ax % len(a))
    if keepdims:
        return tuple(1 if i in norm else d for i, d in enumerate(a))
    return tuple(d for i, d in enumerate(a) if i not in norm)


def prod(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n
