"""gradcheck's inputs at the edges (issue 12: items 2, 17, 21, 27) and the report listeners."""

from __future__ import annotations

import collections
import tracemalloc
import warnings

import numpy as np
import pytest

import shapecheck._gradcheck as gc
from gradnets import rowmajor_relu
from shapecheck import assert_gradients_close, gradcheck
from shapecheck._gradcheck import GradInputError
from shapecheck._gradtree import ParameterTypeError


def squares(p):
    return float(np.sum(p["w"] ** 2))


def two_w(p):
    return {"w": 2 * p["w"]}


# -- ndarray subclasses, namedtuples ----------------------------------------------------------------

def test_a_matrix_parameter_is_refused_not_silently_made_an_ndarray():
    M = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ParameterTypeError, match=r"^M is a numpy.matrix \(its \* is a matrix product\): .*np.asarray\(M\)"):
        gradcheck(lambda p: float(np.sum(p["M"] ** 2)), lambda p: {"M": 2 * p["M"].T @ p["M"]}, {"M": M})


def test_a_masked_parameter_is_refused_not_evaluated_without_its_mask():
    w = np.ma.array([1.0, 1e6, 2.0], mask=[0, 1, 0])
    calls = []
    with pytest.raises(ParameterTypeError, match=r"^w is a masked array: .* would drop its mask; pass w.filled\(0\)"):
        gradcheck(lambda p: calls.append(1) or squares(p), two_w, {"w": w})
    assert calls == []  # refused before the loss ever ran
    assert w.mask.tolist() == [False, True, False]


def test_namedtuple_parameters_reach_the_loss_as_namedtuples():
    P = collections.namedtuple("P", "W b")
    seen = []

    def loss(p):
        seen.append(type(p))
        return float(np.sum(p.W ** 2) + np.sum(np.sin(p.b)))

    r = gradcheck(loss, lambda p: P(2 * p.W, np.cos(p.b)), P(np.ones(3), np.zeros(2)))
    assert r.passed and [row.name for row in r.rows] == ["[0]", "[1]"]
    assert set(seen) == {P}


# -- item 21 ----------------------------------------------------------------------------------------

class Config(dict):
    __getattr__ = dict.__getitem__  # cfg.shape -> KeyError, not AttributeError


def test_user_objects_in_the_losss_globals_are_never_poked():
    cfg = Config(lam=0.5)
    namespace = {"cfg": cfg, "np": np}
    exec("def loss(p):\n    return float(cfg.lam * np.sum(p['w'] ** 2))\n"
         "class Net:\n    def __getattr__(self, name):\n        raise RuntimeError('poked ' + name)\n"
         "    def __call__(self, p):\n        return loss(p)\nnet = Net()\n", namespace)
    assert gradcheck(namespace["loss"], lambda p: {"w": p["w"]}, {"w": np.ones(3)}).passed
    assert gradcheck(namespace["net"], lambda p: {"w": p["w"]}, {"w": np.ones(3)}).passed


@pytest.mark.parametrize("params", [[], {}, ()])
def test_no_parameters_is_one_clear_error(params):
    with pytest.raises(GradInputError, match=r"^gradcheck: params holds no parameters"):
        gradcheck(squares, two_w, params)


@pytest.mark.parametrize("dtype, eps", [(np.float64, 1e-20), (np.float64, 1e-17), (np.float32, 1e-8)])
def test_a_step_that_rounds_to_zero_is_refused(dtype, eps):
    with pytest.raises(GradInputError, match=rf"eps={eps:g} is too small for w \({np.dtype(dtype).name}\): "
                                             r"the step rounds to zero"):
        gradcheck(squares, two_w, {"w": np.ones(3, dtype)}, eps=eps)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 1e-300])
@pytest.mark.parametrize("n", [3, 50])
def test_extreme_loss_scales_neither_warn_nor_blame_the_loss(scale, n):
    w = np.linspace(-1, 1, n) + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning of shapecheck's own would raise here
        right = gradcheck(lambda p: scale * squares(p), lambda p: {"w": scale * 2 * p["w"]}, {"w": w})
        wrong = gradcheck(lambda p: scale * squares(p), lambda p: {"w": 0.9 * scale * 2 * p["w"]}, {"w": w})
    assert right.passed, str(right)
    row = wrong.rows[0]
    assert (row.status, row.diagnosis.kind, row.diagnosis.factor) == ("wrong", "scale", 0.9), str(wrong)
    assert row.rel_error == pytest.approx(0.1 / 1.9, rel=1e-6)


