"""What the reports say on the reproducers of issue 13, read end to end through `python -m shapecheck`:
the fixes that must not be offered, the operands a fix names, the wording that must match numpy."""

from __future__ import annotations

from conftest import FIXTURES


def _finding(report: dict, code: str, line: int) -> dict:
    [f] = [f for f in report["findings"] if f["code"] == code and f["line"] == line]
    return f


def test_drift_fix_names_the_operand_that_changed_the_shape_not_the_scalar(fixture_runs):
    report = fixture_runs(FIXTURES / "rules" / "sc103_adam_keepdims.py").report
    m = _finding(report, "SC103", 30)
    assert "beta1" not in m["fix"]
    assert m["fix"].startswith("db is (1, 4) because `np.sum(dz, axis=0, keepdims=True)` at line 29 keeps the "
                               "summed axis: db = np.sum(dz, axis=0) there gives (4,)")
    b = _finding(report, "SC103", 31)
    assert b["fix"].startswith("m is (1, 4) from `beta1 * m + (1 - beta1) * db` at line 30: m.reshape(4) gives (4,)")


def test_a_sum_is_offered_only_for_a_batch_of_gradients(fixture_runs):
    report = fixture_runs(FIXTURES / "rules" / "sc103_drift.py").report
    # dc = dlogits: the bias gradient forgot its sum over the batch
    assert _finding(report, "SC103", 48)["fix"] == ("dc is (3, 3) from `dlogits` at line 46: summed over axis 0 there, "
                                                   "`dc = np.sum(dlogits, axis=0)` gives (3,)")
    crash = fixture_runs(FIXTURES / "rules" / "crash_gradient_of_another.py").report["crash"]
    assert not [fx for fx in crash["fixes"] if "np.sum" in fx], crash["fixes"]
    assert "nabla_w looks like the gradient of another parameter than b" in crash["explanation"]


def test_a_bias_gradient_kept_in_a_dict_or_on_a_layer_gets_its_sum(fixture_runs):
    """The course's `grads["db1"]` and a layer's `self.db`: the operand that grew the bias is named as written,
    and the sum it lacks is given where it was made when that statement is known."""
    report = fixture_runs(FIXTURES / "rules" / "sc103_bias_not_summed.py").report
    assert _finding(report, "SC103", 25)["fix"] == (
        'grads["db1"] is (3, 8): sum it over axis 1 (np.sum(..., axis=1, keepdims=True)) to get (3, 1)')
    assert _finding(report, "SC103", 39)["fix"] == (
        "self.db is (3, 8) from `dZ / X.shape[1]` at line 37: summed over axis 1 there, "
        "`self.db = np.sum(dZ / X.shape[1], axis=1, keepdims=True)` gives (3, 1)")
    assert [f["line"] for f in report["findings"] if f["severity"] != "info"] == [25, 39]


def test_no_pandas_fix_becomes_an_outer_broadcast(fixture_runs):
    report = fixture_runs(FIXTURES / "rules" / "crash_frame_column.py").report
    fixes = report["crash"]["fixes"] + [_finding(report, "SC202", 26)["fix"]]
    assert all(".ravel()" in fx for fx in fixes), fixes
    assert "the DataFrame's 1 column, not its 5 rows" in report["crash"]["explanation"]


def test_a_dtype_crash_says_dtype_and_where_it_came_from(fixture_runs):
    run = fixture_runs(FIXTURES / "rules" / "crash_object_dtype.py")
    crash = run.report["crash"]
    [op] = crash["operands"]
    assert op["dtype"] == "object"  # this run's, not the float64 of the site's first call
    assert crash["explanation"].startswith("-z has dtype object (Python objects, not numbers), and numpy's "
                                           "`exp` has no loop for them: the shapes are fine, the dtype is not")
    assert "data became object at line 29 (`df.to_numpy()`)" in crash["explanation"]
    assert crash["explanation"].endswith("because pandas gives object when the frame has a non-numeric column")
    assert crash["fixes"] == ["X = data[:, :2].astype(float) at line 30 -> (4, 2)  (convert the numeric columns as "
                              "you take them out; pd.to_numeric(...) for numbers stored as text)"]
    assert "no transpose, reshape or swap" not in run.stderr


def _text_report(script, columns: int) -> str:
    from conftest import shapecheck

    run = shapecheck(str(script.relative_to(FIXTURES.parent)), env={"COLUMNS": str(columns)})
    return run.stderr


