"""The diagnosis says what is wrong: kind, factor and its likely cause, which rows, where to look first."""

from __future__ import annotations

import numpy as np
import pytest

from gradnets import colmajor_tanh, rowmajor_relu
from shapecheck._graddiag import Dim, explain_factor, overall, reconciliations
from shapecheck import gradcheck


def row(report, name):
    return next(r for r in report.rows if r.name == name)


@pytest.mark.parametrize("mode", ["full", "auto"])
@pytest.mark.parametrize("name", ["W1", "b1", "W2", "b2"])
def test_sign(mode, name):
    loss, grads, params = rowmajor_relu(bug=("sign", name))
    r = gradcheck(loss, grads, params, mode=mode)
    x = row(r, name)
    assert (x.status, x.diagnosis.kind, x.diagnosis.factor) == ("wrong", "sign", -1.0)
    assert "opposite sign" in x.diagnosis.text
    assert [y.name for y in r.rows if y.status != "ok"] == [name] or all(
        y.status in ("ok", "kink") for y in r.rows if y.name != name)


@pytest.mark.parametrize("mode", ["full", "auto"])
def test_missing_one_over_m_names_the_batch_size(mode):
    loss, grads, params = colmajor_tanh(bug=("scale", "W1"))  # dW1 m = 32 times too large
    x = row(gradcheck(loss, grads, params, mode=mode), "W1")
    assert (x.status, x.diagnosis.kind) == ("wrong", "scale")
    assert x.diagnosis.factor == pytest.approx(32)
    assert "32 times too large" in x.diagnosis.text
    assert "X.shape[1]" in x.diagnosis.text and "missing 1/m" in x.diagnosis.text


def test_an_extra_one_over_m_is_too_small():
    loss, grads, params = colmajor_tanh()

    def g(p):
        out = grads(p)
        out["db2"] = out["db2"] / 32
        return out

    x = row(gradcheck(loss, g, params), "b2")
    assert x.diagnosis.kind == "scale" and x.diagnosis.factor == pytest.approx(1 / 32)
    assert "32 times too small" in x.diagnosis.text and "divided by m twice" in x.diagnosis.text


def test_factor_explanations():
    dims = [Dim("X.shape[0]", 64, True), Dim("W2.shape[1]", 10, False)]
    assert "a missing 1/m" in explain_factor(64.0, dims)
    assert "the 2 of a squared loss" in explain_factor(2.0, dims)
    assert "2 times too small" in explain_factor(0.5, dims)
    assert "W2.shape[1]" in explain_factor(10.0, dims) and "units or classes" in explain_factor(10.0, dims)
    assert "no dimension" in explain_factor(7.0, dims)
    assert explain_factor(3.7, dims).startswith("3.7 times too large")
    assert "opposite sign and 64 times" in explain_factor(-64.0, dims)


@pytest.mark.parametrize("mode", ["full", "auto"])
def test_square_transpose(mode):
    loss, grads, params = rowmajor_relu(h=4, c=4)  # W2 is 4 x 4

    def g(p):
        out = grads(p)
        out["W2"] = out["W2"].T
        return out

    x = row(gradcheck(loss, g, params, mode=mode), "W2")
    assert (x.status, x.diagnosis.kind) == ("wrong", "transpose")
    assert "grads['W2'].T matches" in x.diagnosis.text


def test_non_square_transpose_is_a_shape_row_with_kind_transpose():
    loss, grads, params = colmajor_tanh(bug=("transpose", "W1"))
    x = row(gradcheck(loss, grads, params), "W1")
    assert (x.status, x.diagnosis.kind, x.grad_shape) == ("shape", "transpose", (5, 4))
    assert "dW1.T has shape (4, 5) and matches" in x.diagnosis.text


@pytest.mark.parametrize("mode", ["full", "auto"])
def test_zero(mode):
    loss, grads, params = rowmajor_relu(bug=("zero", "W1"))
    x = row(gradcheck(loss, grads, params, mode=mode), "W1")
    assert (x.status, x.diagnosis.kind, x.diagnosis.factor) == ("wrong", "zero", 0.0)


def test_bias_not_summed_over_the_batch_finds_the_sum_numerically():
    loss, grads, params = colmajor_tanh()

    def g(p):
        out = grads(p)
        A1 = np.tanh(p["W1"] @ COLX + p["b1"])
        dZ1 = out["dA1"] * (1 - A1 ** 2)
        out["db1"] = dZ1  # (4, 32): the sum over the examples is missing
        return out

    global COLX
    COLX = np.random.default_rng(0).normal(size=(5, 32))  # colmajor_tanh(seed=0) draws X first
    x = row(gradcheck(loss, g, params), "b1")
    assert (x.status, x.diagnosis.kind, x.grad_shape) == ("shape", "shape", (4, 32))
    text = x.diagnosis.text
    assert "np.sum(db1, axis=1, keepdims=True) has shape (4, 1) and matches" in text
    assert "you forgot to sum over the batch" in text and "32 is X.shape[1]" in text


