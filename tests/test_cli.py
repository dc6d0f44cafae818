"""The command line: running a script exactly as `python` would, bad input, exit statuses, report formats."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import textwrap
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO, python, shapecheck

RULES = FIXTURES / "rules"


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


# -- the script runs as under `python` ----------------------------------------------------------------

def test_script_sees_what_python_gives_it():
    script = rel(RULES / "argv_env.py")
    plain = python(script, "--lr", "0.1", "x")
    traced = shapecheck(script, "--lr", "0.1", "x")
    assert traced.status == plain.returncode == 0
    assert traced.stdout == plain.stdout  # __name__, sys.argv, sys.path[0], __file__, cwd: all identical
    seen = json.loads(traced.stdout)
    assert seen["name"] == "__main__"
    assert seen["argv"] == [script, "--lr", "0.1", "x"]
    assert seen["path0"] == str(RULES)


@pytest.mark.parametrize("args", [["--", "x"], ["x", "--", "--lr"], ["--"]])
def test_a_double_dash_after_the_script_reaches_it(args):
    script = rel(RULES / "argv_env.py")
    plain = python(script, *args)
    traced = shapecheck(script, *args)
    assert traced.stdout == plain.stdout
    assert json.loads(traced.stdout)["argv"] == [script, *args]


def test_script_from_another_working_directory(tmp_path):
    script = str(RULES / "argv_env.py")
    plain = python(script, cwd=tmp_path)
    traced = shapecheck(script, cwd=tmp_path)
    assert traced.stdout == plain.stdout
    assert json.loads(traced.stdout)["cwd"] == str(tmp_path)


def test_exit_status_and_stdout_are_the_scripts():
    script = rel(RULES / "exit_code.py")
    plain = python(script)
    traced = shapecheck(script)
    assert plain.returncode == traced.status == 3
    assert traced.stdout == plain.stdout


def test_keyboard_interrupt_ends_like_python(tmp_path):
    script = tmp_path / "interrupted.py"
    script.write_text("print('started')\nraise KeyboardInterrupt\n")
    plain = python(str(script))
    traced = shapecheck(str(script))
    assert traced.status == plain.returncode == -signal.SIGINT
    assert traced.stdout == plain.stdout == "started\n"
    assert "KeyboardInterrupt" in traced.stderr


def test_user_modules_are_traced_without_bytecode_caches(tmp_path):
    copy = tmp_path / "uses_module"
    shutil.copytree(RULES / "uses_module", copy)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    run = shapecheck("main.py", cwd=copy, json_report=True, tmp=tmp_path)
    assert run.status == 0
    layers = [f for f in run.report["findings"] if f["path"] == os.path.join("helpers", "layers.py")]
    assert [f["code"] for f in layers] == ["SC101"]
    after = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert after == before, "shapecheck changed or created files next to the user's code"


def test_installed_packages_and_stdlib_are_not_rewritten(tmp_path):
    script = tmp_path / "uses_stdlib.py"
    script.write_text("import json, statistics\nimport numpy as np\n"
                      "print(statistics.mean([1, 2, 3]), json.dumps(np.ones(2).tolist()))\n")
    run = shapecheck("--log", str(script), json_report=True, tmp=tmp_path)
    assert run.stdout == "2 [1.0, 1.0]\n"
    paths = {s["path"] for s in run.report["sites"]}
    assert paths <= {str(script)}, paths


# -- bad input: one line, documented status, never our traceback -----------------------------------

@pytest.mark.parametrize("args, message", [
    (["no_such_script.py"], r"shapecheck: error: can't open file 'no_such_script.py': \[Errno 2\] "
                            r"No such file or directory"),
    (["fixtures"], r"shapecheck: error: 'fixtures' is a directory, not a Python script"),
    ([], r"shapecheck: error: no script given \(usage: python -m shapecheck \[options\] SCRIPT \[ARGS\.\.\.\]\)"),
    (["--bogus", "fixtures/rules/exit_code.py"], r"shapecheck: error: unrecognized arguments: --bogus"),
    (["--format", "yaml", "fixtures/rules/exit_code.py"], r"shapecheck: error: argument --format: invalid "
                                                          r"choice: 'yaml' .*"),
    (["--output", "no/such/dir/report.txt", "fixtures/rules/exit_code.py"],
     r"shapecheck: error: cannot write the report to 'no/such/dir/report.txt': no such directory"),
])
def test_usage_errors_are_one_line_and_exit_2(args, message):
    run = shapecheck(*args)
    assert run.status == 2
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and re.fullmatch(message, lines[0]), run.stderr


@pytest.mark.parametrize("name", ["syntax_error.py", "latin1.py"])
def test_a_script_that_does_not_compile_is_reported_as_python_reports_it(name):
    script = rel(RULES / name)
    plain = python(script)
    traced = shapecheck(script)
    assert traced.status == plain.returncode == 1
    assert traced.stderr == plain.stderr
    assert "SyntaxError" in traced.stderr and "shapecheck" not in traced.stderr


def test_an_unreadable_pyproject_is_a_usage_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.shapecheck\n")
    (tmp_path / "s.py").write_text("print(1)\n")
    run = shapecheck("s.py", cwd=tmp_path)
    assert run.status == 2
    assert re.fullmatch(r"shapecheck: error: cannot read pyproject.toml: .*\n", run.stderr)


# -- --fail-on, silencing ------------------------------------------------------------------------

def test_fail_on(tmp_path):
    script = rel(RULES / "sc101_outer.py")
    assert shapecheck(script).status == 0
    assert shapecheck("--fail-on", "warning", script).status == 1
    assert shapecheck("--fail-on", "error", script).status == 0
    assert shapecheck("--fail-on", "warning", rel(FIXTURES / "seeds" / "mnist_fixed.py")).status == 0


OUTER = """\
import numpy as np
y = np.arange(4.0)
y_hat = np.ones((4, 1))
d = y - y_hat{comment}
"""


@pytest.mark.parametrize("comment, silenced", [
    ("", False), ("  # shapecheck: ignore[SC101]", True), ("  # shapecheck: ignore", True),
    ("  # shapecheck: ignore[SC201]", False), ("  # shapecheck: ignore[sc102, SC101]", True),
])
def test_ignore_comment(tmp_path, comment, silenced):
    (tmp_path / "s.py").write_text(OUTER.format(comment=comment))
    run = shapecheck("s.py", cwd=tmp_path, json_report=True, tmp=tmp_path)
    codes = [f["code"] for f in run.report["findings"]]
    assert codes == ([] if silenced else ["SC101"])


def test_ignore_in_pyproject_and_on_the_command_line(tmp_path):
    (tmp_path / "s.py").write_text(OUTER.format(comment=""))
    assert [f["code"] for f in shapecheck("s.py", cwd=tmp_path, json_report=True, tmp=tmp_path)
            .report["findings"]] == ["SC101"]
    assert shapecheck("--ignore", "SC101", "s.py", cwd=tmp_path, json_report=True,
                      tmp=tmp_path).report["findings"] == []
    (tmp_path / "pyproject.toml").write_text('[tool.shapecheck]\nignore = ["SC101"]\n')
    assert shapecheck("s.py", cwd=tmp_path, json_report=True, tmp=tmp_path).report["findings"] == []


# -- the reports ----------------------------------------------------------------------------------

def test_text_report_on_the_full_batch_seed():
    run = shapecheck(rel(FIXTURES / "seeds" / "iris_full_batch_bug.py"))
    report = run.stderr[run.stderr.index("\nshapecheck: fixtures"):]
    lines = report.splitlines()
    assert re.fullmatch(r"shapecheck: fixtures/seeds/iris_full_batch_bug\.py crashed with ValueError \(exit 1\); "
                        r"0 errors, 1 warning, 0 info; \d+ operations recorded at \d+ sites", lines[1])
    assert "Findings" in lines
    row = next(line for line in lines if "| SC101" in line)
    # locations are relative to the script's folder, which the summary names
    assert re.search(r"\| SC101 +\| warning +\| iris_full_batch_bug\.py:53 +\| y - y_hat +\| y \(130,\)", row)
    assert max(len(line) for line in lines if line.startswith(("+", "|"))) <= 132
    assert "Crash: ValueError at fixtures/seeds/iris_full_batch_bug.py:55" in lines
    assert "  in `np.dot(delta3, w2.T)`" in lines
    assert "  ValueError: shapes (130,130) and (1,8) not aligned: 130 (dim 1) != 1 (dim 0)" in lines
    assert re.search(r"^  delta3 +ndarray +\(130, 130\) +float64 +from `\(y - y_hat\) \* sigmoid\(z2, "
                     r"deriv=True\)` at line 53$", report, re.M)
    assert re.search(r"^  fix: +y\.reshape\(-1, 1\) - y_hat at line 53 +\(then delta3 is \(130, 1\) and "
                     r"`np\.dot\(delta3, w2\.T\)` -> \(130, 8\)\)$", report, re.M)
    assert lines[-2].startswith("Silence a finding with a trailing `# shapecheck: ignore[SC101]`")


def test_report_to_a_file_leaves_stderr_to_the_script(tmp_path):
    out = tmp_path / "report.md"
    run = shapecheck("--format", "markdown", "--output", str(out), rel(RULES / "sc101_outer.py"))
    assert run.status == 0 and run.stderr == ""
    md = out.read_text()
    assert md.startswith("### shapecheck: fixtures/rules/sc101_outer.py ran to the end; 0 errors, 3 warnings")
    assert "#### Findings" in md
    assert re.search(r"^\| SC101 +\| warning +\| `fixtures/rules/sc101_outer.py:29` +\| `labels - predictions`",
                     md, re.M)


def test_markdown_crash_section(tmp_path):
    out = tmp_path / "r.md"
    shapecheck("--format", "markdown", "-o", str(out), rel(FIXTURES / "seeds" / "iris_one_example.py"))
    md = out.read_text()
    assert "#### Crash: ValueError at `fixtures/seeds/iris_one_example.py:71`" in md
    assert "- `a1.dot(delta3.T) -> (8, 3)  (the shape of w2)`" in md


def test_shape_log():
    run = shapecheck("--log", rel(FIXTURES / "seeds" / "iris_full_batch_fixed.py"))
    log = run.stderr[run.stderr.index("Shape log"):]
    # the loop's sites count every iteration; the statements before it ran once
    assert re.search(r"iris_full_batch_fixed\.py:56 +call +np\.dot\(X, w1\) +X \(130, 4\) w1 \(4, 8\) +"
                     r"\(130, 8\) +z1 +200\n", log), log[:2000]
    assert re.search(r"iris_full_batch_fixed\.py:44 +call +np\.dot\(X, w1\) .* z1 +1\n", log)
    assert "data ?" not in log  # operands that are not arrays are not listed


def test_json_schema(tmp_path):
    report = shapecheck("--log", rel(FIXTURES / "seeds" / "iris_full_batch_bug.py"), json_report=True,
                        tmp=tmp_path).report
    assert report["version"] == 1
    assert set(report) >= {"version", "script", "exit_status", "summary", "findings", "crash", "sites",
                           "gradcheck"}
    f = report["findings"][0]
    assert set(f) >= {"code", "severity", "path", "line", "expression", "operands", "result_shape", "count",
                      "message", "fix"}
    assert f["operands"][0] == {"text": "y", "kind": "ndarray", "shape": [130], "dtype": "int64",
                                "origin": "from `data.target[:-20]` at line 42"} or f["operands"][0]["shape"] == [130]
    assert all(isinstance(d, int) for o in f["operands"] for d in o["shape"])
    crash = report["crash"]
    assert set(crash) >= {"type", "message", "path", "line", "expression", "operands", "explanation", "fixes"}
    assert isinstance(crash["fixes"], list) and all(isinstance(x, str) for x in crash["fixes"])
    site = report["sites"][0]
    assert set(site) >= {"path", "line", "kind", "expression", "signatures"}
    assert set(site["signatures"][0]) >= {"operands", "result", "count"}
    scalar = [o for s in report["sites"] for sig in s["signatures"] for o in sig["operands"] if o["kind"] == "scalar"]
    assert all(o["shape"] == [] for o in scalar)


def test_text_report_of_a_clean_run_is_one_line():
    run = shapecheck(rel(FIXTURES / "seeds" / "mnist_fixed.py"))
    tail = run.stderr.strip().splitlines()
    assert re.fullmatch(r"shapecheck: fixtures/seeds/mnist_fixed\.py ran to the end; 0 errors, 0 warnings, "
                        r"0 info; \d+ operations recorded at \d+ sites", tail[-1]), run.stderr


def test_info_notes_are_counted_and_shown_on_request():
    script = rel(RULES / "quiet_intended.py")
    plain = shapecheck(script).stderr
    assert re.search(r"\d+ info notes? not shown .*--show-info lists them", plain)
    shown = shapecheck("--show-info", script).stderr
    assert re.search(r"^\| SC101 +\| info +\| quiet_intended\.py:47 +\| u\[:, None\] -", shown, re.M)
    assert "not shown" not in shown


def test_user_files_are_not_modified(tmp_path):
    script = tmp_path / "net.py"
    script.write_text(textwrap.dedent("""\
        import numpy as np
        W = np.ones((3, 2))
        np.save("w.npy", W)
        W -= 1
        print(W.sum())
    """))
    before = script.read_bytes()
    run = shapecheck(str(script), cwd=tmp_path)
    assert run.stdout == "0.0\n"
    assert script.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.py", "w.npy"]


def test_narrow_terminal_puts_messages_under_the_table():
    run = shapecheck(rel(RULES / "sc101_outer.py"), env={"COLUMNS": "80"})
    report = run.stderr[run.stderr.index("shapecheck: fixtures"):]
    assert max(len(line) for line in report.splitlines()[1:]) <= 80  # the summary stays one greppable line
    assert "| code   | severity   | location" in report and "| message" not in report
    assert re.search(r"^SC101 sc101_outer\.py:29  `labels - predictions` stretches both operands", report, re.M)
    assert re.search(r"^    fix: labels\.reshape\(-1, 1\) - predictions -> \(6, 1\)$", report, re.M)
    assert re.search(r"ignore\[SC101\]", report)


def test_a_site_with_too_many_shapes_is_capped_and_said(tmp_path):
    (tmp_path / "s.py").write_text("import numpy as np\nfor n in range(1, 41):\n    z = np.ones(n) + np.ones(n)\n")
    run = shapecheck("s.py", cwd=tmp_path)
    assert re.search(r"^1 site saw more than 32 different shapes \(s\.py:3\): later ones were counted, not kept",
                     run.stderr, re.M)
    report = shapecheck("--log", "s.py", cwd=tmp_path, json_report=True, tmp=tmp_path).report
    [site] = [s for s in report["sites"] if s["expression"] == "np.ones(n) + np.ones(n)"]
    assert len(site["signatures"]) == 32 and site["capped"] == 8
