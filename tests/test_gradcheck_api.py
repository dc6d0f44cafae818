"""The public surface of the gradient check: calling forms, report data, modes and their cost, input errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gradnets import colmajor_tanh, quadratic, rowmajor_relu
from shapecheck import GradReport, gradcheck
from shapecheck._gradcheck import AUTO_BUDGET, AUTO_FULL_MAX
from shapecheck._gradtree import ParameterTypeError


def square(p):
    return float(np.sum(p["w"] ** 2))


def square_grad(p):
    return {"w": 2 * p["w"]}


W = {"w": np.array([1.0, -2.0, 0.5])}


def test_three_argument_form_passes_on_a_right_gradient():
    r = gradcheck(square, square_grad, W)
    assert isinstance(r, GradReport)
    assert r.passed and bool(r)
    assert [(row.name, row.status, row.diagnosis.kind) for row in r.rows] == [("w", "ok", "ok")]


def test_loss_and_grads_form_by_keyword_and_by_position():
    def both(p):
        return square(p), square_grad(p)

    assert gradcheck(both, params=W).passed
    assert gradcheck(both, W).passed


def test_precomputed_gradient_structure_is_accepted():
    assert gradcheck(square, {"w": 2 * W["w"]}, W).passed
    assert gradcheck(square, {"w": -2 * W["w"]}, W).rows[0].diagnosis.kind == "sign"


def test_bool_is_passed_so_a_bare_assert_cannot_pass_by_accident():
    assert not gradcheck(square, lambda p: {"w": -2 * p["w"]}, W)


def test_missing_params_is_a_clear_type_error():
    with pytest.raises(TypeError, match="needs the parameters"):
        gradcheck(square, square_grad)


def test_to_dict_is_plain_json_data():
    loss, grads, params = rowmajor_relu(bug=("scale", "b1"))
    d = gradcheck(loss, grads, params).to_dict()

    def walk(x):
        assert type(x) in (dict, list, str, int, float, bool, type(None)), type(x)
        if isinstance(x, dict):
            for k, v in x.items():
                assert type(k) is str
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, float):
            assert math.isfinite(x)

    walk(d)
    json.dumps(d, allow_nan=False)
    row = d["rows"][1]
    assert row["name"] == "b1" and row["status"] == "wrong"
    assert row["diagnosis"]["kind"] == "scale" and row["diagnosis"]["factor"] == pytest.approx(16)
    assert set(row) >= {"name", "shape", "grad_shape", "dtype", "checked", "total", "max_abs_error", "rel_error",
                        "worst_index", "analytic", "numeric", "status", "diagnosis"}
    assert d["passed"] is False and d["overall"]["look_first"] == "b1"


def test_rows_in_the_order_given_with_shapes_and_worst_index_in_the_parameter_shape():
    loss, grads, params = colmajor_tanh(bug=("sign", "W2"))
    r = gradcheck(loss, grads, params, mode="full")
    assert [row.name for row in r.rows] == ["W1", "b1", "W2", "b2"]
    w2 = r.rows[2]
    assert w2.shape == (3, 4) and w2.grad_shape == (3, 4) and w2.grad_name == "dW2"
    assert len(w2.worst_index) == 2 and w2.analytic == pytest.approx(-w2.numeric, rel=1e-6)
    assert w2.rel_error == pytest.approx(1.0)
    assert w2.max_abs_error == pytest.approx(2 * abs(w2.numeric), rel=1e-6)
    assert (w2.checked, w2.total, w2.mismatched) == (12, 12, 12)


def big_linear(n):
    c = np.linspace(-1, 1, n)
    return (lambda p: float(c @ p["x"] + 0.5 * p["x"] @ p["x"])), (lambda p: {"x": c + p["x"]}), {"x": np.cos(np.arange(n))}


@pytest.mark.parametrize("n", [1, AUTO_FULL_MAX, AUTO_FULL_MAX + 1, 5000])
def test_auto_stays_within_its_budget_per_tensor(n):
    loss, grads, params = big_linear(n)
    r = gradcheck(loss, grads, params)
    assert r.passed
    assert r.rows[0].evaluations <= AUTO_BUDGET
    assert r.rows[0].checked == (n if n <= AUTO_FULL_MAX else 4)


def test_auto_budget_holds_even_when_everything_disagrees():
    loss, grads, params = big_linear(3000)
    r = gradcheck(loss, lambda p: {"x": -grads(p)["x"]}, params)
    row = r.rows[0]
    assert row.status == "wrong" and row.diagnosis.kind == "sign"
    assert row.evaluations <= AUTO_BUDGET
    assert row.worst_index is not None  # still reported, from the sampled entries


def test_mode_costs_in_loss_evaluations():
    loss, grads, params = big_linear(40)
    # Two evaluations at the unperturbed parameters (the randomness check), then per tensor:
    assert gradcheck(loss, grads, params, mode="full").evaluations == 2 + 2 * 40
    assert gradcheck(loss, grads, params, mode="sample").evaluations == 2 + 2 * 10
    assert gradcheck(loss, grads, params, mode="sample:7").evaluations == 2 + 2 * 7
    r = gradcheck(loss, grads, params, mode="directions")
    assert r.evaluations == 2 + 2 * 8 and r.rows[0].directions == 8 and r.rows[0].checked == 0
    assert gradcheck(loss, grads, params, mode="directions:3").evaluations == 2 + 2 * 3


@pytest.mark.parametrize("mode", ["fast", "sample:0", "full:3", "directions:x"])
def test_unknown_modes_are_refused(mode):
    with pytest.raises(ValueError, match="mode="):
        gradcheck(square, square_grad, W, mode=mode)


@pytest.mark.parametrize("opt", [{"eps": 0}, {"rtol": -1}, {"atol": "x"}])
def test_bad_numeric_options_are_refused(opt):
    with pytest.raises(ValueError, match="must be a positive number"):
        gradcheck(square, square_grad, W, **opt)


def test_explicit_eps_rtol_atol_are_used():
    loss, grads = quadratic(np.eye(3), np.ones(3))
    p = {"x": np.array([0.3, -0.2, 1.0])}
    off = lambda q: {"x": grads(q)["x"] * (1 + 1e-4)}  # noqa: E731
    assert not gradcheck(loss, off, p).passed
    assert gradcheck(loss, off, p, rtol=1e-3).passed
    assert gradcheck(loss, off, p, eps=1e-4, rtol=1e-3, atol=1e-6).passed


def test_integer_parameters_are_refused_with_the_reason_and_the_fix():
    with pytest.raises(TypeError) as info:
        gradcheck(square, square_grad, {"w": np.array([1, 2, 3])})
    assert isinstance(info.value, ParameterTypeError)
    msg = str(info.value)
    assert "\n" not in msg and "finite differences need floats" in msg and "w.astype(float)" in msg


@pytest.mark.parametrize("value, word", [(3, "integer"), (True, "booleans"), ("relu", "str"),
                                         (np.array([1 + 2j]), "complex")])
def test_other_non_float_leaves_are_refused(value, word):
    with pytest.raises(ParameterTypeError, match=word):
        gradcheck(square, square_grad, {"w": np.ones(2), "extra": value})


def test_float_scalars_and_nested_structures_are_leaves_with_path_names():
    params = {"layers": [{"W": np.ones((2, 2)), "b": np.zeros(2)}], "scale": 1.5, "t": (np.ones(1),)}

    def loss(p):
        W, b = p["layers"][0]["W"], p["layers"][0]["b"]
        assert isinstance(p["scale"], float)  # a scalar stays a (numpy) float for the user's code
        return float(np.sum(W @ b + 1) * p["scale"] ** 2 + np.sum(p["t"][0] ** 3))

    def grads(p):
        W, b, s = p["layers"][0]["W"], p["layers"][0]["b"], p["scale"]
        return {"layers": [{"W": s ** 2 * np.outer(np.ones(2), b), "b": s ** 2 * W.sum(axis=0)}],
                "scale": 2 * s * np.sum(W @ b + 1), "t": (3 * p["t"][0] ** 2,)}

    r = gradcheck(loss, grads, params)
    assert [row.name for row in r.rows] == ["layers[0].W", "layers[0].b", "scale", "t[0]"]
    assert r.passed, str(r)


def test_deeplearning_ai_keys_and_extra_entries():
    loss, grads, params = colmajor_tanh()
    r = gradcheck(loss, grads, params)
    assert r.passed
    assert [row.grad_name for row in r.rows] == ["dW1", "db1", "dW2", "db2"]
    assert any("dA1" in n and "ignored" in n for n in r.notes)


def test_a_missing_gradient_is_a_shape_row_not_a_crash():
    loss, grads, params = rowmajor_relu()
    r = gradcheck(loss, lambda p: {k: v for k, v in grads(p).items() if k != "b2"}, params)
    row = r.rows[3]
    assert (row.status, row.diagnosis.kind, row.grad_shape) == ("shape", "shape", None)
    assert "grads has no entry for b2" in row.diagnosis.text
    assert not r.passed and all(x.status == "ok" for x in r.rows[:3])


@pytest.mark.parametrize("value", [2.0, np.float64(2.0), np.array(2.0), np.array([2.0]), np.array([[2.0]])])
def test_scalar_losses_in_any_wrapping(value):
    # value * |w|^2 / 2 has the gradient value * w = 2 w, whatever wraps the 2.
    assert gradcheck(lambda p: value * (np.sum(p["w"] ** 2) / 2.0), lambda p: {"w": 2 * p["w"]}, W).passed


def test_a_vector_loss_is_refused():
    with pytest.raises(TypeError, match="scalar loss.*shape \\(3,\\)"):
        gradcheck(lambda p: p["w"] ** 2, square_grad, W)


def test_combined_form_must_return_a_pair():
    with pytest.raises(TypeError, match="must return \\(loss, grads\\)"):
        gradcheck(lambda p: square(p), params=W)


def test_a_gradient_of_another_shape_that_updates_in_place_is_compared_as_the_parameter():
    """deeplearning.ai's `db = np.sum(dZ) / m` for a (1, 1) bias: a scalar, and correct."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 20))
    Y = (X[0:1] > 0).astype(float)
    params = {"W": rng.normal(size=(1, 3)) * 0.1, "b": np.zeros((1, 1))}

    def cost(p):
        A = 1 / (1 + np.exp(-(p["W"] @ X + p["b"])))
        return -np.mean(Y * np.log(A) + (1 - Y) * np.log(1 - A))

    def grads(p, db_shape=()):
        dZ = 1 / (1 + np.exp(-(p["W"] @ X + p["b"]))) - Y
        return {"dW": dZ @ X.T / 20, "db": (np.sum(dZ) / 20) * np.ones(db_shape)}

    report = gradcheck(cost, grads, params)
    assert report.passed
    row = next(r for r in report.rows if r.name == "b")
    assert row.status == "ok" and any("keeps b's shape" in n for n in row.notes)
    # (4,) against a (4, 1) bias would broadcast the update to (4, 4): still a shape error
    params4 = {"b": np.zeros((4, 1))}
    report = gradcheck(lambda p: float(np.sum(p["b"] ** 2)), lambda p: {"db": 2 * p["b"].ravel()}, params4)
    assert not report.passed and report.rows[0].status == "shape"
