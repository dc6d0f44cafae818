"""`pytest --shapecheck`: pytester runs over the example project (fixtures/pytest_project) and small projects.

In-process runs for options, ini keys, the header, the summary, modes, markers and the fixture; subprocess
runs (few: they cost) for what depends on the import hook going in before anything is imported.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES
from shapecheck import _gradcheck

pytest_plugins = ["pytester"]

PROJECT = FIXTURES / "pytest_project"
SCORE = "test_mynet.py::test_score_is_a_finite_number"
CRASH = "test_mynet.py::test_input_gradient_has_the_shape_of_the_input"
GRAD = "test_mynet.py::test_gradients_match_finite_differences"
# What plain `pytest` gives on the example project: every run with --shapecheck must give the same.
PLAIN = {SCORE: "PASSED", CRASH: "FAILED", GRAD: "PASSED",
         "test_mynet.py::test_forward_gives_one_prediction_per_example": "PASSED",
         "test_mynet.py::test_training_lowers_the_loss": "PASSED"}
WARNING_LINE = "mynet.py:46: ShapeWarning: SC101 warning at mynet.py:46: `y - y_hat` stretches both operands: " \
               "y (8,) and y_hat (8, 1) broadcast to (8, 8)"


@pytest.fixture
def project(pytester):
    for name in ("mynet.py", "test_mynet.py", "pytest.ini"):
        shutil.copy(PROJECT / name, pytester.path / name)
    return pytester


def outcomes(result) -> dict[str, str]:
    """test id -> passed/failed/..., read from `-rA`'s short summary."""
    out = {}
    for line in result.outlines:
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR", "XFAIL", "XPASS", "SKIPPED") and "::" in rest:
            out[rest.split(" - ")[0].strip()] = word
    return out


def run(pytester, *args):
    return pytester.runpytest_inprocess("-rA", "-p", "no:cacheprovider", *args)


def section(result) -> str:
    """The `shapecheck` terminal summary section ('' when there is none)."""
    text = result.stdout.str()
    start = text.find("= shapecheck =")
    if start < 0:
        return ""
    end = text.find("short test summary info", start)
    return text[start:end]


# -- the example project -------------------------------------------------------------------------------


def test_off_by_default_nothing_is_rewritten_or_printed(project):
    before = {k: v for k, v in vars(builtins).items() if k.startswith("__sc_")}
    result = run(project)
    assert outcomes(result) == PLAIN
    text = result.stdout.str()
    assert "shapecheck" not in text.replace("test_mynet.py", "").replace("shapecheck-nn", "")
    assert "ShapeWarning" not in text and section(result) == ""
    assert {k: v for k, v in vars(builtins).items() if k.startswith("__sc_")} == before


