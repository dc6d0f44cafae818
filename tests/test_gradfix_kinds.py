"""Issue 9: a derivative left out and gradients returned under each other's names, end to end through
``python -m shapecheck --grad`` on fixtures in the three styles (dict-returning backward, tuple-returning,
layer objects), and a look-alike network that has neither slip."""

from __future__ import annotations

import json
import runpy
import shutil

import pytest

import shapecheck
from conftest import FIXTURES, shapecheck as run_cli
from shapecheck._gradcheck import gradcheck_from_namespace

pytest_plugins = ["pytester"]

VERIFIED = "fix (verified: the gradient check passes with it): "
LEFT_OUT = "a derivative left out: it only passes a value on, where an activation's derivative belongs"

# (fixture, spec, rows, mistake line, the pinned statement, the verified fix)
DERIVATIVE = [
    ("tuple_bug_derivative_left_out.py", "loss,backward,params", ("[0]", "[1]"), 48, "dz1 = da1",
     "dz1 = da1 * (1 - a1 ** 2)"),
    ("layers_bug_derivative_left_out.py", "loss_and_grads,params", ("dense1.weights", "dense1.biases"), 48,
     "self.dinputs = dvalues", "self.dinputs = dvalues * (self.inputs > 0)"),
]

SWAPPED = [
    ("colmajor_bug_swapped.py", "compute_cost,backward,parameters", ("b1", "b2"), 56,
     'return {"dW1": dW1, "db1": db2, "dW2": dW2, "db2": db1, "dW3": dW3, "db3": db3}',
     'return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2, "dW3": dW3, "db3": db3}'),
    ("tuple_bug_swapped.py", "loss,backward,params", ("[0]", "[2]"), 53,
     "return dW2, db1, dW1, db2, dW3, db3", "return dW1, db1, dW2, db2, dW3, db3"),
    ("layers_bug_swapped.py", "loss_and_grads,params", ("gamma", "beta"), 60,
     'return loss, {"W": affine.dW, "gamma": scale.dbeta, "beta": scale.dgamma}',
     'return loss, {"W": affine.dW, "gamma": scale.dgamma, "beta": scale.dbeta}'),
]


def report_of(name: str, spec: str):
    ns = runpy.run_path(str(FIXTURES / "grad" / name), run_name="__shapecheck_fixture__")
    return gradcheck_from_namespace(ns, spec), ns


@pytest.mark.parametrize("name, spec, rows, line, statement, fix", DERIVATIVE, ids=[d[0] for d in DERIVATIVE])
def test_derivative_left_out_is_pinned_at_the_statement_that_passes_the_value_on(name, spec, rows, line,
                                                                                  statement, fix):
    script = f"fixtures/grad/{name}"
    run = run_cli("--grad", spec, script)
    assert run.status == 1
    out = run.stderr
    for row in rows:
        assert f"\n{row}: " in out
    assert out.count(f"    the mistake is at line {line}: `{statement}` ({LEFT_OUT}, and multiplied by it the check "
                     "passes)") == len(rows), out
    assert out.count(f"{VERIFIED}`{fix}` at {script}:{line}, instead of `{statement}`") == len(rows), out
    assert f"The mistake is at line {line}: `{statement}`." in out
    assert "swapped" not in out


@pytest.mark.parametrize("name, spec, rows, line, before, fix", SWAPPED, ids=[d[0] for d in SWAPPED])
def test_swapped_gradients_are_pinned_at_the_statement_that_binds_them(name, spec, rows, line, before, fix):
    script = f"fixtures/grad/{name}"
    run = run_cli("--grad", spec, script)
    assert run.status == 1
    out = run.stderr
    a, b = rows
    assert (f": {a}'s gradient and {b}'s are returned under each other's names: exchanged, both match "
            "the numeric gradient\n") in out, out
    assert f": {b}'s gradient and {a}'s are returned under each other's names" in out
    assert f"wrong: {a} (swapped), {b} (swapped)" in out or f"wrong: {b} (swapped), {a} (swapped)" in out
    assert "are returned under each other's names: exchanged, each matches the numeric gradient. Only the " \
           "statement that binds them to their names is wrong." in out
    assert out.count(f"    the mistake is at line {line}: `{before}` (the only statement where exchanging the two "
                     "makes both pass)") == 2, out
    assert out.count(f"{VERIFIED}`{fix}` at {script}:{line}, instead of `{before}`") == 2, out
    assert "derivative left out" not in out


