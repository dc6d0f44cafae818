"""From a wrong gradient to its line, its backward chain and a verified fix (issue 9).

Fixtures state what the report must say in their docstrings: ``Line: <row> <n>`` (the statement that
produced the gradient returned for that row) and ``Fix: <row> <text>`` (the edited line, verified).
"""

from __future__ import annotations

import ast
import hashlib
import json
import linecache
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

import shapecheck
from conftest import FIXTURES, REPO, shapecheck as run_cli
from shapecheck._gradcheck import gradcheck_from_namespace

GRAD = FIXTURES / "grad"
VERIFIED = "fix (verified: the gradient check passes with it): "


def claims(path: Path) -> tuple[str, dict, dict]:
    spec, lines, fixes, _, _ = all_claims(path)
    return spec, lines, fixes


def all_claims(path: Path) -> tuple[str, dict, dict, dict, dict]:
    """(spec, row -> line, row -> fix text, row -> chain lines, row -> mistake line) from the docstring."""
    doc = ast.get_docstring(ast.parse(path.read_text()))
    spec = next(line.split(":", 1)[1].strip() for line in doc.splitlines() if line.startswith("Grad:"))
    lines, fixes, chains, mistakes = {}, {}, {}, {}
    for line in doc.splitlines():
        if line.startswith("Line: "):
            name, n = line[6:].rsplit(" ", 1)
            lines[name] = int(n)
        elif line.startswith("Fix: "):
            name, text = line[5:].split(" ", 1)
            fixes[name] = text
        elif line.startswith("Chain: "):
            name, *ns = line[7:].split()
            chains[name] = [int(n) for n in ns]
        elif line.startswith("Mistake: "):
            name, n = line[9:].rsplit(" ", 1)
            mistakes[name] = int(n)
    return spec, lines, fixes, chains, mistakes


CLAIMED = [p for p in sorted(GRAD.glob("*.py")) if claims(p)[1]]


def check(path: Path, **options):
    namespace = runpy.run_path(str(path), run_name="__shapecheck_fixture__")
    spec = claims(path)[0]
    return gradcheck_from_namespace(namespace, spec, **options), namespace


def test_the_three_styles_have_claims():
    names = {p.stem for p in CLAIMED}
    # dict-returning backward, tuple-returning backward, layer objects (with caches, and nnfs self.dW)
    assert {"colmajor_bug_missing_1_over_m", "tuple_bug_sigmoid_derivative", "layers_bug_transposed",
            "layers_nnfs_bug_bias_axis", "lists_bug_bias_not_summed"} <= names


@pytest.mark.parametrize("path", CLAIMED, ids=[p.stem for p in CLAIMED])
def test_line_and_verified_fix(path):
    report, _ = check(path)
    _, lines, fixes = claims(path)
    rows = {r.name: r for r in report.rows}
    text = str(report)
    for name, line in lines.items():
        row = rows[name]
        assert row.location is not None and row.location.line == line, f"{name}:\n{text}"
        assert f"produced by `{row.location.statement}` at {row.location.path}:{line}" in text
        assert row.fix is not None and row.fix.after == fixes[name], f"{name}:\n{text}"
        assert f"{VERIFIED}`{fixes[name]}` at " in text
    for name, line in all_claims(path)[4].items():
        assert rows[name].mistake is not None and rows[name].mistake.line == line, f"{name}:\n{text}"
        assert f"the mistake is at line {line}: `" in text
    for name, steps in all_claims(path)[3].items():
        assert [s.line for s in rows[name].chain if not s.right] == steps, f"{name}:\n{text}"
    for row in report.rows:  # a row that checked ok is never given a location, a mistake or a fix
        if row.status in ("ok", "kink"):
            assert row.location is None and row.fix is None and not row.chain and row.mistake is None


@pytest.mark.parametrize("path", CLAIMED, ids=[p.stem for p in CLAIMED])
def test_every_fix_shown_passes_when_applied_to_a_copy_of_the_file(path, tmp_path):
    report, _ = check(path)
    fixes = {r.fix for r in report.rows if r.fix is not None}
    assert fixes
    for fix in fixes:
        lines = path.read_text().splitlines(keepends=True)
        old = lines[fix.line - 1]
        assert fix.before in old
        lines[fix.line - 1] = old.replace(fix.before, fix.after, 1)
        edited = tmp_path / f"{path.stem}_fixed_{fix.line}.py"
        edited.write_text("".join(lines))
        fixed, _ = check(edited, mode="full")
        assert all(fixed.rows[i].status in ("ok", "kink") for i, r in enumerate(report.rows) if r.name in fix.rows), \
            str(fixed)


