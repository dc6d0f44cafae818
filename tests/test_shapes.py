"""The shape algebra agrees with numpy itself on random shapes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from shapecheck import _shapes

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)
nonempty = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


def numpy_shape(f):
    try:
        return f().shape if hasattr(f(), "shape") else ()
    except ValueError:
        return None


@settings(max_examples=300, deadline=None)
@given(shapes, shapes)
def test_broadcast(a, b):
    try:
        want = np.broadcast_shapes(a, b)
    except ValueError:
        want = None
    assert _shapes.broadcast(a, b) == want


@settings(max_examples=300, deadline=None)
@given(nonempty, nonempty)
def test_matmul(a, b):
    assert _shapes.matmul(a, b) == numpy_shape(lambda: np.matmul(np.zeros(a), np.zeros(b)))


@settings(max_examples=300, deadline=None)
@given(shapes, shapes)
def test_dot(a, b):
    assert _shapes.dot(a, b) == numpy_shape(lambda: np.dot(np.zeros(a), np.zeros(b)))


@settings(max_examples=300, deadline=None)
@given(nonempty, st.lists(st.sampled_from([-1, 1, 2, 3, 4, 6, 12]), min_size=1, max_size=3))
def test_reshape(a, new):
    assert _shapes.reshape(a, new) == numpy_shape(lambda: np.zeros(a).reshape(new))


@settings(max_examples=200, deadline=None)
@given(nonempty, st.one_of(st.none(), st.integers(-3, 2)), st.booleans())
def test_reduce(a, axis, keepdims):
    try:
        want = np.sum(np.zeros(a), axis=axis, keepdims=keepdims).shape
    except (ValueError, np.exceptions.AxisError if hasattr(np, "exceptions") else ValueError):
        want = None
    assert _shapes.reduce(a, axis, keepdims) == want


def test_stretched():
    assert _shapes.stretched((5,), (5, 5))
    assert _shapes.stretched((5, 1), (5, 5))
    assert not _shapes.stretched((3, 5), (3, 5))
    assert not _shapes.stretched((5,), (5,))