def test_example_project_warns_at_the_users_line_and_summarises(project):
    result = run(project, "--shapecheck", "--shapecheck-report=report.json")
    assert outcomes(result) == PLAIN  # the plugin changes no outcome
    result.stdout.fnmatch_lines([
        "shapecheck: tracing the modules under the rootdir (not tests, conftest.py or virtual environments); "
        "mode warn",
    ])
    # the finding, as a warning at mynet.py's line, in pytest's warnings summary, under the test that made it
    result.stdout.fnmatch_lines(["*warnings summary*", SCORE, f"  {project.path}/{WARNING_LINE}*",
                                 "    return float(np.mean((y - y_hat) ** 2))"])
    # the crash, explained in the failing test's output by the note
    result.stdout.fnmatch_lines([
        "E       ValueError: matmul: *",
        "E       shapecheck: `np.ones_like(y_hat) @ params[\"W2\"]` at mynet.py:51",
        "E         np.ones_like(y_hat)  ndarray (8, 1) float64",
        "E         params[\"W2\"]         ndarray (4, 1) float64",
        "E         fix:   np.ones_like(y_hat) @ params[\"W2\"].T -> (8, 4)  (the shape of a1)",
    ])
    summary = section(result).splitlines()
    assert summary[1].split() == ["code", "severity", "location", "expression", "shapes", "hit", "by", "first",
                                  "test"]
    assert summary[3].split() == ["SC101", "warning", "mynet.py:46", "y", "-", "y_hat", "y", "(8,)", "y_hat",
                                  "(8,", "1)", "->", "(8,", "8)", "1", "test", SCORE]
    grad_row = next(line for line in summary if line.startswith(GRAD))
    assert grad_row.split()[1:6] == ["W1,", "b1,", "W2,", "b2", "ok"]
    assert "shapecheck: 1 finding (1 warning) made by 1 test; 1 crash explained in the failures above; " \
           "1 gradient check, 0 wrong" in summary
    assert "hint: fail on findings with --shapecheck-mode=fail; silence one with `# shapecheck: ignore[SC101]` " \
           "on its line or --shapecheck-ignore=SC101" in summary

    report = json.loads((project.path / "report.json").read_text())
    assert report["version"] == 1 and report["exit_status"] == 1
    [finding] = report["findings"]
    assert (finding["code"], finding["line"], finding["tests"]) == ("SC101", 46, [SCORE])
    assert [o["shape"] for o in finding["operands"]] == [[8], [8, 1]] and finding["result_shape"] == [8, 8]
    [grad] = report["gradchecks"]
    assert (grad["test"], grad["passed"], grad["parameters"]) == (GRAD, True, ["W1", "b1", "W2", "b2"])
    assert [(c["test"], c["line"], c["fixes"][0]) for c in report["crashes"]] == [
        (CRASH, 51, 'np.ones_like(y_hat) @ params["W2"].T -> (8, 4)  (the shape of a1)')]


def test_nothing_leaks_into_the_outer_session(project):
    before = {k: v for k, v in vars(builtins).items() if k.startswith("__sc_")}
    meta = list(sys.meta_path)
    run(project, "--shapecheck")
    assert list(sys.meta_path) == meta
    assert {k: v for k, v in vars(builtins).items() if k.startswith("__sc_")} == before
    assert _gradcheck._LISTENERS == []


def test_fail_mode_fails_the_test_that_made_the_finding(project):
    result = run(project, "--shapecheck-mode=fail")
    assert outcomes(result)[SCORE] == "FAILED"
    assert outcomes(result)[GRAD] == "PASSED"
    result.stdout.fnmatch_lines([
        "*_ test_score_is_a_finite_number _*",
        "shapecheck: this test made 1 finding (--shapecheck-mode=fail):",
        "  SC101 warning at mynet.py:46: `y - y_hat` stretches both operands: y (8,) and y_hat (8, 1) broadcast "
        "to (8, 8)*fix: y.reshape(-1, 1) - y_hat -> (8, 1)",
    ])
    assert "ShapeWarning" not in result.stdout.str()
    assert "traceback entries are hidden" not in result.stdout.str()  # the failure is its message alone
    assert result.ret == 1


# -- options, ini keys, markers --------------------------------------------------------------------------

NET = """\
import numpy as np

def residual(y, y_hat):
    return y - y_hat

def rank1(x):
    return x.T @ x
"""


def test_ini_keys_and_tool_shapecheck_ignore(pytester):
    pytester.makepyfile(net=NET, test_net="""\
        import numpy as np, net
        def test_residual():
            net.residual(np.zeros(3), np.zeros((3, 1)))
        def test_rank1():
            net.rank1(np.ones(3))
    """)
    pytester.makefile(".toml", pyproject="""\
        [tool.pytest.ini_options]
        shapecheck = true
        shapecheck_mode = "fail"
        shapecheck_report = "out/report.json"

        [tool.shapecheck]
        ignore = ["SC102"]
    """)
    (pytester.path / "out").mkdir()
    result = run(pytester)
    assert outcomes(result) == {"test_net.py::test_residual": "FAILED", "test_net.py::test_rank1": "PASSED"}
    result.stdout.fnmatch_lines(["*mode fail; ignoring SC102"])
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert [f["code"] for f in report["findings"]] == ["SC101"]

    # the command line's ignore adds to [tool.shapecheck]'s
    result = run(pytester, "--shapecheck-ignore=sc101")
    assert set(outcomes(result).values()) == {"PASSED"}