def test_chain_stops_at_the_gradient_that_checked_ok():
    report, _ = check(GRAD / "colmajor_bug_activation_derivative.py")
    w1 = next(r for r in report.rows if r.name == "W1")
    wrong = [(s.line, s.name) for s in w1.chain if not s.right]
    right = [(s.line, s.name, s.feeds) for s in w1.chain if s.right]
    assert wrong == [(46, "dA1"), (47, "dZ1"), (48, "dW1")]
    assert right == [(43, "dZ2", "W2")]
    text = str(report)
    assert ("backward chain: line 46 `dA1 = parameters[\"W2\"].T @ dZ2` -> line 47 "
            "`dZ1 = dA1 * (1 - np.power(cache[\"Z1\"], 2))` -> line 48 `dW1 = (1 / m) * dZ1 @ X.T`; it starts from "
            "dZ2 (line 43), which also feeds W2's gradient (checked ok)") in text
    assert ("W2 and b2 are right, W1 and b1 are wrong: the mistake is between line 43 (dZ2, right) and line 47 "
            "(dZ1).") in report.overall_text
    assert f"{VERIFIED}`dZ1 = dA1 * (1 - np.power(A1, 2))` at fixtures/grad/colmajor_bug_activation_derivative.py:47, " \
           "instead of `dZ1 = dA1 * (1 - np.power(cache[\"Z1\"], 2))` (it fixes b1 too)" in text


def test_no_mistake_line_when_the_loss_and_the_first_backward_step_both_explain_it():
    """The loss lacks its minus: negating the loss and swapping `probs - Y` both verify. The check cannot
    tell which one is the slip, so no line is pinned (both fixes are shown)."""
    report, _ = check(GRAD / "rowmajor_bug_loss_sign.py")
    assert not report.passed and all(r.fix is not None and r.fix.alternative is not None for r in report.rows)
    assert all(r.mistake is None for r in report.rows)
    assert "the mistake is at line" not in str(report) and "The mistake is at line" not in str(report)


def test_every_gradient_off_by_one_sign_points_at_the_loss_and_the_first_backward_step():
    report, _ = check(GRAD / "rowmajor_bug_loss_sign.py")
    assert report.overall_kind == "sign"
    assert ("The loss is computed by `return np.mean(np.log(forward(p)[2][np.arange(m), y]))` at "
            "fixtures/grad/rowmajor_bug_loss_sign.py:35 and the first backward step, which every gradient is "
            "computed from, is `dz2 = (probs - Y) / m` at fixtures/grad/rowmajor_bug_loss_sign.py:40.") \
        in report.overall_text
    fix = report.rows[0].fix
    assert (fix.line, fix.after) == (40, "dz2 = (Y - probs) / m")
    assert fix.alternative is not None and fix.alternative.at_loss
    assert (fix.alternative.line, fix.alternative.after) == (
        35, "return -np.mean(np.log(forward(p)[2][np.arange(m), y]))")
    assert "or, if the loss is what is wrong (verified too; the check cannot tell which one you meant): " \
           "`return -np.mean(np.log(forward(p)[2][np.arange(m), y]))` at fixtures/grad/rowmajor_bug_loss_sign.py:35" \
           in str(report)


def write(tmp_path: Path, source: str) -> dict:
    path = tmp_path / "net.py"
    path.write_text(source)
    return runpy.run_path(str(path))


NET = '''
import numpy as np
rng = np.random.default_rng(0)
X = rng.normal(size=(10, 3))
Y = rng.normal(size=(10, 2))
params = {"W1": rng.normal(size=(3, 4)), "W2": rng.normal(size=(4, 2))}


def loss(p):
    h = np.tanh(X @ p["W1"])
    return 0.5 * np.sum((h @ p["W2"] - Y) ** 2)


def grads(p):
    h = np.tanh(X @ p["W1"])
    d = h @ p["W2"] - Y
    dW2 = h.T @ d
    dh = d @ p["W2"].T
    dW1 = X.T @ %s
    return {"W1": dW1, "W2": dW2}
'''