def test_swapped_in_json_markdown_html_and_assert():
    report, ns = report_of("colmajor_bug_swapped.py", "compute_cost,backward,parameters")
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    rows = {r["name"]: r for r in data["rows"]}
    for name in ("b1", "b2"):
        assert rows[name]["mistake"]["line"] == 56 and rows[name]["mistake"]["why"] == "swapped"
        assert rows[name]["fix"]["kind"] == "swap" and rows[name]["fix"]["rows"] == ["b1", "b2"]
        assert rows[name]["fix"]["restoring"] is True and rows[name]["fix"]["alternative"] is None
    assert all(r["mistake"] is None and r["fix"] is None for n, r in rows.items() if n not in ("b1", "b2"))
    assert all(rows[n]["diagnosis"]["kind"] == "swapped" for n in ("b1", "b2"))
    assert data["overall"]["kind"] == "swapped"
    said = "b1's gradient and b2's are returned under each other's names"
    assert f"- **b1 (db1)**: {said}" in report.to_markdown()
    assert said.replace("'", "&#x27;") in report._repr_html_() or said in report._repr_html_()
    with pytest.raises(AssertionError) as info:
        shapecheck.assert_gradients_close(ns["compute_cost"], ns["backward"], ns["parameters"])
    assert said in str(info.value)
    assert 'return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2, "dW3": dW3, "db3": db3}' in str(info.value)


def test_derivative_left_out_in_json():
    report, _ = report_of("tuple_bug_derivative_left_out.py", "loss,backward,params")
    data = report.to_dict()
    for row in data["rows"][:2]:
        assert row["mistake"]["line"] == 48 and row["mistake"]["why"] == "derivative, passes"
        assert row["fix"]["kind"] == "derivative" and row["fix"]["after"] == "dz1 = da1 * (1 - a1 ** 2)"
    assert data["source_evaluations"] > 0


def test_a_look_alike_network_gets_neither_diagnosis():
    """A linear layer's `dZ1 = dA1` is right and db1, db2 (same shape) are returned under their own names; the
    slip (an extra `+ 0.1`) is one no edit undoes: no derivative, no swap, no fix, no line pinned."""
    script = "fixtures/grad/colmajor_lookalike_linear_layer.py"
    run = run_cli("--grad", "compute_cost,backward,parameters", script)
    assert run.status == 1
    out = run.stderr
    assert "gradient check FAILED: 4 of 6 parameters wrong" in out
    assert "derivative left out" not in out and "swapped" not in out
    assert "the mistake is at line" not in out and "The mistake is at line" not in out and VERIFIED not in out
    assert "no fix verified:" in out
    # the chain still shows the statements it came through, the linear layer's copy among them
    assert ("line 48 `dA1 = parameters[\"W2\"].T @ dZ2` -> line 49 `dZ1 = dA1` -> line 50 "
            "`dW1 = dZ1 @ X.T / m`") in out, out


@pytest.mark.parametrize("name, line", [("rowmajor_bug_residual_sign.py", 42), ("tuple_bug_residual_sign.py", 41)])
def test_a_uniform_sign_is_pinned_to_the_backward_line_when_the_loss_is_positive(name, line):
    """Every gradient has the opposite sign; `dpred = (pred - y) / m` and a minus added to the loss both
    verify, but the squared error is positive and a negated one would not be: the residual's line is pinned,
    the loss's edit still shown, with why it is the less likely one."""
    script = f"fixtures/grad/{name}"
    run = run_cli("--grad", "loss,grads,params", script)
    assert run.status == 1
    out = run.stderr
    assert out.count(f"    the mistake is at line {line}: `dpred = (y - pred) / m` (a verified edit of it makes the "
                     "check pass; a minus added to the loss would pass too, but the loss is positive and would become "
                     "negative, which no usual loss is)") == 4, out
    assert out.count(f"{VERIFIED}`dpred = (pred - y) / m` at {script}:{line}") == 4
    assert out.count("or, if the loss is what is wrong (verified too, but the loss would become negative): "
                     f"`return -(0.5 * np.mean((pred - y) ** 2))` at {script}:") == 4
    assert f"The mistake is at line {line}: `dpred = (y - pred) / m`." in out