def test_the_users_numpy_error_settings_still_apply_inside_the_loss():
    def loss(p):
        return float(np.sum(np.log(p["w"] - p["w"])))  # log(0): raises under the user's settings

    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        gradcheck(loss, two_w, {"w": np.ones(2)})


def test_numpy_floats_are_accepted_as_tolerances():
    r = gradcheck(squares, two_w, {"w": np.ones(3)}, rtol=np.float32(1e-4), atol=np.float64(0.0), eps=np.float64(1e-6))
    assert r.passed


@pytest.mark.parametrize("bad", [True, 1e-3 + 0j, float("nan"), -1e-3, "1e-3"])
def test_odd_tolerances_are_refused(bad):
    with pytest.raises(ValueError, match=r"^gradcheck: rtol must be a positive number"):
        gradcheck(squares, two_w, {"w": np.ones(3)}, rtol=bad)


def test_complex_gradients_are_refused_not_cast():
    with pytest.raises(GradInputError, match=r"^the gradient for w is complex: .*imaginary part"):
        gradcheck(squares, lambda p: {"w": 2 * p["w"] + 1j}, {"w": np.ones(3)})


@pytest.mark.parametrize("loss, why", [
    (lambda p: p["w"] ** 2, r"^loss must return a scalar loss, got an array of shape \(3,\)"),
    (lambda p: complex(1, 2), r"^loss returned a complex number"),
    (lambda p: np.array(1 + 0j), r"^loss must return a real scalar loss, got dtype complex128"),
])
def test_bad_losses_are_typed_one_line_errors(loss, why):
    with pytest.raises(GradInputError, match=why) as info:
        gradcheck(loss, two_w, {"w": np.ones(3)})
    assert "\n" not in str(info.value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


# -- item 27: memory ---------------------------------------------------------------------------------

@pytest.mark.parametrize("factor", [1.0, 0.9])
@pytest.mark.parametrize("mode", ["auto", "directions"])
def test_peak_memory_stays_a_few_times_the_parameter(mode, factor):
    # Directions are streamed, one at a time; the diagnosis of a wrong one allocates no copies of g.  The
    # target (at most 4x, the loss's and grads' own arrays included) is measured by bench_gradcheck.py;
    # this guards against a return to materialising every direction (17x to 27x before), with room for
    # what the interpreter and the test run allocate around it.
    W = np.random.default_rng(0).standard_normal((400, 250))  # 800 kB

    def loss(p):
        return float(np.vdot(p["W"], p["W"])) * 0.5

    def grads(p):
        return {"W": p["W"] * factor}

    gradcheck(loss, grads, {"W": W}, mode="directions:2")  # imports and first-call caches
    tracemalloc.start()
    try:
        r = gradcheck(loss, grads, {"W": W}, mode=mode)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.passed == (factor == 1.0)
    assert peak <= 6 * W.nbytes, f"{peak / W.nbytes:.1f}x"


# -- listeners ---------------------------------------------------------------------------------------

def test_listeners_see_every_check_and_can_never_break_it(monkeypatch):
    seen = []

    def broken(report):
        raise RuntimeError("an observer's bug")

    monkeypatch.setattr(gc, "_LISTENERS", [broken, seen.append, broken])
    loss, grads, params = rowmajor_relu()
    ok = gradcheck(loss, grads, params)
    assert_gradients_close(loss, grads, params)
    with pytest.raises(AssertionError):
        assert_gradients_close(loss, lambda p: {k: -v for k, v in grads(p).items()}, params)
    assert [r.passed for r in seen] == [True, True, False]
    assert seen[0] is ok and seen[2].overall_kind == "sign"
    with pytest.raises(GradInputError):
        gradcheck(lambda p: p["W1"], grads, params)  # nothing finished: nothing notified
    assert len(seen) == 3
