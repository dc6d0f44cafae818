"""`python -m shapecheck --grad LOSS,GRADS,PARAMS SCRIPT`: the gradient check in the same report."""

from __future__ import annotations

import re

import pytest

from conftest import FIXTURES, REPO, shapecheck

GRAD = FIXTURES / "grad"


def rel(name: str) -> str:
    return str((GRAD / name).relative_to(REPO))


def test_wrong_gradient_is_diagnosed_in_the_json_report(tmp_path):
    run = shapecheck("--grad", "compute_cost,backward,parameters", rel("colmajor_bug_missing_1_over_m.py"),
                     json_report=True, tmp=tmp_path)
    assert run.status == 1  # the check the user asked for failed, as a test would
    grad = run.report["gradcheck"]
    assert grad["passed"] is False
    rows = {r["name"]: r for r in grad["rows"]}
    assert [n for n, r in rows.items() if r["status"] == "wrong"] == ["b1"]
    assert rows["b1"]["diagnosis"]["kind"] == "scale"
    assert rows["b1"]["diagnosis"]["factor"] == 32.0
    assert "missing 1/m" in rows["b1"]["diagnosis"]["text"]


def test_fail_on_counts_a_failed_gradient_check():
    script = rel("colmajor_bug_missing_1_over_m.py")
    assert shapecheck("--fail-on", "warning", "--grad", "compute_cost,backward,parameters", script).status == 1
    assert shapecheck("--fail-on", "warning", "--grad", "compute_cost,backward,parameters",
                      rel("colmajor_dlai.py")).status == 0


def test_text_report_has_the_gradient_table():
    run = shapecheck("--grad", "compute_cost,backward,parameters", rel("colmajor_dlai.py"))
    report = run.stderr[run.stderr.index("shapecheck: fixtures/grad/colmajor_dlai.py"):]
    assert "\nGradient check\ngradient check passed" in report
    assert re.search(r"^W1 +\(4, 5\) +\(4, 5\) +float64 +ok", report, re.M)


def test_one_function_form():
    lines = (GRAD / "layers_cs231n.py").read_text().splitlines()
    spec = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Grad:"))
    assert spec.count(",") == 1  # LOSS_AND_GRADS,PARAMS
    run = shapecheck("--grad", spec, rel("layers_cs231n.py"))
    assert "gradient check passed" in run.stderr


def test_bad_names_are_one_line_usage_errors():
    run = shapecheck("--grad", "nope,backward,parameters", rel("colmajor_dlai.py"))
    assert run.status == 2
    assert run.stderr.splitlines()[-1] == ("shapecheck: error: --grad: 'nope' is not defined in "
                                           "fixtures/grad/colmajor_dlai.py")
    run = shapecheck("--grad", "compute_cost,parameters,backward", rel("colmajor_dlai.py"))
    assert run.status == 2
    assert re.fullmatch(r"shapecheck: error: --grad: 'parameters' is not callable .*",
                        run.stderr.splitlines()[-1])


def test_no_check_after_a_crash(tmp_path):
    script = tmp_path / "crashes.py"
    script.write_text("import numpy as np\nW = np.ones((2, 3))\ndef loss(p):\n    return 0.0\n"
                      "raise RuntimeError('boom')\n")
    run = shapecheck("--grad", "loss,loss,W", str(script), json_report=True, tmp=tmp_path)
    assert run.status == 1
    assert run.report["gradcheck"] is None
    assert "shapecheck: --grad: the gradient check did not run, because the script crashed" in run.stderr


def test_exit_status_follows_the_gradient_check():
    assert shapecheck("--grad", "compute_cost,backward,parameters", rel("colmajor_bug_missing_1_over_m.py")).status == 1
    assert shapecheck("--grad", "compute_cost,backward,parameters", rel("colmajor_dlai.py")).status == 0


def test_a_script_that_failed_keeps_its_own_status(tmp_path):
    script = tmp_path / "exits.py"
    script.write_text("import sys\nimport numpy as np\nW = np.ones(3)\n"
                      "def loss(p):\n    return float(np.sum(p ** 2))\n"
                      "def grads(p):\n    return -2 * p\n"
                      "sys.exit(3)\n")
    run = shapecheck("--grad", "loss,grads,W", str(script), json_report=True, tmp=tmp_path)
    assert run.status == 3
    assert run.report["gradcheck"]["passed"] is False


SCRIPT = """import numpy as np
params = {{"w": np.ones(3)}}
calls = [0]
def loss(p):
{body}
def grads(p):
    return {{"w": 2 * p["w"]}}
a = np.ones((3, 1)) + np.ones(3)
"""


@pytest.mark.parametrize("body, line", [
    ("    return p['w'] ** 2",
     "shapecheck: --grad: loss must return a scalar loss, got an array of shape (3,): "
     "reduce it over the batch (np.mean or np.sum)"),
    ("    return complex(np.sum(p['w'] ** 2))",
     "shapecheck: --grad: loss returned a complex number ((3+0j)); it must return a real loss"),
    ("    p['w'][0] = 5.0\n    return float(np.sum(p['w'] ** 2))",
     "shapecheck: --grad: loss or grads modified w in place; finite differences need functions that "
     "leave the parameters alone"),
    ("    calls[0] += 1\n    if calls[0] > 3:\n        raise ValueError('boom')\n    return float(np.sum(p['w'] ** 2))",
     "shapecheck: --grad: raised by loss while w[0] was perturbed by -6.06e-06 (loss evaluation 4): "
     "ValueError: boom"),
])
def test_a_loss_that_cannot_be_checked_is_one_line_and_the_report_is_kept(tmp_path, body, line):
    script = tmp_path / "net.py"
    script.write_text(SCRIPT.format(body=body))
    run = shapecheck("--grad", "loss,grads,params", str(script), json_report=True, tmp=tmp_path)
    assert run.status == 1
    assert line in run.stderr.splitlines()
    assert "Traceback" not in run.stderr
    assert run.report["gradcheck"] is None
    assert [f["code"] for f in run.report["findings"]] == ["SC101"]  # the findings are still written