def test_text_report_shows_expressions_on_one_line_and_never_cuts_a_shape():
    err = _text_report(FIXTURES / "rules" / "report_multiline.py", 100)
    rows = [line for line in err.splitlines() if line.startswith("|") and "report_multiline.py" in err]
    assert any("| y_true - y_pred |" in row for row in rows), err
    assert "\\" not in err.split("Findings", 1)[1]
    shapes = [row.rstrip("|").rsplit("|", 1)[1].strip() for row in rows[1:]]
    assert shapes == ["y_true (200,)", "y_pred (200, 1)", "-> (200, 200)"], shapes
    assert "`y_true - y_pred` stretches both operands" in err


def test_the_silencing_footer_only_under_a_shown_finding():
    quiet = _text_report(FIXTURES / "rules" / "quiet_intended.py", 100)
    assert "info notes not shown" in quiet and "Silence a finding" not in quiet
    loud = _text_report(FIXTURES / "rules" / "report_multiline.py", 100)
    assert "Silence a finding with a trailing `# shapecheck: ignore[SC101]`" in loud


def _numpy_refuses_rank1_scalars() -> bool:
    import numpy as np

    try:
        float(np.ones(1))
    except TypeError:
        return True
    return False


def test_a_one_element_array_formatted_as_a_number(fixture_runs):
    run = fixture_runs(FIXTURES / "rules" / "crash_scalar_conversion.py")
    if not _numpy_refuses_rank1_scalars():  # numpy < 2.x: a DeprecationWarning, and the script goes on
        assert run.status == 0 and run.report["crash"] is None
        return
    crash = run.report["crash"]
    assert (crash["type"], crash["line"], crash["expression"]) == ("TypeError", 20, "'Loss %.3f' % loss")
    [op] = crash["operands"]
    assert (op["text"], op["kind"], op["shape"]) == ("loss", "ndarray", [1])
    assert crash["explanation"].startswith("loss is a (1,) array holding one number, not a number itself")
    assert "loss got its shape (1,) at line 19 (`loss -= np.log(probs[1])`), where probs[1] of probs (5, 1) " \
           "keeps an axis: probs[1, 0] is one number" in crash["explanation"]
    assert crash["fixes"] == ["'Loss %.3f' % loss.item()  (takes the one value of loss (1,) as a Python number)"]
    assert "shapecheck: `'Loss %.3f' % loss` at fixtures/rules/crash_scalar_conversion.py:20" in run.stderr


def test_a_shape_assertion_names_both_shapes_and_the_reduction(fixture_runs):
    crash = fixture_runs(FIXTURES / "rules" / "crash_shape_assert.py").report["crash"]
    assert crash["explanation"] == ("the shapes differ: db is (3,), b is (3, 1); db lost an axis at line 24, "
                                    "where `np.sum(dZ, axis=1)` drops the summed axis")
    [origin] = [o["origin"] for o in crash["operands"] if o["text"] == "db"]
    assert origin == "from `np.sum(dZ, axis=1) / m` at line 24"


def test_float_of_a_one_by_one_array(tmp_path):
    from conftest import shapecheck

    script = tmp_path / "cost.py"
    script.write_text("import numpy as np\n\nx = np.ones((3, 1))\nw = np.ones((1, 3))\n"
                      "cost = np.dot(w, x) / 3\nprint(float(cost))\n")
    run = shapecheck(str(script), json_report=True, tmp=tmp_path)
    if not _numpy_refuses_rank1_scalars():
        assert run.status == 0 and run.report["crash"] is None
        return
    crash = run.report["crash"]
    assert crash["expression"] == "float(cost)"
    assert crash["explanation"].startswith("cost is a (1, 1) array holding one number")
    assert "cost got its shape (1, 1) at line 5 (`np.dot(w, x) / 3`)" in crash["explanation"]
    assert crash["fixes"] == ["float(cost.item())  (takes the one value of cost (1, 1) as a Python number)"]


def test_a_crash_follows_the_bad_array_through_a_parameter(fixture_runs):
    crash = fixture_runs(FIXTURES / "rules" / "crash_through_parameter.py").report["crash"]
    origins = {o["text"]: o["origin"] for o in crash["operands"]}
    assert origins["lr * dW"] == "dW passed as `dW2` by `update(W2, dW2)` at line 32, from `a1.T @ delta` at line 31"
    assert "because `y_hat - y` at line 30 broadcast (6, 1) against (6,) (SC101)" in crash["explanation"]
    assert not [fx for fx in crash["fixes"] if "np.sum" in fx], crash["fixes"]