def test_bad_settings_are_one_line_usage_errors(pytester):
    pytester.makeini("[pytest]\nshapecheck_mode = loud\n")
    result = run(pytester, "--shapecheck")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: shapecheck_mode must be 'warn' or 'fail', not 'loud'"])
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_inprocess("--shapecheck-report=nowhere/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --shapecheck-report: cannot write '*nowhere/r.json': no such directory"])


def test_packages_option_traces_only_those(pytester):
    pytester.makepyfile(net=NET, other=NET, test_two="""\
        import numpy as np, net, other
        def test_both():
            net.residual(np.zeros(2), np.zeros((2, 1)))
            other.residual(np.zeros(2), np.zeros((2, 1)))
    """)
    result = run(pytester, "--shapecheck-packages=net")
    result.stdout.fnmatch_lines(["shapecheck: tracing packages net; mode warn"])
    assert "net.py:4: ShapeWarning: SC101" in result.stdout.str()
    assert "other.py" not in section(result)


def test_markers_xfail_and_try_except(pytester):
    pytester.makepyfile(net=NET, test_marks="""\
        import numpy as np, pytest, net

        @pytest.mark.shapecheck(mode="fail")
        def test_fail_for_this_one():
            try:
                net.residual(np.zeros(2), np.zeros((2, 1)))
            except Exception:
                pass

        @pytest.mark.no_shapecheck
        def test_not_recorded():
            net.residual(np.zeros(4), np.zeros((4, 1)))

        @pytest.mark.xfail(reason="known broadcast")
        @pytest.mark.shapecheck(mode="fail")
        def test_known():
            net.residual(np.zeros(5), np.zeros((5, 1)))

        def test_warned():
            net.residual(np.zeros(6), np.zeros((6, 1)))

        @pytest.mark.filterwarnings("ignore::shapecheck.ShapeWarning")
        def test_filtered():
            net.residual(np.zeros(9), np.zeros((9, 1)))
    """)
    result = run(pytester, "--shapecheck", "--strict-markers")
    assert outcomes(result) == {"test_marks.py::test_fail_for_this_one": "FAILED",
                                "test_marks.py::test_not_recorded": "PASSED",
                                "test_marks.py::test_known": "XFAIL",
                                "test_marks.py::test_warned": "PASSED",
                                "test_marks.py::test_filtered": "PASSED"}
    text = result.stdout.str()
    assert "(2, 1) broadcast to (2, 2)" in text  # the failure text
    assert "(4, 1)" not in text  # no_shapecheck: nothing recorded
    assert "ShapeWarning: SC101 warning at net.py:4: `y - y_hat` stretches both operands: y (6,)" in text
    assert "y (9,)" not in text.split("= shapecheck =")[0]  # filterwarnings: as for any warning
    # -v lists every test that hit the site; without it, the first and how many more
    assert "test_marks.py::test_fail_for_this_one (+3 more)" in section(result)
    verbose = section(run(pytester, "--shapecheck", "-v"))
    assert all(f"test_marks.py::{t}" in verbose
               for t in ("test_fail_for_this_one", "test_known", "test_warned", "test_filtered"))


def test_markers_are_known_without_the_option(pytester):
    pytester.makepyfile(test_m="""\
        import pytest
        @pytest.mark.no_shapecheck
        @pytest.mark.shapecheck(mode="fail")
        def test_x():
            pass
    """)
    assert run(pytester, "--strict-markers").ret == 0