def test_right_values_in_the_wrong_shape():
    loss, grads, params = colmajor_tanh()

    def g(p):
        out = grads(p)
        out["db2"] = out["db2"].ravel()  # (3,) for a (3, 1) bias
        return out

    x = row(gradcheck(loss, g, params), "b2")
    assert x.status == "shape" and "db2.reshape(3, 1)" in x.diagnosis.text
    assert "only the shape is not" in x.diagnosis.text


def test_an_unreconcilable_shape():
    loss, grads, params = colmajor_tanh()
    x = row(gradcheck(loss, lambda p: dict(grads(p), db2=np.ones(7)), params), "b2")
    assert x.status == "shape" and "no transpose, sum, mean or reshape" in x.diagnosis.text


def test_wrong_only_in_some_rows():
    loss, grads, params = rowmajor_relu()

    def g(p):
        out = grads(p)
        out["W1"] = out["W1"].copy()
        out["W1"][2] *= -1
        return out

    x = row(gradcheck(loss, g, params, mode="full"), "W1")
    assert (x.status, x.diagnosis.kind) == ("wrong", "partial")
    assert "wrong only in row 2 of 6" in x.diagnosis.text
    assert "negative of the numeric" in x.diagnosis.text
    assert x.worst_index[0] == 2


def test_wrong_only_in_one_column():
    loss, grads, params = colmajor_tanh()

    def g(p):
        out = grads(p)
        out["dW1"] = out["dW1"].copy()
        out["dW1"][:, 3] = 0
        return out

    x = row(gradcheck(loss, g, params, mode="full"), "W1")
    assert x.diagnosis.kind == "partial" and "column 3 of 5" in x.diagnosis.text and "zero" in x.diagnosis.text


def test_activation_derivative_of_the_wrong_array_is_unknown_and_located():
    loss, grads, params = colmajor_tanh()

    def g(p):
        out = grads(p)
        Z1 = p["W1"] @ COLX + p["b1"]
        dZ1 = out["dA1"] * (1 - Z1 ** 2)  # 1 - tanh^2 taken of Z1 instead of A1
        out["dW1"], out["db1"] = dZ1 @ COLX.T, dZ1.sum(axis=1, keepdims=True)
        return out

    global COLX
    COLX = np.random.default_rng(0).normal(size=(5, 32))
    r = gradcheck(loss, g, params, mode="full")
    assert [(x.name, x.diagnosis.kind) for x in r.rows if x.status == "wrong"] == [("W1", "unknown"), ("b1", "unknown")]
    assert r.look_first == "b1"
    assert "The gradients after it (W2, b2) are right" in r.overall_text


def test_a_wrong_loss_sign_is_read_as_a_whole():
    loss, grads, params = rowmajor_relu()
    r = gradcheck(lambda p: -loss(p), grads, params)
    assert all(x.diagnosis.kind == "sign" for x in r.rows)
    assert r.overall_kind == "sign" and "disagree as a whole" in r.overall_text
    assert r.look_first == "b2"


def test_the_same_factor_everywhere_is_read_as_a_whole():
    loss, grads, params = rowmajor_relu()
    r = gradcheck(lambda p: loss(p) / 16, grads, params)
    assert r.overall_kind == "scale" and r.overall_factor == pytest.approx(16)
    assert "the same factor 16" in r.overall_text


def test_overall_reading_is_a_pure_function_of_the_rows():
    rows = [("W1", "ok", "ok", None), ("b1", "wrong", "scale", 8.0), ("W2", "shape", "shape", None),
            ("b2", "ok", "ok", None)]
    o = overall(rows)
    assert o.kind == "wrong" and o.look_first == "W2"
    assert "Wrong: b1, W2. Look first at W2" in o.text and "(b2) are right" in o.text
    assert overall([("a", "ok", "ok", None)]).kind == "ok"
    assert overall([("a", "wrong", "sign", -1.0)]).text.startswith("Only a is wrong")
    assert overall([("a", "wrong", "scale", 2.0), ("b", "wrong", "scale", 3.0)]).kind == "wrong"
    assert overall(rows, "the loss is random", "random").kind == "random"


def test_reconciliations_try_transpose_then_reductions_then_reshape():
    g = np.arange(12.0).reshape(3, 4)
    codes = [c for c, *_ in reconciliations(g, (4, 3), "dW")]
    assert codes[0] == "dW.T" and codes[-1] == "dW.reshape(4, 3)"
    codes = [c for c, *_ in reconciliations(g, (3, 1), "db")]
    assert codes == ["np.sum(db, axis=1, keepdims=True)", "np.mean(db, axis=1, keepdims=True)"]