def test_findings_that_share_a_root_lead_to_it(fixture_runs):
    """A layered network: y reaches the loss, its gradient and the accuracy as the parameter y_true."""
    report = fixture_runs(FIXTURES / "rules" / "sc101_one_root.py").report
    [root] = report["roots"]
    assert root["lead"] == ("y became (200,) at line 60 (`y = (data[:, 0] > data[:, 1]).astype(float)`): reshape it "
                            "once there, which fixes 3 findings (lines 47, 50, 54)")
    assert root["fix"] == "y = (data[:, 0] > data[:, 1]).astype(float).reshape(-1, 1) at line 60 -> (200, 1)"
    assert [(m["code"], m["line"]) for m in root["members"]] == [("SC101", 47), ("SC101", 50), ("SC101", 54)]
    for f in report["findings"]:
        if f["code"] == "SC103":  # the drift comes through object attributes: not claimed
            assert "root" not in f and "root cause" not in f["message"]
            continue
        assert f["root"] == {"name": "y", "path": "fixtures/rules/sc101_one_root.py", "line": 60}
        assert f["message"].endswith("; the root cause, shared by 3 findings: y became (200,) at line 60")
        assert f["fix"].startswith("reshape y once at line 60 (the root cause: fixes all 3); here only: ")
    # a comparison operand keeps its parentheses in the local fix (not a chained comparison)
    assert _finding(report, "SC101", 54)["fix"].endswith("here only: (y_pred > 0.5) == y_true.reshape(-1, 1) -> (200, 1)")


def test_a_root_groups_findings_of_different_rules(fixture_runs):
    report = fixture_runs(FIXTURES / "rules" / "sc101_one_root_loop.py").report
    [root] = report["roots"]
    assert root["lead"] == ("y became (40,) at line 25 (`y = data[:, -1]`): reshape it once there, which fixes 5 "
                            "findings (lines 30, 31, 32, 33, 35)")
    assert {m["code"] for m in root["members"]} == {"SC101", "SC103"}
    assert all(f["root"]["line"] == 25 for f in report["findings"])


def test_the_report_leads_with_the_root_in_every_format():
    from conftest import shapecheck

    script = "fixtures/rules/sc101_one_root.py"
    text = shapecheck(script, env={"COLUMNS": "132"}).stderr
    assert text.index("Root cause\n  y became (200,) at line 60") < text.index("Findings")
    assert "  fix: y = (data[:, 0] > data[:, 1]).astype(float).reshape(-1, 1) at line 60 -> (200, 1)" in text
    markdown = shapecheck("--format", "markdown", script).stderr
    assert markdown.index("#### Root cause: `y` at `fixtures/rules/sc101_one_root.py:60`") < markdown.index(
        "#### Findings")
    assert "**Fix** (checked with shape algebra for every finding it names): `y = (data[:, 0] > data[:, 1])" \
           ".astype(float).reshape(-1, 1) at line 60 -> (200, 1)`" in markdown
    html = shapecheck("--format", "html", script).stderr
    assert html.index("Root cause: <code") < html.index(">Findings</h3>")
    assert "y became (200,) at line 60" in html


def test_no_root_without_two_findings_it_verifiably_fixes(fixture_runs):
    # one finding per origin: nothing is grouped
    report = fixture_runs(FIXTURES / "rules" / "crash_through_parameter.py").report
    assert report["roots"] == [] and all("root" not in f for f in report["findings"])


def test_a_crash_follows_the_bad_array_through_a_return(fixture_runs):
    crash = fixture_runs(FIXTURES / "rules" / "crash_through_return.py").report["crash"]
    origins = {o["text"]: o["origin"] for o in crash["operands"]}
    assert origins["delta"] == ("from `self.cost_derivative(out, y)` at line 28, which returned `out - y` (3, 3) "
                                "at line 24")
    assert all(origins.values()), origins


def test_with_no_local_fix_the_advice_points_at_origins_that_are_there(tmp_path):
    from conftest import shapecheck

    inplace = "fixtures/rules/crash_inplace.py"
    text = shapecheck(inplace).stderr
    assert ("fix:   no transpose, reshape or swap of these operands makes it work, so one of them got a\n"
            "         wrong shape earlier: follow the origin of w and g in the operand table") in text
    markdown = shapecheck("--format", "markdown", inplace).stderr
    assert "**Fix:** no transpose, reshape or swap of these operands makes it work, so one of them got a wrong " \
           "shape earlier: follow the origin of w and g in the operand table" in markdown
    html = shapecheck("--format", "html", inplace).stderr
    assert "follow the origin of w and g in the operand table</p>" in html
    # Operands with no origin (a function's parameters called from untraced code): no empty column as advice.
    script = tmp_path / "bare.py"
    script.write_text("import numpy as np\n\n\ndef step(w, g):\n    w += g\n\n\n"
                      "step(*[np.zeros(3), np.ones((3, 3))])\n")
    for fmt in ("text", "markdown", "html"):
        err = shapecheck("--format", fmt, str(script), tmp=tmp_path).stderr
        assert "no transpose, reshape or swap" in err, err
        assert "origin" not in err.split("no transpose", 1)[1].split("\n", 1)[0], err
        assert "got a wrong shape earlier than this line, where its value was made" in " ".join(err.split()), err