def test_shape_report_fixture(pytester):
    pytester.makepyfile(net=NET, test_fixture="""\
        import numpy as np, pytest, net

        def test_findings_and_assert_clean(shape_report):
            net.residual(np.zeros(3), np.zeros(3))
            shape_report.assert_clean()
            net.residual(np.zeros(3), np.zeros((3, 1)))
            [f] = shape_report.findings
            assert (f.code, f.site.line, f.result) == ("SC101", 4, (3, 3))
            with pytest.raises(AssertionError, match=r"SC101 warning at net.py:4: `y - y_hat`"):
                shape_report.assert_clean()

        def test_expect_consumes_the_finding(shape_report):
            with shape_report.expect("SC101", match="y - y_hat") as got:
                net.residual(np.zeros(7), np.zeros((7, 1)))
            assert got.findings[0].result == (7, 7)
            shape_report.assert_clean()

        def test_expect_fails_when_nothing_is_found(shape_report):
            with shape_report.expect("SC102"):
                net.residual(np.zeros(8), np.zeros((8, 1)))
    """)
    result = run(pytester, "--shapecheck", "--shapecheck-mode=fail")
    assert outcomes(result) == {"test_fixture.py::test_findings_and_assert_clean": "FAILED",
                                "test_fixture.py::test_expect_consumes_the_finding": "PASSED",
                                "test_fixture.py::test_expect_fails_when_nothing_is_found": "FAILED"}
    result.stdout.fnmatch_lines(["DID NOT FIND SC102; made instead: SC101 at net.py:4"])
    assert "(7, 1)" not in result.stdout.str()  # expected: neither failed on nor summarised as a failure
    # without --shapecheck the fixture's tests are skipped, with the reason
    result = run(pytester)
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["SKIPPED * the shape_report fixture needs pytest --shapecheck"])


def test_tests_conftest_and_venvs_are_not_rewritten_and_asserts_still_explain(pytester):
    pytester.makeconftest("""\
        import numpy as np
        def pytest_sessionstart(session):
            np.zeros(3) - np.zeros((3, 1))
    """)
    venv = pytester.mkdir("venvlib")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "vendored.py").write_text(NET)
    pytester.makepyfile(net=NET, test_asserts="""\
        import sys, numpy as np, net
        sys.path.insert(0, "venvlib")
        import vendored

        def test_shape():
            vendored.residual(np.zeros(3), np.zeros((3, 1)))
            outer = np.zeros(3) - np.zeros((3, 1))
            assert net.residual(np.zeros(2), np.zeros(2)).shape == (3,)
    """)
    result = run(pytester, "--shapecheck")
    result.stdout.fnmatch_lines(["E       assert (2,) == (3,)", "E         At index 0 diff: 2 != 3"])
    assert "ShapeWarning" not in result.stdout.str() and section(result) == ""


def test_the_fixtures_run_the_same_with_and_without_shapecheck(pytester):
    """Every rules/ and grad/ fixture, imported by a test: the same outcome, traced or not."""
    for folder in ("rules", "grad"):
        shutil.copytree(FIXTURES / folder, pytester.path / folder)
    shutil.copytree(FIXTURES / "data", pytester.path / "data", ignore=shutil.ignore_patterns("mnist*"))
    names = sorted(p.stem for folder in ("rules", "grad") for p in (pytester.path / folder).glob("*.py"))
    pytester.makeini("[pytest]\npythonpath = rules grad rules/uses_module\n")
    pytester.makepyfile(test_scripts=f"""\
        import importlib, pytest
        @pytest.mark.parametrize("name", {names + ["main"]!r})
        def test_script(name):
            importlib.import_module(name)
    """)
    plain = run(pytester)
    traced = run(pytester, "--shapecheck", "--shapecheck-report=r.json")
    assert len(outcomes(plain)) == len(names) + 1
    assert outcomes(traced) == outcomes(plain)
    # Python imports latin1.py (only a comment is not UTF-8); shapecheck cannot read it as text: it runs as written
    assert json.loads((pytester.path / "r.json").read_text())["untraced"] == ["rules/latin1.py"]
    assert "FAILED test_scripts.py::test_script[crash_matmul] - ValueError" in traced.stdout.str()
    assert "SC101" in section(traced) and "rules/sc101_outer.py" in section(traced)


# -- in a subprocess: what depends on when the hook goes in --------------------------------------------


def test_loading_the_plugin_imports_no_numpy_or_pandas():
    code = ("import sys; from importlib.metadata import entry_points; "
            "[ep] = [e for e in entry_points(group='pytest11') if e.name == 'shapecheck']; ep.load(); "
            "print(ep.value, [m for m in ('numpy', 'pandas', 'tabulate') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["shapecheck._pytest_plugin", "[]"]


def test_conftest_imports_are_traced_and_W_error_fails_the_test(project):
    project.makeconftest("import mynet\n")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "--shapecheck",
                                          "-W", "error::shapecheck.ShapeWarning")
    result.stdout.fnmatch_lines([
        "*_ test_score_is_a_finite_number _*",
        "E   shapecheck._errors.ShapeWarning: SC101 warning at mynet.py:46: `y - y_hat`*",
        "All traceback entries are hidden*",
    ])
    assert outcomes(result)[SCORE] == "FAILED" and outcomes(result)[GRAD] == "PASSED"