def test_a_uniform_sign_with_a_negative_loss_stays_unpinned():
    """The loss is a mean log-probability (negative): a minus missing there is as likely as the subtraction
    of the first backward step turned round, so no line is pinned and both fixes are shown as equals."""
    run = run_cli("--grad", "loss,grads,params", "fixtures/grad/rowmajor_bug_loss_sign.py")
    assert run.status == 1
    assert "the mistake is at line" not in run.stderr and "The mistake is at line" not in run.stderr
    assert "(verified too; the check cannot tell which one you meant)" in run.stderr
    assert "would become negative" not in run.stderr


SELF = '''
import numpy as np
rng = np.random.default_rng(3)
X = rng.normal(size=(12, 4))
Y = rng.normal(size=(12, 2))
D = (rng.random((12, 5)) < 0.8).astype(float)  # a fixed dropout mask, so the check is deterministic
keep_prob = 0.8
params = {"W1": rng.normal(size=(4, 5)), "W2": rng.normal(size=(5, 2))}


def loss(p):
    h = np.tanh(X @ p["W1"]) * D / keep_prob
    return 0.5 * np.sum((h @ p["W2"] - Y) ** 2)


def grads(p):
    a = np.tanh(X @ p["W1"])
    h = a * D / keep_prob
    d = h @ p["W2"] - Y
    dh = d @ p["W2"].T
    dh = dh * D
    dh = %s
    dz = dh * (1 - a ** 2)
    return {"W1": X.T @ dz, "W2": h.T @ d}
'''


