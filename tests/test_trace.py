"""`@shapecheck.trace`: the same recording and explanations for one function, findings as warnings."""

from __future__ import annotations

import asyncio
import textwrap
import warnings

import numpy as np
import pytest

import shapecheck
from shapecheck import ShapeError, ShapeWarning


@shapecheck.trace
def residual(y, y_hat):
    return y - y_hat


def test_finding_becomes_a_warning_at_the_offending_line():
    with pytest.warns(ShapeWarning) as caught:
        out = residual(np.zeros(4), np.zeros((4, 1)))
    assert out.shape == (4, 4)  # computed exactly as without tracing
    [w] = caught
    assert w.message.code == "SC101"
    assert w.filename == __file__
    with open(__file__) as f:
        assert w.lineno == f.read().splitlines().index("    return y - y_hat") + 1
    assert str(w.message).startswith("SC101 warning at tests/test_trace.py:")
    assert "y (4,) and y_hat (4, 1) broadcast to (4, 4)" in str(w.message)
    assert "fix: y.reshape(-1, 1) - y_hat -> (4, 1)" in str(w.message)


def test_each_finding_is_reported_once():
    @shapecheck.trace
    def diff(a, b):
        return a - b

    with pytest.warns(ShapeWarning):
        diff(np.zeros(3), np.zeros((3, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diff(np.zeros(3), np.zeros((3, 1)))  # the same finding again: no second warning
        diff(np.zeros((2, 3)), np.zeros(3))  # a bias row: nothing to say


def test_strict_raises_after_the_call():
    @shapecheck.trace(strict=True)
    def loss(y, y_hat):
        return float(((y - y_hat) ** 2).mean())

    assert loss(np.zeros((3, 1)), np.ones((3, 1))) == 1.0
    with pytest.raises(ShapeError, match=r"SC101 warning at .*`y - y_hat` stretches both operands") as e:
        loss(np.zeros(3), np.ones((3, 1)))
    assert [f.code for f in e.value.findings] == ["SC101"]


def test_crash_gets_the_explanation_as_a_note():
    @shapecheck.trace
    def layer(W, x):
        return W @ x

    with pytest.raises(ValueError) as e:
        layer(np.ones((4, 3)), np.ones((4, 1)))
    [note] = e.value.__notes__
    assert note.startswith("shapecheck: `W @ x` at tests/test_trace.py:")
    assert "W  ndarray (4, 3) float64" in note
    assert "fix:   W.T @ x -> (3, 1)" in note


def test_values_closures_defaults_and_methods_are_unchanged():
    scale = np.arange(3.0)

    class Base:
        def __init__(self):
            self.__w = np.ones((3, 2))  # a private, name-mangled attribute

        def forward(self, x):
            return x @ self.__w

    class Layer(Base):
        @shapecheck.trace
        def forward(self, x, *, bias=1.0):
            """Scaled forward."""
            return super().forward(x * scale) + bias

    x = np.arange(12.0).reshape(4, 3)
    assert np.array_equal(Layer().forward(x), (x * scale) @ np.ones((3, 2)) + 1.0)
    assert Layer.forward.__doc__ == "Scaled forward."
    assert Layer.forward.__name__ == "forward"


def test_private_names_in_a_traced_method():
    class Net:
        def __init__(self):
            self.__w = np.eye(2)

        @shapecheck.trace
        def forward(self, x):
            return x @ self.__w

    assert np.array_equal(Net().forward(np.ones((3, 2))), np.ones((3, 2)))


def test_generator_and_coroutine_functions():
    @shapecheck.trace
    def batches(X):
        for i in range(0, len(X), 2):
            yield X[i:i + 2] * 2

    @shapecheck.trace
    async def forward(x, w):
        return x @ w

    assert [b.tolist() for b in batches(np.arange(4.0))] == [[0.0, 2.0], [4.0, 6.0]]
    assert asyncio.run(forward(np.ones((2, 3)), np.ones((3, 1)))).shape == (2, 1)


def test_in_place_update_still_mutates():
    @shapecheck.trace
    def step(w, g):
        w -= 0.5 * g
        return w

    w = np.ones(3)
    out = step(w, np.ones(3))
    assert out is w and np.array_equal(w, [0.5, 0.5, 0.5])


def test_source_unavailable_runs_untraced_with_a_warning(tmp_path):
    import linecache

    # A module whose file is gone: a unique name, so no cache (3.13 keeps exec'd `<string>` sources) has it.
    gone = tmp_path / "gone_module.py"
    source = textwrap.dedent("""
        def f(a, b):
            return a - b
    """)
    gone.write_text(source)
    ns = {}
    exec(compile(source, str(gone), "exec"), ns)
    gone.unlink()
    linecache.checkcache(str(gone))
    assert linecache.getlines(str(gone)) == []
    with pytest.warns(ShapeWarning, match=r"shapecheck.trace: f runs untraced: its source is not available"):
        traced = shapecheck.trace(ns["f"])
    assert traced is ns["f"]


def test_wrapped_function_is_refused_with_advice():
    import functools

    def deco(fn):
        @functools.wraps(fn)
        def inner(*a):
            return fn(*a)
        return inner

    @deco
    def g(a):
        return a

    with pytest.warns(ShapeWarning, match="put @shapecheck.trace directly above its def"):
        assert shapecheck.trace(g)(3) == 3


def test_not_a_function():
    with pytest.raises(TypeError, match="@shapecheck.trace takes a function defined with def, not int"):
        shapecheck.trace(3)


def test_findings_before_a_crash_are_still_warned_about():
    @shapecheck.trace(strict=True)
    def backward(A2, Y, W2):
        dZ2 = A2 - Y  # (1, 5) - (5, 1): the silent broadcast behind the crash
        return W2.T @ dZ2

    with pytest.warns(ShapeWarning, match="SC101") as caught, pytest.raises(ValueError) as e:
        backward(np.ones((1, 5)), np.ones((5, 1)), np.ones((1, 3)))
    assert [w.message.code for w in caught] == ["SC101"]
    [note] = e.value.__notes__  # the user's own exception, not a ShapeError, explained
    assert "`A2 - Y` at line" in note and "(SC101)" in note
