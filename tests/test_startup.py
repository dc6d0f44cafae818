"""Start-up stays light: what `python -m shapecheck` imports before a numpy-only script's first line runs,
beyond what the plain script has imported once its own `import numpy` ran.  Only tracing's modules load
then: the rules, the explainer, the renderers (and tabulate), the gradient checker, tomllib and pandas
load when used, after the script (or never); argparse when an option comes before the script; sysconfig
when a module of the script's folder tree is imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shapecheck import _cli

# shapecheck's modules that tracing needs: exactly these
TRACING = {"shapecheck", "shapecheck._calls", "shapecheck._cli", "shapecheck._errors", "shapecheck._events",
           "shapecheck._numerics", "shapecheck._recorder", "shapecheck._rewrite", "shapecheck._runner",
           "shapecheck._shapes"}
# stdlib modules the run may add (some interpreters or numpy versions already import them):
STDLIB = {
    "runpy",  # `python -m` itself
    "gc",  # built in (nothing loaded): the collector is paused while a module is rewritten
    # small, and already imported by site when a package is installed in editable mode (so only a regular
    # install, as in CI, shows them): the loader's decode_source and specs, `from __future__ import annotations`
    "importlib.util", "importlib._abc", "__future__", "errno",
}

SCRIPT = """\
import sys
first = sorted(sys.modules)
import numpy
after = sorted(sys.modules)
import json
print(json.dumps({"first": first, "after": after}))
"""


def _modules(tmp_path, *prefix: str) -> dict:
    script = tmp_path / "numpy_only.py"
    script.write_text(SCRIPT)
    p = subprocess.run([sys.executable, *prefix, str(script)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[0])


def _added(tmp_path) -> set[str]:
    plain = _modules(tmp_path)
    traced = _modules(tmp_path, "-m", "shapecheck")
    return set(traced["first"]) - set(plain["after"])


def test_start_up_imports_only_what_tracing_needs(tmp_path):
    added = _added(tmp_path)
    own = {m for m in added if m == "shapecheck" or m.startswith("shapecheck.")}
    assert own == TRACING
    others = added - own
    assert others <= STDLIB, f"imported at start-up: {sorted(others - STDLIB)}"


def test_start_up_imports_no_renderer_gradient_checker_config_reader_or_pandas(tmp_path):
    added = _added(tmp_path)
    for name in ("argparse", "gettext", "sysconfig", "signal", "threading", "tabulate", "pandas", "tomllib", "importlib.metadata",
                 "importlib.resources", "tempfile", "shutil", "zipfile", "dataclasses", "shapecheck._gradcheck", "shapecheck._render",
                 "shapecheck._explain", "shapecheck._report"):
        assert name not in added


def test_a_clean_run_ends_without_grouping_explaining_or_drawing_tables(tmp_path):
    """What a run with nothing to report imports after the script: the rules and the summary's renderer, not
    the root-cause grouping, the explainer, the pandas rule, tabulate or textwrap (issue 11: the fixed cost
    of a run is what a long vectorised script notices)."""
    script = tmp_path / "clean.py"
    script.write_text("import numpy as np\nx = np.ones((3, 2)) + np.zeros(2)\nimport colorsys  # the marker\n")
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "shapecheck", str(script)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "ran to the end; 0 errors, 0 warnings, 0 info" in run.stderr
    names = [line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")]
    after = set(names[names.index("colorsys") + 1:])
    assert "shapecheck._rules" in after  # the rules did run
    for name in ("shapecheck._roots", "shapecheck._explain", "shapecheck._crash", "shapecheck._rules_pandas",
                 "tabulate", "textwrap", "importlib.metadata", "pandas", "threading"):
        assert name not in after, name


def test_the_garbage_collector_stays_as_the_script_sets_it(tmp_path):
    """Rewriting pauses the collector (single-threaded only) and restores it: the script sees its own state."""
    (tmp_path / "helper_a.py").write_text("import numpy as np\nA = np.ones(3) + 1.5 * np.ones(3)\n")
    (tmp_path / "helper_b.py").write_text("import numpy as np\nB = np.ones(2) - np.zeros(2)\n")
    (tmp_path / "helper_c.py").write_text("import numpy as np\nC = np.ones(2) * np.ones(2)\n")
    script = tmp_path / "gc_state.py"
    script.write_text(
        "import gc, threading\n"
        "print(gc.isenabled())\n"
        "gc.disable()\n"
        "import helper_a\n"
        "print(gc.isenabled())\n"
        "gc.enable()\n"
        "import helper_b\n"
        "print(gc.isenabled())\n"
        "stop = threading.Event()\n"
        "t = threading.Thread(target=stop.wait)\n"
        "t.start()\n"
        "import helper_c\n"
        "print(gc.isenabled(), helper_a.A.sum(), helper_b.B.sum(), helper_c.C.sum())\n"
        "stop.set()\n"
        "t.join()\n")
    runs = [subprocess.run([sys.executable, *prefix, str(script)], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120) for prefix in ((), ("-m", "shapecheck"))]
    assert [r.returncode for r in runs] == [0, 0], runs[1].stderr
    assert runs[1].stdout == runs[0].stdout == "True\nFalse\nTrue\nTrue 7.5 2.0 2.0\n"
    assert "3 operations recorded" in runs[1].stderr


# A plain command line (the script first) is parsed without argparse: exactly as argparse parses it.
@pytest.mark.parametrize("argv", [["s.py"], ["train.py", "--format", "json", "-o", "f"], ["a b.py", "-h", "--version"],
                                  ["s.py", "x", "--", "y"], ["s.py", "-"], ["s.py", "--grad=a,b,c"], ["s.py", "", "--log"]])
def test_a_plain_command_line_needs_no_parser(argv):
    fast = _cli.options(argv)
    assert type(fast).__module__ != "argparse"
    assert vars(fast) == vars(_cli.parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["--format", "json", "s.py", "x"], ["-", "x"], ["--", "s.py"]])
def test_options_before_the_script_go_through_argparse(argv):
    assert type(_cli.options(argv)).__module__ == "argparse"


@pytest.mark.parametrize("argv, script_args", [
    (["s.py", "--", "x"], ["--", "x"]),
    (["s.py", "--", "--", "x"], ["--", "--", "x"]),
    (["--log", "s.py", "--", "x"], ["--", "x"]),
    (["--log", "--", "s.py", "--", "x"], ["--", "x"]),
    (["--format", "json", "--", "s.py", "x"], ["x"]),
    (["--log", "s.py", "x", "--", "y"], ["x", "--", "y"]),
])
def test_a_double_dash_after_the_script_is_the_scripts(argv, script_args):
    """`python SCRIPT -- x` gives the script `['--', 'x']`: so does shapecheck (argparse would drop the `--`)."""
    opts = _cli.options(argv)
    assert opts.script == "s.py" and opts.args == script_args