def test_a_factor_taken_out_of_a_statement_that_assigns_a_name_its_own_value(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(SELF % "dh")
    ns = runpy.run_path(str(path))
    report = shapecheck.gradcheck(ns["loss"], ns["grads"], ns["params"])
    w1 = report.rows[0]
    assert w1.status == "wrong" and report.rows[1].status == "ok"
    assert w1.fix.after == "dh = dh / keep_prob" and w1.fix.line == 22
    assert w1.mistake.line == 22 and w1.mistake.why == "factor, passes"
    assert ("the mistake is at line 22: `dh = dh` (it assigns a name its own value, where a factor was taken out; "
            "with the factor there the check passes, as it would at any step of the chain)") in str(report)
    # the same network, right: nothing is searched
    path.write_text(SELF % "dh / keep_prob")
    ns = runpy.run_path(str(path))
    assert shapecheck.gradcheck(ns["loss"], ns["grads"], ns["params"]).passed


MISSING = [
    ("colmajor_bug_l2_missing.py", "compute_cost,backward,parameters", 36, "dW2 = dZ2 @ A1.T / m",
     "dW2 += lambd / m * W2"),
    ("layers_bug_l2_missing.py", "loss,grads,params", 44,
     'dh, grads["W2"], grads["b2"] = affine_backward(dscores, cache2)', 'grads["W2"] += self.reg * W2'),
]


@pytest.mark.parametrize("name, spec, line, statement, added", MISSING, ids=[d[0] for d in MISSING])
def test_a_missing_l2_term_is_added_where_the_gradient_is_bound(name, spec, line, statement, added, tmp_path):
    script = f"fixtures/grad/{name}"
    run = run_cli("--grad", spec, script)
    assert run.status == 1
    out = run.stderr
    assert "gradient check FAILED: 1 of 4 parameters wrong: W2 (unknown)" in out
    assert (f"    a statement is missing after line {line}: `{statement}` (the numeric gradient exceeds yours by the "
            "parameter itself times a number in scope: the gradient of an L2 regulariser is left out; added "
            "there, it makes the check pass)") in out, out
    assert f"{VERIFIED}add `{added}` after line {line} ({script}:{line})" in out
    assert f"A statement is missing after line {line}: `{statement}`." in out
    # the fix, applied to a copy of the file, makes the whole check pass
    report, _ = report_of(name, spec)
    fix = next(r.fix for r in report.rows if r.name == "W2")
    assert fix.kind == "missing" and report.rows[2].mistake.why == "missing"
    lines = (FIXTURES / "grad" / name).read_text().splitlines(keepends=True)
    assert fix.before in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(fix.before, fix.after, 1)
    fixed = tmp_path / name
    fixed.write_text("".join(lines))
    ns = runpy.run_path(str(fixed), run_name="__shapecheck_fixture__")
    assert gradcheck_from_namespace(ns, spec, mode="full").passed


def test_a_regulariser_present_in_the_loss_and_in_every_gradient_gets_no_missing_statement(tmp_path):
    """The look-alike: the same network with the L2 term in dW2 too passes; with an unrelated slip instead
    (a factor 1.5 on b2 that no number in scope explains), nothing is said to be missing."""
    source = (FIXTURES / "grad" / "colmajor_bug_l2_missing.py").read_text()
    right = source.replace("dW2 = dZ2 @ A1.T / m  # bug: the L2 term lambd / m * W2 is left out",
                           "dW2 = dZ2 @ A1.T / m + lambd / m * W2")
    assert right != source
    (tmp_path / "right.py").write_text(right)
    ns = runpy.run_path(str(tmp_path / "right.py"), run_name="__shapecheck_fixture__")
    assert gradcheck_from_namespace(ns, "compute_cost,backward,parameters").passed
    other = right.replace("db2 = np.sum(dZ2, axis=1, keepdims=True) / m",
                          "db2 = np.sum(dZ2, axis=1, keepdims=True) / m + 0.05")
    (tmp_path / "other.py").write_text(other)
    run = run_cli("--grad", "compute_cost,backward,parameters", str(tmp_path / "other.py"))
    assert run.status == 1 and "b2" in run.stderr
    assert "missing after line" not in run.stderr, run.stderr
    assert "gradient of an L2 regulariser" not in run.stderr, run.stderr


RNN = '''
import numpy as np
rng = np.random.default_rng(7)
H, V, T = 4, 3, 5
xs = [rng.normal(size=(V, 1)) for _ in range(T)]
ys = [rng.normal(size=(1, 1)) for _ in range(T)]
params = {"Wxh": rng.normal(size=(H, V)) * 0.5, "Whh": rng.normal(size=(H, H)) * 0.5,
          "Why": rng.normal(size=(1, H)) * 0.5}


def loss_and_grads(p):
    hs, loss = {-1: np.zeros((H, 1))}, 0.0
    for t in range(T):
        hs[t] = np.tanh(p["Wxh"] @ xs[t] + p["Whh"] @ hs[t - 1])
        loss += 0.5 * float(np.sum((p["Why"] @ hs[t] - ys[t]) ** 2))
    dWxh, dWhh, dWhy = np.zeros_like(p["Wxh"]), np.zeros_like(p["Whh"]), np.zeros_like(p["Why"])
    dhnext = np.zeros((H, 1))
    for t in reversed(range(T)):
        dy = p["Why"] @ hs[t] - ys[t]
        dWhy += dy @ hs[t].T
        dh = p["Why"].T @ dy + dhnext
        dhraw = %s
        dWxh += dhraw @ xs[t].T
        dWhh += dhraw @ hs[t - 1].T
        dhnext = p["Whh"].T @ dhraw
    return loss, {"Wxh": dWxh, "Whh": dWhh, "Why": dWhy}
'''


def test_a_derivative_left_out_in_a_loop_over_time_uses_the_states_at_the_loops_index(tmp_path):
    """min-char-rnn's `dhraw = dh` without `(1 - hs[t] ** 2)`: the state at the loop's own index is in scope.
    (The loss is a Python float returned with a dict display of the gradients: the forward pass is not taken
    for the statements those gradients came from.)"""
    path = tmp_path / "rnn.py"
    path.write_text(RNN % "dh")
    ns = runpy.run_path(str(path))
    report = shapecheck.gradcheck(ns["loss_and_grads"], params=ns["params"])
    rows = {r.name: r for r in report.rows}
    assert rows["Why"].status == "ok" and rows["Wxh"].status == rows["Whh"].status == "wrong"
    for name in ("Wxh", "Whh"):
        assert rows[name].mistake.line == 22 and rows[name].mistake.why == "derivative, passes"
        assert rows[name].fix.after == "dhraw = dh * (1 - hs[t] ** 2)"
    path.write_text(RNN % "dh * (1 - hs[t] ** 2)")
    ns = runpy.run_path(str(path))
    assert shapecheck.gradcheck(ns["loss_and_grads"], params=ns["params"]).passed


def test_the_pytest_summary_says_a_statement_is_missing_and_what_to_add(pytester):
    shutil.copy(FIXTURES / "grad" / "layers_bug_l2_missing.py", pytester.path / "net_l2.py")
    pytester.makepyfile(test_net="""
        import net_l2 as net
        from shapecheck import gradcheck

        def test_gradients():
            assert not gradcheck(net.loss, net.grads, net.params).passed
    """)
    result = pytester.runpytest_inprocess("-rA", "-p", "no:cacheprovider", "--shapecheck")
    text = result.stdout.str()
    assert "PASSED test_net.py::test_gradients" in text
    assert ('    a statement is missing after line 44: `dh, grads["W2"], grads["b2"] = '
            'affine_backward(dscores, cache2)`') in text, text
    assert ('    fix (verified: the gradient check passes with it): add `grads["W2"] += self.reg * W2` after '
            'net_l2.py:44') in text
    assert "the mistake is at line 44" not in text


def test_a_slip_in_the_step_carried_back_through_time_is_found_and_pinned(tmp_path):
    """`dhnext = -Whh.T @ dhraw`: the accumulating statements (`dWxh += dhraw @ xs[t].T`) read `dhraw` of every
    step, so the chain reaches the statement that carries the gradient to the step before."""
    source = (RNN % "dh * (1 - hs[t] ** 2)").replace('dhnext = p["Whh"].T @ dhraw', 'dhnext = -p["Whh"].T @ dhraw')
    line = source[:source.index("dhnext = -p")].count("\n") + 1
    path = tmp_path / "rnn.py"
    path.write_text(source)
    ns = runpy.run_path(str(path))
    report = shapecheck.gradcheck(ns["loss_and_grads"], params=ns["params"])
    rows = {r.name: r for r in report.rows}
    assert rows["Why"].status == "ok" and rows["Wxh"].status == rows["Whh"].status == "wrong"
    for name in ("Wxh", "Whh"):
        assert line in [s.line for s in rows[name].chain]
        assert rows[name].mistake.line == line and rows[name].mistake.why == "fix"
        assert rows[name].fix.after == 'dhnext = p["Whh"].T @ dhraw'


def test_a_failing_search_of_ours_leaves_the_verdict_and_the_other_searches(monkeypatch):
    from shapecheck import _gradfix

    def broken(*args):
        raise RuntimeError("a slip of ours")

    monkeypatch.setattr(_gradfix, "_search_swaps", broken)
    report, _ = report_of("tuple_bug_derivative_left_out.py", "loss,backward,params")
    assert not report.passed and [r.status for r in report.rows] == ["wrong", "wrong", "ok", "ok"]
    assert report.rows[0].mistake.line == 48 and report.rows[0].fix.after == "dz1 = da1 * (1 - a1 ** 2)"


SCALE = '''
import numpy as np
rng = np.random.default_rng(43)
X = rng.normal(size=(12, 3))
y = rng.normal(size=(12, 3))
params = {"gamma": 1 + 0.2 * rng.normal(size=3), "beta": 0.2 * rng.normal(size=3)}


def loss(p):
    return 0.5 * np.sum((p["gamma"] * X + p["beta"] - y) ** 2)


def scale_backward(dout):
    dgamma = np.sum(dout * X, axis=0)
    dbeta = np.sum(dout, axis=0)
    return dbeta, dgamma


def grads(p):
    dout = p["gamma"] * X + p["beta"] - y
    g = {}
    g["gamma"], g["beta"] = scale_backward(dout)
    return g
'''


def test_an_exchange_that_verifies_at_two_statements_is_shown_but_not_pinned(tmp_path):
    """`return dbeta, dgamma` and the caller's `g["gamma"], g["beta"] = ...`: either may hold the slip (the
    function's order is whatever its author meant), so both exchanges are shown and no line is pinned."""
    path = tmp_path / "scale.py"
    path.write_text(SCALE)
    ns = runpy.run_path(str(path))
    report = shapecheck.gradcheck(ns["loss"], ns["grads"], ns["params"])
    text = str(report)
    assert [r.status for r in report.rows] == ["wrong", "wrong"]
    assert all(r.mistake is None and r.fix.kind == "swap" and r.fix.alternative is not None for r in report.rows)
    assert {report.rows[0].fix.line, report.rows[0].fix.alternative.line} == {16, 22}
    assert "gamma's gradient and beta's are returned under each other's names" in text
    assert "or (verified too; the check cannot tell which one you meant): `" in text
    assert "the mistake is at line" not in text
