"""The user's parameters (and the rest of their state) are left exactly as they were, whatever happens."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from gradnets import rowmajor_relu
from shapecheck import gradcheck


def snapshot(params):
    return {k: (v.tobytes(), v.dtype, v.shape, v.strides) for k, v in params.items()}


def raising_after(loss, n, exc):
    calls = [0]

    def wrapped(p):
        calls[0] += 1
        if calls[0] == n:
            raise exc
        return loss(p)

    return wrapped


@pytest.mark.parametrize("mode", ["auto", "full", "directions"])
def test_parameters_bit_identical_after_a_normal_check(mode):
    loss, grads, params = rowmajor_relu(bug=("sign", "W2"))
    ids = {k: id(v) for k, v in params.items()}
    before = snapshot(params)
    gradcheck(loss, grads, params, mode=mode)
    assert snapshot(params) == before
    assert {k: id(v) for k, v in params.items()} == ids


@pytest.mark.parametrize("at", [1, 3, 9, 40])
def test_parameters_bit_identical_when_the_loss_raises_midway(at):
    loss, grads, params = rowmajor_relu()
    before = snapshot(params)
    with pytest.raises(ZeroDivisionError) as info:
        gradcheck(raising_after(loss, at, ZeroDivisionError("boom")), grads, params, mode="full")
    assert snapshot(params) == before
    # The error is the user's own, with a note saying where the check was.
    notes = info.value.__notes__
    assert len(notes) == 1 and notes[0].startswith("shapecheck.gradcheck: raised by loss")
    assert f"loss evaluation {at}" in notes[0] and "parameters were not modified" in notes[0]
    if at > 2:
        assert "was perturbed by" in notes[0]
    else:
        assert "nothing perturbed" in notes[0]


def test_the_note_names_the_perturbed_entry():
    loss, grads, params = rowmajor_relu()
    with pytest.raises(ZeroDivisionError) as info:
        gradcheck(raising_after(loss, 5, ZeroDivisionError()), grads, params, mode="full")
    # Evaluations 3 and 4 perturbed W1[0, 0]; the fifth is W1[0, 1] + h.
    assert "W1[0, 1] was perturbed by +" in info.value.__notes__[0]


def test_parameters_bit_identical_on_keyboard_interrupt():
    loss, grads, params = rowmajor_relu()
    before = snapshot(params)
    with pytest.raises(KeyboardInterrupt):
        gradcheck(raising_after(loss, 11, KeyboardInterrupt()), grads, params, mode="full")
    assert snapshot(params) == before


def test_parameters_bit_identical_when_grads_raises():
    loss, _, params = rowmajor_relu()
    before = snapshot(params)

    def grads(p):
        raise IndexError("bad index")

    with pytest.raises(IndexError) as info:
        gradcheck(loss, grads, params)
    assert "raised by grads" in info.value.__notes__[0]
    assert snapshot(params) == before


def test_a_loss_that_writes_into_params_cannot_reach_the_users_arrays():
    loss, grads, params = rowmajor_relu()
    before = snapshot(params)

    def vandal(p):
        p["W1"] += 1.0  # an in-place "update" inside the loss
        return loss(p)

    with pytest.raises(ValueError, match="modified W1 in place"):
        gradcheck(vandal, grads, params)
    assert snapshot(params) == before


def test_global_random_generators_are_restored():
    loss, grads, params = rowmajor_relu()

    def noisy(p):  # a loss drawing from both global generators (it is random: that is reported)
        return loss(p) + 1e-3 * np.random.rand() + 1e-3 * random.random()

    np.random.seed(123)
    random.seed(123)
    expected = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    r = gradcheck(noisy, grads, params)
    assert r.overall_kind == "random"
    assert (np.random.rand(), random.random()) == expected


def test_gradient_buffers_reused_by_the_user_are_copied():
    # CS231n-style layers often keep and overwrite their gradient arrays on every call.
    loss, grads, params = rowmajor_relu()
    buffers = {k: np.zeros_like(v) for k, v in params.items()}

    def both(p):
        for k, v in grads(p).items():
            buffers[k][...] = v
        return loss(p), buffers

    assert gradcheck(both, params=params, mode="full").passed


def test_fortran_ordered_and_non_contiguous_parameters():
    loss, grads, params = rowmajor_relu()
    params = dict(params, W1=np.asfortranarray(params["W1"]), W2=params["W2"].T.copy().T)
    before = snapshot(params)
    assert gradcheck(loss, grads, params, mode="full").passed
    assert snapshot(params) == before


def test_importing_the_gradient_check_does_not_import_pandas():
    code = "import sys, shapecheck._gradcheck; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
