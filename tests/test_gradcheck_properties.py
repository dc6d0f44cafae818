"""Property tests: functions whose gradients are known exactly, with randomly injected errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradnets import matrix_linear, quadratic
from shapecheck import gradcheck

seeds = st.integers(0, 2 ** 32 - 1)
modes = st.sampled_from(["full", "auto", "sample", "directions"])


def problem(seed, n):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    return A, rng.normal(size=n), rng.normal(size=n) * rng.choice([1e-3, 1.0, 1e3])


@settings(max_examples=30, deadline=None)
@given(seed=seeds, n=st.integers(1, 40), mode=modes)
def test_exact_gradients_always_pass(seed, n, mode):
    A, b, x = problem(seed, n)
    loss, grads = quadratic(A, b)
    r = gradcheck(loss, grads, {"x": x}, mode=mode, seed=seed)
    assert r.passed, str(r)


@settings(max_examples=30, deadline=None)
@given(seed=seeds, n=st.integers(2, 30), kind=st.sampled_from(["sign", "scale", "zero"]),
       factor=st.sampled_from([2.0, 0.5, 10.0, 32.0, 1 / 64, -3.0]), mode=st.sampled_from(["full", "auto"]))
def test_injected_errors_are_named(seed, n, kind, factor, mode):
    A, b, x = problem(seed, n)
    loss, grads = quadratic(A, b)
    change = {"sign": lambda g: -g, "scale": lambda g: factor * g, "zero": np.zeros_like}[kind]
    r = gradcheck(loss, lambda p: {"x": change(grads(p)["x"])}, {"x": x}, mode=mode, seed=seed)
    row = r.rows[0]
    assert row.status == "wrong", str(r)
    if kind == "scale" and factor == -3.0:
        assert row.diagnosis.kind == "scale" and row.diagnosis.factor == pytest.approx(-3.0, rel=1e-3)
    elif kind == "scale":
        assert row.diagnosis.kind == "scale" and row.diagnosis.factor == pytest.approx(factor, rel=1e-3)
    else:
        assert row.diagnosis.kind == kind


@settings(max_examples=25, deadline=None)
@given(seed=seeds, rows=st.integers(2, 12), cols=st.integers(2, 12), mode=st.sampled_from(["full", "auto"]))
def test_injected_transposes_are_named(seed, rows, cols, mode):
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(rows, cols))
    loss, grads = matrix_linear(C)
    W = rng.normal(size=(rows, cols))
    r = gradcheck(loss, lambda p: {"W": grads(p)["W"].T}, {"W": W}, mode=mode, seed=seed)
    row = r.rows[0]
    g = grads({"W": W})["W"]
    if rows != cols:
        assert (row.status, row.diagnosis.kind) == ("shape", "transpose")
    elif np.allclose(g, g.T, rtol=1e-4):
        assert r.passed  # a symmetric gradient's transpose is not a bug
    else:
        assert (row.status, row.diagnosis.kind) == ("wrong", "transpose"), str(r)


@settings(max_examples=20, deadline=None)
@given(seed=seeds, n=st.integers(1, 20))
def test_parameters_are_never_modified(seed, n):
    A, b, x = problem(seed, n)
    loss, grads = quadratic(A, b)
    before = x.tobytes()
    gradcheck(loss, lambda p: {"x": -grads(p)["x"]}, {"x": x}, mode="full")
    assert x.tobytes() == before
