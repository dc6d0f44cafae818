"""gradcheck_from_namespace: what the CLI's --grad LOSS,GRADS,PARAMS calls with a script's globals."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from shapecheck._errors import UsageError
from shapecheck._gradcheck import gradcheck_from_namespace

FIX = Path(__file__).parent.parent / "fixtures" / "grad"


@pytest.fixture
def ns():
    return runpy.run_path(str(FIX / "rowmajor_bug_sign.py"), run_name="__shapecheck_fixture__")


def test_three_names(ns):
    r = gradcheck_from_namespace(ns, "loss,grads,params")
    assert [x.name for x in r.rows if x.status == "wrong"] == ["W2"]


def test_two_names_and_options():
    ns = runpy.run_path(str(FIX / "layers_cs231n.py"), run_name="__shapecheck_fixture__")
    r = gradcheck_from_namespace(ns, " loss_and_grads , params ", mode="full")
    assert r.passed and r.mode == "full"


def test_dotted_names():
    class Model:
        def __init__(self):
            self.params = {"w": np.ones(3)}

        def loss(self, p):
            return float(np.sum(p["w"] ** 2))

        def grads(self, p):
            return {"w": 2 * p["w"]}

    assert gradcheck_from_namespace({"model": Model()}, "model.loss,model.grads,model.params").passed


def one_line_usage_error(ns, spec):
    with pytest.raises(UsageError) as info:
        gradcheck_from_namespace(ns, spec)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("--grad")
    return msg


def test_an_undefined_name_is_named_with_the_script_and_a_suggestion(ns):
    msg = one_line_usage_error(ns, "lossfn,grads,params")
    assert "'lossfn' is not defined in" in msg and "rowmajor_bug_sign.py" in msg and "did you mean 'loss'" in msg


def test_a_name_that_is_not_callable(ns):
    assert "'X' is not callable (it is a ndarray)" in one_line_usage_error(ns, "X,grads,params")
    assert "GRADS must be a function" in one_line_usage_error(ns, "loss,Y,params")


def test_params_that_are_not_a_structure(ns):
    assert "'loss' is a function, not a parameter structure" in one_line_usage_error(ns, "loss,grads,loss")
    assert "'m' is not a parameter structure" in one_line_usage_error(ns, "loss,grads,m")
    ns["iparams"] = {"W": np.ones((2, 2), dtype=int)}
    msg = one_line_usage_error(ns, "loss,grads,iparams")
    assert "holds integers" in msg and "astype(float)" in msg


@pytest.mark.parametrize("spec", ["loss", "a,b,c,d", "loss,,params"])
def test_a_malformed_spec(ns, spec):
    assert "expects LOSS,GRADS,PARAMS or LOSS_AND_GRADS,PARAMS" in one_line_usage_error(ns, spec)


def test_an_error_inside_the_users_loss_propagates_with_a_note(ns):
    def loss(p):
        raise RuntimeError("the user's own bug")

    ns["broken"] = loss
    with pytest.raises(RuntimeError, match="the user's own bug") as info:
        gradcheck_from_namespace(ns, "broken,grads,params")
    assert "raised by loss at the parameters given" in info.value.__notes__[0]