def _column(err: str, header: str) -> list[str]:
    """The lines of one column of the findings grid."""
    rows = [line for line in err.split("Findings", 1)[1].splitlines() if line.startswith("|")]
    i = [c.strip() for c in rows[0].split("|")].index(header)
    return [row.split("|")[i].strip() for row in rows[1:]]


def test_a_seven_axis_shape_is_never_cut_at_any_width():
    for columns in (200, 132, 100, 80, 60):
        err = _text_report(FIXTURES / "rules" / "sc101_group_norm.py", columns)
        cells = [c for c in _column(err, "shapes") if c]
        assert "(1, 1, 6, 1, 1, 1, 1)" in " ".join(cells), (columns, cells)
        assert all(c.count("(") == c.count(")") for c in cells), (columns, cells)
        assert "-> (1, 1, 6, 2, 6, 4, 5)" in cells, (columns, cells)
        # the expression column keeps a readable width (no word cut into letters)
        assert "gamma *" in _column(err, "expression")[0] or "gamma * x_norm" in _column(err, "expression")[0]


def test_a_crash_is_linked_to_an_earlier_finding_of_any_rule(fixture_runs):
    crash = fixture_runs(FIXTURES / "rules" / "crash_after_inner_product.py").report["crash"]
    assert crash["explanation"] == "g is () because of `np.dot(delta, a.T)` at line 22 (SC102, reported above)"
    assert crash["fixes"] == ["np.outer(delta, a) at line 22  (then g is (4, 4) and `g @ x` -> (4, 2))"]


def test_a_crash_downstream_of_a_shared_root_is_fixed_at_the_root(tmp_path):
    from conftest import shapecheck

    script = tmp_path / "root_crash.py"
    script.write_text(
        "import numpy as np\n\n"
        "np.random.seed(0)\n"
        "data = np.random.rand(40, 4)\n"
        "X = data[:, :-1]\n"
        "y = data[:, -1]\n"
        "W = np.random.randn(3, 1) * 0.1\n"
        "out = 1 / (1 + np.exp(-(X @ W)))\n"
        "loss = np.mean((out - y) ** 2)\n"
        "dz = (out - y) * out * (1 - out)\n"
        "W -= 0.1 * X.T @ dz / len(X)\n")
    report = shapecheck(str(script), json_report=True, tmp=tmp_path).report
    [root] = report["roots"]
    assert [m["line"] for m in root["members"]] == [9, 10]
    crash = report["crash"]
    assert crash["line"] == 11
    assert crash["explanation"].endswith("; 0.1 * X.T @ dz / len(X) is (3, 40) because y became (40,) at line 6 "
                                         "(`y = data[:, -1]`), the root cause of 2 findings")
    assert crash["fixes"][0] == ("y = data[:, -1].reshape(-1, 1) at line 6  (then 0.1 * X.T @ dz / len(X) is "
                                 "(3, 1) and `W -= 0.1 * X.T @ dz / len(X)` -> (3, 1))")


def test_a_layer_backward_crash_shows_the_passing_call_and_no_empty_origin_as_advice(fixture_runs):
    run = fixture_runs(FIXTURES / "rules" / "crash_layer_backward.py")
    crash = run.report["crash"]
    origins = {o["text"]: o.get("origin") for o in crash["operands"]}
    assert origins == {"dvalues": "passed as `act2.dinputs` by `out.backward(act2.dinputs)` at line 71",
                       "self.weights.T": "self.weights from `0.1 * np.random.randn(n_in, n_out)` at line 24 "
                                         "(in Dense.__init__)"}
    assert "follow the origin of dvalues and self.weights.T in the operand table" in " ".join(run.stderr.split())
    assert "follow the origin column" not in run.stderr


def test_html_and_the_note_show_a_multi_line_expression_on_one_line(tmp_path):
    from conftest import shapecheck

    html = shapecheck("--format", "html", "fixtures/rules/report_multiline.py").stderr
    assert ">y_true - y_pred</code>" in html and "\\\n" not in html
    script = tmp_path / "inplace.py"
    script.write_text("import numpy as np\n\nw = np.zeros((3,))\ng = np.ones((3, 3))\nw += 0.1 * \\\n         g\n")
    run = shapecheck(str(script), json_report=True, tmp=tmp_path)
    assert "shapecheck: `w += 0.1 * g` at " in run.stderr
    assert "  0.1 * g  ndarray (3, 3) float64  g from `np.ones((3, 3))` at line 4" in run.stderr
