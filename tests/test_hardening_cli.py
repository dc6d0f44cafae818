"""Issue 12, the command line's part: the report never overwrites the user's files, is written by the process
that started the run, to the file named before the run; the script's environment, stack, exit status and
failure messages are Python's own; shapecheck's part is one line and a documented exit status."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO, python, shapecheck

BROADCAST = "import numpy as np\nd = np.arange(4.0) - np.ones((4, 1))\n"


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def one_line_error(run, pattern: str) -> None:
    assert run.status == 2, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"shapecheck: error: " + pattern, lines[0]), run.stderr


def ends_like_python(plain, traced) -> str:
    """The traced run's status, stdout and beginning of stderr are the plain run's; what follows (the report)."""
    assert traced.status == plain.returncode, (plain.stderr, traced.stderr)
    assert traced.stdout == plain.stdout
    # CPython 3.13 reports an over-large exit code from its thread shutdown, a place no wrapper reaches
    expected = plain.stderr.replace("Exception ignored on threading shutdown:\n", "")
    assert traced.stderr.startswith(expected), (plain.stderr, traced.stderr)
    return traced.stderr[len(expected):]


SUMMARY = re.compile(r"^shapecheck: \S+ (ran to the end|crashed with \w+ \(exit \d+\)|exited with status \d+); "
                     r"\d+ errors?, \d+ warnings?, \d+ info; ", re.M)


# -- 1. the report never replaces the user's files ---------------------------------------------------------

def test_output_onto_the_script_is_refused_before_it_runs(tmp_path):
    script = write(tmp_path, "net.py", "print('ran')\n" + BROADCAST)
    before = script.read_bytes()
    run = shapecheck("-o", "net.py", "net.py", cwd=tmp_path)
    one_line_error(run, r"refusing to write the report to 'net\.py': it is the script")
    assert run.stdout == "" and script.read_bytes() == before


@pytest.mark.parametrize("name", ["helpers.py", "notes.txt", "results.json"])
def test_output_onto_an_existing_file_that_is_not_a_report_is_refused(tmp_path, name):
    write(tmp_path, "main.py", "import helpers\n")
    write(tmp_path, "helpers.py", "X = 1\n")
    write(tmp_path, "notes.txt", "my notes\n")
    write(tmp_path, "results.json", '{"accuracy": 0.9}\n')
    before = (tmp_path / name).read_bytes()
    run = shapecheck("--format", "json", "-o", name, "main.py", cwd=tmp_path)
    one_line_error(run, rf"refusing to write the report to '{re.escape(name)}': the file exists and is not a "
                        r"shapecheck report \(choose another name or remove it\)")
    assert (tmp_path / name).read_bytes() == before


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_a_previous_report_or_an_empty_file_is_replaced(tmp_path, fmt):
    write(tmp_path, "s.py", BROADCAST)
    (tmp_path / "report").write_text("")
    for _ in range(2):  # empty, then the previous report
        run = shapecheck("--format", fmt, "-o", "report", "s.py", cwd=tmp_path)
        assert run.status == 0 and run.stderr == "", run.stderr
        assert "SC101" in (tmp_path / "report").read_text()


def test_a_file_the_script_creates_at_the_output_path_is_not_overwritten(tmp_path):
    write(tmp_path, "s.py", BROADCAST + "open('out.txt', 'w').write('the script\\'s own results')\n")
    run = shapecheck("-o", "out.txt", "s.py", cwd=tmp_path)
    assert run.status == 2
    assert (tmp_path / "out.txt").read_text() == "the script's own results"
    first, rest = run.stderr.split("\n", 1)
    assert first == ("shapecheck: error: refusing to write the report to 'out.txt': the file exists and is not a "
                     "shapecheck report (choose another name or remove it); the report follows on stderr")
    assert SUMMARY.match(rest) and "SC101" in rest


# -- 4. the output path is resolved before the script runs -------------------------------------------------

def test_output_is_resolved_before_the_script_changes_directory(tmp_path):
    write(tmp_path, "s.py", BROADCAST + "import os\nos.mkdir('elsewhere')\nos.chdir('elsewhere')\n")
    run = shapecheck("--format", "json", "-o", "r.json", "s.py", cwd=tmp_path)
    assert run.status == 0 and run.stderr == ""
    assert json.loads((tmp_path / "r.json").read_text())["findings"][0]["code"] == "SC101"
    assert not (tmp_path / "elsewhere" / "r.json").exists()


# -- 5. a forked child does not report ---------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_only_the_process_that_started_the_run_reports(tmp_path):
    write(tmp_path, "s.py", """\
        import os
        import numpy as np
        pid = os.fork()
        if pid == 0:
            print("child")
        else:
            os.waitpid(pid, 0)
            d = np.arange(4.0) - np.ones((4, 1))
            print("parent")
    """)
    plain = python("s.py", cwd=tmp_path)
    traced = shapecheck("s.py", cwd=tmp_path)
    report = ends_like_python(plain, traced)
    assert len(SUMMARY.findall(traced.stderr)) == 1, traced.stderr  # the child wrote none
    assert "1 warning" in report and "SC101" in report


# -- 6. Markdown: `|` and backticks stay inside their cell and their code span -----------------------------

def gfm_cells(row: str) -> list[str]:
    """A GitHub table row's cells: split at the pipes that are not escaped."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def code_span(cell: str) -> str:
    """The text of a cell that is exactly one code span, as GitHub shows it; AssertionError otherwise."""
    m = re.fullmatch(r"(`+)(.*?)\1", cell)
    assert m and "`" * len(m[1]) not in m[2], cell
    text = m[2][1:-1] if m[2].startswith(" ") and m[2].endswith(" ") and m[2].strip() else m[2]
    return text.replace("\\|", "|")