def test_no_fix_is_shown_when_no_edit_verifies(tmp_path):
    # An extra `+ 0.1`: no one-line edit of the kinds tried takes it out.
    ns = write(tmp_path, NET % "(dh * (1 - h ** 2) + 0.1)")
    report = shapecheck.gradcheck(ns["loss"], ns["grads"], ns["params"])
    w1 = report.rows[0]
    assert w1.status == "wrong" and w1.fix is None and w1.fix_tried > 0
    assert w1.location.line == 19 and w1.location.statement == "dW1 = X.T @ (dh * (1 - h ** 2) + 0.1)"
    assert "no fix verified: " in str(report) and VERIFIED not in str(report)
    assert f"verifying fixes used {report.source_evaluations} more loss evaluations" in str(report)


def test_a_derivative_left_out_is_found_where_the_value_is_made(tmp_path):
    # The tanh derivative is left out: the value of `dh` times `(1 - h ** 2)` is the only edit of the kind that
    # verifies (dW1's own value has another shape than any activation), so line 18 is pinned.
    ns = write(tmp_path, NET % "dh")
    report = shapecheck.gradcheck(ns["loss"], ns["grads"], ns["params"])
    w1 = report.rows[0]
    assert w1.status == "wrong" and w1.fix.after == 'dh = d @ p["W2"].T * (1 - h ** 2)' and w1.fix.line == 18
    assert w1.mistake.line == 18 and w1.mistake.why == "derivative"
    assert ("the mistake is at line 18: `dh = d @ p[\"W2\"].T` (a derivative left out: of the statements its "
            "gradient is computed from, only this one, multiplied by an activation's derivative, makes the check "
            "pass)") in str(report)


def test_right_network_is_not_traced(tmp_path):
    ns = write(tmp_path, NET % "(dh * (1 - h ** 2))")
    report = shapecheck.gradcheck(ns["loss"], ns["grads"], ns["params"])
    assert report.passed and report.source_evaluations == 0
    assert all(r.location is None and r.fix is None and r.fix_tried == 0 for r in report.rows)
    assert "verifying fixes" not in str(report)


def test_a_gradient_that_is_an_input_gets_no_location(tmp_path):
    # The array returned for W1 was not computed by any statement of the call (a global): nothing is claimed.
    ns = write(tmp_path, (NET % "dh").replace('return {"W1": dW1', 'return {"W1": G').replace(
        "params = {", "G = rng.normal(size=(3, 4))\nparams = {"))
    report = shapecheck.gradcheck(ns["loss"], ns["grads"], ns["params"])
    w1 = report.rows[0]
    assert w1.status == "wrong" and w1.location is None and w1.fix is None and not w1.chain
    assert "produced by" not in str(report)


def test_a_file_edited_after_import_gets_no_location(tmp_path):
    # The lines on disk are no longer the code that runs: naming them would name another statement.
    ns = write(tmp_path, NET % "dh")
    path = tmp_path / "net.py"
    path.write_text(path.read_text().replace("dW1 = X.T @ dh", "dW1 = X.T @ (dh * 1.0)"))
    linecache.checkcache(str(path))
    report = shapecheck.gradcheck(ns["loss"], ns["grads"], ns["params"])
    assert report.rows[0].status == "wrong"
    assert all(r.location is None and r.fix is None for r in report.rows)


def test_user_parameters_functions_and_files_stay_untouched(tmp_path):
    path = GRAD / "colmajor_bug_activation_derivative.py"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    report, ns = None, runpy.run_path(str(path), run_name="__shapecheck_fixture__")
    before = {k: v.tobytes() for k, v in ns["parameters"].items()}
    code = ns["backward"].__code__
    report = gradcheck_from_namespace(ns, "compute_cost,backward,parameters")
    assert report.rows[0].fix is not None
    assert {k: v.tobytes() for k, v in ns["parameters"].items()} == before
    assert ns["backward"].__code__ is code
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    run = run_cli("--grad", "compute_cost,backward,parameters", str(path.relative_to(REPO)))
    assert run.status == 1 and VERIFIED in run.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_json_markdown_html_and_assert_carry_location_chain_and_fix():
    report, ns = check(GRAD / "colmajor_bug_missing_1_over_m.py")
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    b1 = next(r for r in data["rows"] if r["name"] == "b1")
    assert b1["location"] == {"path": "fixtures/grad/colmajor_bug_missing_1_over_m.py", "line": 46,
                              "statement": "db1 = np.sum(dZ1, axis=1, keepdims=True)", "name": "db1"}
    assert [(s["line"], s["right"]) for s in b1["chain"]] == [(46, False), (44, True)]
    assert b1["fix"]["after"] == "db1 = np.sum(dZ1, axis=1, keepdims=True) / m" and b1["fix"]["verified"] is True
    assert b1["mistake"] == {"path": "fixtures/grad/colmajor_bug_missing_1_over_m.py", "line": 46,
                             "statement": "db1 = np.sum(dZ1, axis=1, keepdims=True)", "name": "db1", "why": "fix"}
    assert all(r["mistake"] is None for r in data["rows"] if r["name"] != "b1")
    pinned = "the mistake is at line 46: `db1 = np.sum(dZ1, axis=1, keepdims=True)`"
    assert f"  - {pinned}" in report.to_markdown() and f"    {pinned}" in str(report)
    assert pinned.replace("`", "&#x60;") in report._repr_html_() or pinned in report._repr_html_()
    assert data["source_evaluations"] == report.source_evaluations > 0
    line = f"{VERIFIED}`db1 = np.sum(dZ1, axis=1, keepdims=True) / m` at fixtures/grad/colmajor_bug_missing_1_over_m.py:46"
    assert f"  - {line}" in report.to_markdown()
    assert line.replace("`", "&#x60;") in report._repr_html_() or line in report._repr_html_()
    with pytest.raises(AssertionError) as info:
        shapecheck.assert_gradients_close(ns["compute_cost"], ns["backward"], ns["parameters"])
    assert line in str(info.value)


