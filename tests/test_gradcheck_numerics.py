"""Numerics: no false alarms from round-off, truncation, kinks or float32; randomness caught first."""

from __future__ import annotations

import numpy as np
import pytest

from gradnets import colmajor_tanh, rowmajor_relu
from shapecheck import gradcheck


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mode", ["auto", "full"])
def test_correct_relu_softmax_networks_never_fail(dtype, seed, mode):
    # Wide hidden layer and a bigger batch in float32: many pre-activations sit near the ReLU kink.
    loss, grads, params = rowmajor_relu(seed=seed, dtype=dtype, m=64, h=20)
    r = gradcheck(loss, grads, params, mode=mode, seed=seed)
    assert r.passed, str(r)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_correct_tanh_network_passes(dtype):
    loss, grads, params = colmajor_tanh(dtype=dtype)
    assert gradcheck(loss, grads, params, mode="full").passed


def test_large_loss_next_to_tiny_gradients_is_not_called_wrong():
    # Loss ~1e4 x the data term plus a heavy L2 term; the biases' gradients are tiny next to it.
    loss, grads, params = rowmajor_relu(loss_scale=1e4, reg=1e3)
    r = gradcheck(loss, grads, params, mode="full")
    assert r.passed, str(r)


def test_a_gradient_below_the_noise_gets_a_note_not_a_failure():
    rng = np.random.default_rng(0)
    X, t = rng.normal(size=(50, 3)), rng.normal(size=50)
    w = np.array([5e3, -2e3, 1e3])
    b = np.mean(t - X @ w) + 1e-13  # optimal bias: its gradient is ~1e-11, the loss ~1e8

    def loss(p):
        r = X @ p["w"] + p["b"] - t
        return 0.5 * float(r @ r)

    def grads(p):
        r = X @ p["w"] + p["b"] - t
        return {"w": X.T @ r, "b": np.sum(r)}

    r = gradcheck(loss, grads, {"w": w, "b": b}, mode="full")
    assert r.passed, str(r)
    assert any("below the finite-difference noise" in n for n in r.rows[1].notes)


def test_truncation_error_of_a_steep_function_is_not_called_wrong():
    # exp(20 x): a large third derivative makes the first central difference visibly off;
    # the re-check (half step, Richardson) must clear it.
    def loss(p):
        return float(np.sum(np.exp(20 * p["x"])))

    r = gradcheck(loss, lambda p: {"x": 20 * np.exp(20 * p["x"])}, {"x": np.array([0.1, 0.5, 1.0])},
                  mode="full", eps=1e-3)
    assert r.passed, str(r)


def test_a_step_straddling_a_kink_is_reported_as_kink_not_wrong():
    # |x| and max(x, 0) evaluated right next to their kinks, closer than the step.
    x = np.array([1e-9, -2e-9, 0.7, 3e-10])

    def loss(p):
        return float(np.sum(np.abs(p["x"][:2])) + np.sum(np.maximum(p["x"][2:], 0)))

    def grads(p):
        v = p["x"]
        return {"x": np.concatenate([np.sign(v[:2]), (v[2:] > 0).astype(float)])}

    r = gradcheck(loss, grads, {"x": x}, mode="full")
    row = r.rows[0]
    assert r.passed
    assert row.status == "kink" and row.kinks == 3 and row.mismatched == 0
    assert "kink" in row.diagnosis.text and "(0,)" in row.diagnosis.text


def test_a_wrong_value_at_a_kink_is_still_wrong():
    # The analytic value 5 is outside every one-sided slope (-1, 1) of |x| at 0.
    r = gradcheck(lambda p: float(np.abs(p["x"][0])), lambda p: {"x": np.array([5.0])},
                  {"x": np.array([1e-9])}, mode="full")
    assert r.rows[0].status == "wrong"


@pytest.mark.parametrize("how", ["global", "generator"])
def test_a_random_loss_is_reported_as_random_before_any_comparison(how):
    loss, grads, params = rowmajor_relu()
    rng = np.random.default_rng()

    def dropout_loss(p):
        noise = np.random.rand() if how == "global" else rng.random()
        return loss(p) * (1 + 0.1 * noise)

    r = gradcheck(dropout_loss, grads, params)
    assert not r.passed and r.overall_kind == "random"
    assert r.evaluations == 2
    assert all(row.status == "skipped" for row in r.rows)
    assert "different values at the same parameters" in r.overall_text
    assert "seed it" in r.overall_text and "disable dropout" in r.overall_text
    assert "wrong" not in r.headline


def test_random_gradients_are_caught_too():
    loss, grads, params = rowmajor_relu()

    def noisy_grads(p):
        g = grads(p)
        g["b1"] = g["b1"] + 1e-3 * np.random.rand(*g["b1"].shape)
        return g

    r = gradcheck(loss, noisy_grads, params)
    assert r.overall_kind == "random" and "the gradients returned different values" in r.overall_text


def test_seeded_dropout_inside_the_loss_is_fine():
    loss, grads, params = rowmajor_relu()

    def seeded(p):
        mask = np.random.default_rng(0).random(5) > 0.5  # the same mask on every call
        return loss(p) + 0.0 * mask.sum()

    assert gradcheck(seeded, grads, params).passed


def test_a_non_finite_loss_is_reported_not_compared():
    with np.errstate(divide="ignore"):  # the user's own log(0)
        r = gradcheck(lambda p: float(np.log(p["w"][0])), lambda p: {"w": 1 / p["w"]}, {"w": np.array([0.0, 1.0])})
    assert not r.passed and r.overall_kind == "error" and "log(0)" in r.overall_text


def test_a_loss_that_ignores_its_argument_is_named():
    loss, grads, params = rowmajor_relu()
    frozen = {k: v.copy() for k, v in params.items()}
    r = gradcheck(lambda p: loss(frozen), grads, params)
    assert not r.passed
    assert "does not use the params" in r.overall_text
    assert all("did not change at all" in row.diagnosis.text for row in r.rows)


def test_nan_in_the_analytic_gradient():
    loss, grads, params = rowmajor_relu()

    def bad(p):
        g = grads(p)
        g["b2"] = g["b2"].copy()
        g["b2"][1] = np.nan
        return g

    row = gradcheck(loss, bad, params).rows[3]
    assert row.status == "wrong" and "contains nan or inf at 1 entries (first at (1,))" in row.diagnosis.text