def test_markdown_escapes_pipes_and_backticks(tmp_path):
    out = tmp_path / "r.md"
    run = shapecheck("--format", "markdown", "--log", "-o", str(out),
                     str((FIXTURES / "rules" / "markdown_specials.py").relative_to(REPO)))
    assert run.status == 0
    rows = [gfm_cells(line) for line in out.read_text().splitlines() if line.startswith("| SC101")]
    assert [code_span(r[3]) for r in rows] == ["((y > 0) | (y < -1)) * y_hat", 'y + y_hat * len("`")']
    assert all(len(r) == 7 for r in rows), rows
    assert rows[0][4] == r"(y > 0) \| (y < -1) (6,) y_hat (6, 1) -> (6, 6)"
    assert code_span(rows[1][6]).endswith('here only: y.reshape(-1, 1) + y_hat * len("`") -> (6, 1)')  # a root first
    assert rows[1][5].startswith('``y + y_hat * len("`")`` stretches both operands')
    log = [gfm_cells(line) for line in out.read_text().split("#### Shape log")[1].splitlines()
           if line.startswith("| `")]
    assert all(len(r) == 7 for r in log), log


# -- 13, 19: the script's environment and stack ------------------------------------------------------------

ENV = """\
    import inspect, json, sys
    import neighbour
    print(json.dumps({"file": __file__, "path0": sys.path[0], "argv": sys.argv, "depth": len(inspect.stack()),
                      "neighbour": neighbour.__file__}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_a_symlinked_script_gets_its_resolved_folder_and_its_file_as_given(tmp_path):
    write(tmp_path, "real/main.py", ENV)
    write(tmp_path, "real/neighbour.py", "")
    (tmp_path / "link.py").symlink_to(tmp_path / "real" / "main.py")
    for script in ("link.py", "./real/../real/main.py"):
        plain = python(script, cwd=tmp_path)
        traced = shapecheck(script, cwd=tmp_path)
        assert plain.returncode == traced.status == 0, traced.stderr
        seen, want = json.loads(traced.stdout), json.loads(plain.stdout)
        assert seen["path0"] == want["path0"] == str((tmp_path / "real").resolve())
        assert seen["file"] == want["file"] == os.path.join(tmp_path, script)  # not resolved, not normalised
        assert seen["argv"] == want["argv"] and seen["neighbour"] == want["neighbour"]
        # runpy's two frames and shapecheck's __main__ are all that is above the script's own
        assert seen["depth"] == want["depth"] + 3


@pytest.mark.parametrize("code, status", [("2 ** 70", 255), ("-1", 255), ("2 ** 40 + 3", 3), ("True", 1),
                                          ("'bye'", 1)])
def test_sys_exit_codes_end_as_under_python(tmp_path, code, status):
    write(tmp_path, "s.py", f"import sys\nsys.exit({code})\n")
    plain = python("s.py", cwd=tmp_path)
    assert plain.returncode == status
    report = ends_like_python(plain, shapecheck("s.py", cwd=tmp_path))
    assert SUMMARY.match(report)


def test_compile_time_warnings_point_at_the_script(tmp_path):
    write(tmp_path, "s.py", 'import numpy as np\nx = "\\d"\nif x is "a":\n    pass\nassert (x, 1)\n')
    plain = subprocess.run([sys.executable, "-W", "always", "s.py"], cwd=tmp_path, capture_output=True, text=True)
    traced = subprocess.run([sys.executable, "-W", "always", "-m", "shapecheck", "s.py"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert "SyntaxWarning" in plain.stderr and "s.py:3" in plain.stderr
    assert traced.stderr.startswith(plain.stderr) and "_rewrite" not in traced.stderr


# -- 20: the script breaks its environment; the report is still written ------------------------------------

@pytest.mark.parametrize("source", [
    # an exception whose __str__ raises: Python prints "<exception str() failed>"
    "class E(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\nraise E()\n",
    "print('bye')\nimport sys\nsys.stdout.close()\n",
    "import os, tempfile\nd = tempfile.mkdtemp()\nos.chdir(d)\nos.rmdir(d)\nprint('gone')\n",
    "import sys\nsys.excepthook = None\nraise ValueError(3)\n",
    "import sys\ndef hook(*a):\n    raise KeyError('hook')\nsys.excepthook = hook\nraise ValueError(3)\n",
    "import sys\ndef hook(*a):\n    sys.exit(7)\nsys.excepthook = hook\nraise ValueError(3)\n",
    "import sys\ndel sys.excepthook\nraise ValueError(3)\n",
], ids=["str_raises", "stdout_closed", "cwd_removed", "excepthook_none", "excepthook_raises", "excepthook_exits",
        "excepthook_missing"])
def test_the_script_breaking_its_environment_still_gets_a_report(tmp_path, source):
    write(tmp_path, "s.py", BROADCAST + source)
    plain = python("s.py", cwd=tmp_path)
    report = ends_like_python(plain, shapecheck("s.py", cwd=tmp_path))
    assert SUMMARY.match(report), report
    assert "SC101" in report and "internal error" not in report


def test_the_report_goes_to_stderr_even_when_the_script_closed_it(tmp_path):
    write(tmp_path, "s.py", BROADCAST + "import sys\nsys.stderr.close()\n")
    run = shapecheck("s.py", cwd=tmp_path)
    assert run.status == 0 and SUMMARY.match(run.stderr) and "SC101" in run.stderr


@pytest.mark.parametrize("output, why", [
    ("/dev/full", "No space left on device"),
    ("x" * 300 + ".txt", "File name too long"),
    ("", None),
])
def test_an_unwritable_output_is_found_before_the_run(tmp_path, output, why):
    if output == "/dev/full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    write(tmp_path, "s.py", "print('ran')\n")
    run = shapecheck("-o", output, "s.py", cwd=tmp_path)
    if why is None:
        one_line_error(run, r"--output: the file name is empty")
    else:
        one_line_error(run, rf"cannot write the report to '{re.escape(output)}': {why}")
    assert run.stdout == ""  # the script did not run


def test_output_to_a_stream_is_not_mistaken_for_a_users_file(tmp_path):
    write(tmp_path, "s.py", BROADCAST + "print('results')\n")
    with open(tmp_path / "all.txt", "w") as f:  # like `> all.txt`: the script's output goes there first
        p = subprocess.run([sys.executable, "-m", "shapecheck", "-o", "/dev/stdout", "s.py"], cwd=tmp_path,
                           stdout=f, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0 and p.stderr == ""
    text = (tmp_path / "all.txt").read_text()
    assert text.startswith("results\nshapecheck: s.py ran to the end") and "SC101" in text


@pytest.mark.parametrize("toml, message", [
    ("[tool.shapecheck]\nignore = 5\n", r"ignore must be a list of codes such as \[\"SC101\"\] or a string such "
                                        r"as \"SC101,SC102\", not 5"),
    ("[tool.shapecheck]\nignore = [1, 2]\n", r"ignore must be .*, not \[1, 2\]"),
    ("[tool]\nshapecheck = 3\n", r"\[tool.shapecheck\] must be a table, not 3"),
    ("[tool.shapecheck]\nfail-on = 1\n", r"\[tool.shapecheck\] fail-on must be 'warning' or 'error', not 1"),
])
def test_wrong_typed_configuration_is_one_line(tmp_path, toml, message):
    write(tmp_path, "pyproject.toml", toml)
    write(tmp_path, "s.py", "print('ran')\n")
    run = shapecheck("s.py", cwd=tmp_path)
    one_line_error(run, r"pyproject\.toml: (\[tool.shapecheck\] )?" + message)
    assert run.stdout == ""


@pytest.mark.parametrize("ignore", ['"SC101"', '"SC102, SC101"', '["SC101"]'])
def test_ignore_as_a_string_is_a_code_list_not_characters(tmp_path, ignore):
    write(tmp_path, "pyproject.toml", f"[tool.shapecheck]\nignore = {ignore}\n")
    write(tmp_path, "s.py", BROADCAST)
    run = shapecheck("s.py", cwd=tmp_path, json_report=True, tmp=tmp_path)
    assert run.status == 0 and run.report["findings"] == []


# -- 23: messages worded as Python words them --------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b'# coding: ascii\nx = "\xc3\xa9"\n',
    b"# coding: bogus\nx = 1\n",
    b"\xef\xbb\xbf# coding: latin-1\nx = 1\n",
    b"x = 1\ny = 2\x00 + 3\n",
    b'x = 1\ny = "\xe9"\n',
    b'# coding: utf-8\nx = "\xe9"\n',
    b"# coding: utf-16\nx = 1\n",
], ids=["ascii_cookie", "unknown_encoding", "bom_and_latin1", "nul_byte", "latin1_undeclared", "bad_utf8",
        "utf16"])
def test_undecodable_scripts_are_reported_as_python_reports_them(tmp_path, raw):
    (tmp_path / "s.py").write_bytes(raw)
    plain = python("s.py", cwd=tmp_path)
    traced = shapecheck("s.py", cwd=tmp_path)
    assert traced.status == plain.returncode == 1
    assert traced.stderr == plain.stderr and traced.stdout == ""


@pytest.mark.parametrize("head", [b"# coding: utf-8\n", b"\xef\xbb\xbf"], ids=["utf8_cookie", "bom"])
def test_bad_utf8_in_a_comment_of_a_declared_utf8_script_runs_as_under_python(tmp_path, head):
    (tmp_path / "s.py").write_bytes(head + b"print(1)  # caf\xe9\n" + BROADCAST.encode())
    plain = python("s.py", cwd=tmp_path)
    assert plain.stdout == "1\n"
    assert "SC101" in ends_like_python(plain, shapecheck("s.py", cwd=tmp_path))


def test_a_script_declared_latin1_runs(tmp_path):
    (tmp_path / "s.py").write_bytes(b'# -*- coding: latin-1 -*-\nprint("\xe9")\n' + BROADCAST.encode())
    plain = python("s.py", cwd=tmp_path)
    report = ends_like_python(plain, shapecheck("s.py", cwd=tmp_path))
    assert "SC101" in report


def test_a_zip_application_is_refused_in_one_line(tmp_path):
    with zipfile.ZipFile(tmp_path / "app.zip", "w") as z:
        z.writestr("__main__.py", "print('ran')\n")
    assert python("app.zip", cwd=tmp_path).stdout == "ran\n"
    one_line_error(shapecheck("app.zip", cwd=tmp_path),
                   r"'app\.zip' is a zip application; shapecheck runs Python source files: run the __main__\.py it "
                   r"contains instead")


def test_a_script_on_stdin_runs_as_python_runs_it(tmp_path):
    source = ("import sys\nprint(__file__, sys.argv, repr(sys.path[0]), __loader__.__name__)\n" + BROADCAST +
              "x = np.ones(2) @ np.ones(3)\n")
    plain = subprocess.run([sys.executable, "-", "a"], input=source, cwd=tmp_path, capture_output=True, text=True)
    traced = subprocess.run([sys.executable, "-m", "shapecheck", "-", "a"], input=source, cwd=tmp_path,
                            capture_output=True, text=True)
    assert plain.stdout == traced.stdout == "<stdin> ['-', 'a'] '' BuiltinImporter\n"
    assert plain.returncode == traced.returncode == 1
    assert traced.stderr.startswith(plain.stderr.rsplit("ValueError", 1)[0])  # then the note under it
    assert re.search(r"^shapecheck: <stdin> crashed with ValueError \(exit 1\); 0 errors, 1 warning", traced.stderr,
                     re.M)
    assert "SC101" in traced.stderr and "Crash: ValueError at <stdin>:5" in traced.stderr


# -- 28: the JSON report is bounded by what was found, not by the program's size ---------------------------

def test_json_report_carries_the_shape_log_only_with_log(tmp_path):
    lines = [f"a{i} = np.ones(3) + np.ones(3)" for i in range(300)]
    write(tmp_path, "s.py", "import numpy as np\n" + "\n".join(lines) + "\n")
    short = shapecheck("s.py", cwd=tmp_path, json_report=True, tmp=tmp_path).report
    assert short["sites"] == [] and short["log"] is False
    assert short["recorded"] == {"operations": 300, "sites": 300}
    full = shapecheck("--log", "s.py", cwd=tmp_path, json_report=True, tmp=tmp_path).report
    assert len(full["sites"]) == 300 and full["log"] is True and full["recorded"] == short["recorded"]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_script_on_stdin_is_refused_when_stdin_is_a_terminal(tmp_path):
    primary, secondary = os.openpty()
    try:
        p = subprocess.run([sys.executable, "-m", "shapecheck", "-"], stdin=secondary, cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    finally:
        os.close(primary)
        os.close(secondary)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == ("shapecheck: error: '-' reads the script from stdin, which is a terminal here: pipe the "
                        "script in\n")


def test_what_counts_as_a_previous_report():
    from shapecheck._render import is_report

    summary = "shapecheck: s.py ran to the end; 0 errors, 1 warning, 0 info; 3 operations recorded at 2 sites"
    assert is_report(f"{summary}\n\nFindings\n".encode())
    assert is_report(f"### {summary}\n".encode())
    assert is_report(b'{"version": 1, "findings": [], "sites": []}')
    assert is_report(f"<!DOCTYPE html>\n<html><body><p>{summary}</p>".encode())
    assert not is_report(b"shapecheck: my notes about shapecheck\n")
    assert not is_report(b'{"version": 1, "accuracy": 0.9}')
    assert not is_report(b"import numpy as np\n")
    assert not is_report(b"<html><body>my page</body></html>")
    assert not is_report(b"\xff\xfe binary")


def test_a_module_whose_comment_is_not_valid_utf8_is_imported_as_python_imports_it(tmp_path):
    (tmp_path / "oldmod.py").write_bytes(b"# caf\xe9, written in latin-1\nimport numpy as np\nx = np.ones(3) - 1\n")
    write(tmp_path, "main.py", "import oldmod\nprint(oldmod.x.tolist())\n")
    plain = python("main.py", cwd=tmp_path)
    traced = shapecheck("main.py", cwd=tmp_path, json_report=True, tmp=tmp_path)
    assert plain.returncode == traced.status == 0, traced.stderr
    assert traced.stdout == plain.stdout == "[0.0, 0.0, 0.0]\n"
    assert traced.report["untraced"] == ["oldmod.py"]