# The "Done when", dict-returning style: (fixture, spec, producing line, backward chain shown (lines of
# the steps that are not right; [] when the chain is the statement alone), mistake line, fix).
DONE_WHEN = [
    ("colmajor_bug_missing_1_over_m.py", "compute_cost,backward,parameters", 46, [46], 46,
     "db1 = np.sum(dZ1, axis=1, keepdims=True) / m"),
    ("rowmajor_bug_sign.py", "loss,grads,params", 40, [], 40, "dW2 = a1.T @ ((probs - Y) / m)"),
    ("square_bug_transpose.py", "loss,grads,params", 44, [44], 44, '"W2": a1.T @ dz2,'),
    ("colmajor_bug_bias_not_summed.py", "compute_cost,backward,parameters", 46, [46], 46,
     "db1 = np.sum((1 / m) * dZ1, axis=1, keepdims=True)"),
    ("colmajor_bug_activation_derivative.py", "compute_cost,backward,parameters", 48, [46, 47, 48], 47,
     "dZ1 = dA1 * (1 - np.power(A1, 2))"),
]


def chain_pattern(steps: list) -> str:
    return "backward chain: " + " -> ".join(f"line {n} `[^`]*`" for n in steps) + "(;|\n)"


@pytest.mark.parametrize("name, spec, line, chain, mistake, fix", DONE_WHEN, ids=[d[0] for d in DONE_WHEN])
def test_done_when_cli(name, spec, line, chain, mistake, fix):
    script = f"fixtures/grad/{name}"
    run = run_cli("--grad", spec, script)
    assert run.status == 1
    assert f" at {script}:{line}\n" in run.stderr
    assert not chain or re.search(chain_pattern(chain), run.stderr), run.stderr
    assert f"    the mistake is at line {mistake}: `" in run.stderr
    assert f"{VERIFIED}`{fix}` at {script}:" in run.stderr


# The same five slips in the tuple-returning and the layer-object (with caches) styles.
STYLES = [p for p in CLAIMED if p.stem.startswith(("tuple_bug_", "layers_bug_")) and all_claims(p)[3]]


def test_the_five_slips_exist_in_every_style():
    slips = ("missing_1_over_m", "sign", "square_transposed", "bias_not_summed", "tanh_derivative")
    assert {f"{style}_bug_{slip}" for style in ("tuple", "layers") for slip in slips} <= {p.stem for p in STYLES}


@pytest.mark.parametrize("path", STYLES, ids=[p.stem for p in STYLES])
def test_done_when_cli_tuple_and_layer_styles(path):
    spec, lines, fixes, chains, mistakes = all_claims(path)
    script = str(path.relative_to(REPO))
    run = run_cli("--grad", spec, script)
    assert run.status == 1
    for name, line in lines.items():
        assert re.search(rf"    produced by `[^`]*` at {re.escape(script)}:{line}\n", run.stderr), run.stderr
        assert f"    the mistake is at line {mistakes[name]}: `" in run.stderr
        assert f"{VERIFIED}`{fixes[name]}` at {script}:" in run.stderr
    for name, steps in chains.items():
        assert re.search(chain_pattern(steps), run.stderr), run.stderr