def test_a_module_imported_too_early(project):
    project.makepyfile(early="import mynet\n")
    env = {**os.environ, "PYTHONPATH": str(project.path)}
    # the project's own modules: the header says which run untraced
    result = project.runpytest_subprocess("-p", "early", "--shapecheck", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["shapecheck: imported before the hook went in, so untraced: mynet"])
    assert "ShapeWarning" not in result.stdout.str()
    # a package asked for by name: a clear error, exit 4
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "early", "--shapecheck-packages=mynet"],
                       cwd=project.path, env=env, capture_output=True, text=True)
    assert p.returncode == 4
    assert p.stderr.startswith("ERROR: shapecheck: mynet was imported before pytest loaded the conftest.py files "
                               "(by another pytest plugin, a .pth file or sitecustomize), so it cannot be traced.")


def test_disabled_and_explicitly_loaded(project):
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "shapecheck",
                        "--shapecheck"], cwd=project.path, env=env, capture_output=True, text=True)
    assert "mynet.py:46: ShapeWarning: SC101" in p.stdout
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:shapecheck", "--shapecheck"],
                       cwd=project.path, capture_output=True, text=True)
    assert p.returncode == 4 and "unrecognized arguments: --shapecheck" in p.stderr


def test_xdist_gives_the_same_findings_and_one_summary(project):
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "-n", "2", "--shapecheck",
                                          "--shapecheck-report=report.json")
    assert outcomes(result) == PLAIN
    assert result.stdout.str().count("= shapecheck =") == 1
    summary = section(result).splitlines()
    assert summary[3].split()[:3] == ["SC101", "warning", "mynet.py:46"] and summary[3].endswith(SCORE)
    assert any(line.startswith(GRAD) for line in summary)
    report = json.loads((project.path / "report.json").read_text())
    assert [(f["code"], f["line"], f["tests"]) for f in report["findings"]] == [("SC101", 46, [SCORE])]
    assert [c["test"] for c in report["crashes"]] == [CRASH]
    assert [(g["test"], g["passed"]) for g in report["gradchecks"]] == [(GRAD, True)]
    assert report["exit_status"] == 1


def test_a_failed_gradient_check_shows_each_wrong_rows_line_and_verified_fix(pytester):
    """The summary names, under the table, the statement that produced each wrong gradient, the line the
    mistake is at and the fix the check verified — not only the overall sentence."""
    shutil.copy(FIXTURES / "grad" / "colmajor_bug_missing_1_over_m.py", pytester.path / "net_1_over_m.py")
    pytester.makepyfile(test_net="""
        import net_1_over_m as net
        from shapecheck import gradcheck

        def test_gradients():
            report = gradcheck(net.compute_cost, net.backward, net.parameters)
            assert not report.passed
    """)
    result = run(pytester, "--shapecheck")
    assert outcomes(result) == {"test_net.py::test_gradients": "PASSED"}
    summary = section(result).splitlines()
    start = summary.index("b1 (test_net.py::test_gradients): " + next(
        line.split(": ", 1)[1] for line in summary if line.startswith("b1 (test_net.py::test_gradients): ")))
    assert summary[start + 1:start + 4] == [
        "    produced by `db1 = np.sum(dZ1, axis=1, keepdims=True)` at net_1_over_m.py:46",
        "    the mistake is at line 46: `db1 = np.sum(dZ1, axis=1, keepdims=True)`",
        "    fix (verified: the gradient check passes with it): `db1 = np.sum(dZ1, axis=1, keepdims=True) / m` "
        "at net_1_over_m.py:46"]
    assert "1 gradient check, 1 wrong" in section(result)
    assert not any(line.startswith(("W1 (", "W2 (", "b2 (")) for line in summary)  # rows that checked ok
