"""`%load_ext shapecheck` in an in-process IPython shell: hooks, display, magics, crash notes, fallbacks."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import pytest

from conftest import python
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

import shapecheck
from shapecheck import _notebook, _recorder
from test_html import well_formed

BUG = "import numpy as np\ny = np.zeros(5)\ny_hat = np.ones((5, 1))\nd = y - y_hat\nd.shape"
CLEAN = "import numpy as np\nZ = np.ones((4, 3)) + np.zeros(3)\nZ.shape"
CRASH = "import numpy as np\nX = np.ones((4, 3))\nW = np.ones((4, 2))\nZ = X @ W"


@dataclass
class Cell:
    result: object  # IPython's ExecutionResult
    stdout: str
    stderr: str
    displays: list[dict]  # the data of each display_data output (not the execute_result)

    @property
    def html(self) -> list[str]:
        return [d["text/html"] for d in self.displays if "text/html" in d]


@pytest.fixture(scope="module")
def shell():
    saved_main = sys.modules.get("__main__")
    config = Config()
    config.HistoryManager.enabled = False
    sh = InteractiveShell.instance(config=config)
    sh.run_cell("%colors nocolor")
    yield sh
    InteractiveShell.clear_instance()
    sys.modules["__main__"] = saved_main


@pytest.fixture
def ip(shell, tmp_path, monkeypatch):
    """The shell with shapecheck loaded, in an empty folder; unloaded afterwards whatever the test did."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    shell.reset(new_session=False)
    shell.run_cell("%xmode Context")
    shell.run_cell("%load_ext shapecheck")
    yield shell
    shell.run_cell("%unload_ext shapecheck")
    shell.extension_manager.loaded.discard("shapecheck")
    _notebook.unload_ipython_extension(shell)


def run(shell, source: str) -> Cell:
    with capture_output() as cap:
        result = shell.run_cell(source, store_history=True)
    return Cell(result, cap.stdout, cap.stderr, [o.data for o in cap.outputs])


def ours(shell) -> dict:
    """Every hook the extension can add, as found in the shell and the interpreter."""
    return {
        "transformers": [t for t in shell.ast_transformers if isinstance(t, _notebook._CellTransformer)],
        "pre": [f for f in shell.events.callbacks["pre_run_cell"] if getattr(f, "__self__", None).__class__
                is _notebook._Extension],
        "post": [f for f in shell.events.callbacks["post_run_cell"] if getattr(f, "__self__", None).__class__
                 is _notebook._Extension],
        "showtraceback": "showtraceback" in shell.__dict__,
        "finders": [f for f in sys.meta_path if type(f).__name__ == "UserModuleFinder"],
        "magic": "shapecheck" in shell.magics_manager.magics["line"],
        "compiler": type(shell.compile) in _notebook._ANCHORING.values(),
    }


NONE = {"transformers": [], "pre": [], "post": [], "showtraceback": False, "finders": [], "magic": False,
        "compiler": False}


def loaded_once(hooks: dict) -> bool:
    return (len(hooks["transformers"]) == len(hooks["pre"]) == len(hooks["post"]) == len(hooks["finders"]) == 1
            and hooks["showtraceback"] and hooks["magic"] and hooks["compiler"])


# -- loading -------------------------------------------------------------------------------------


def test_load_twice_changes_nothing_and_unload_removes_every_hook(ip):
    assert loaded_once(ours(ip))
    run(ip, "%load_ext shapecheck")
    shapecheck.load_ipython_extension(ip)
    assert loaded_once(ours(ip))
    run(ip, "%unload_ext shapecheck")
    assert ours(ip) == NONE
    cell = run(ip, BUG)
    assert cell.displays == [] and cell.result.result == (5, 5)
    assert "__sc_" not in str(ip.user_ns.get("In", ""))


def test_reload_leaves_one_set_of_hooks_that_works(ip):
    run(ip, "%reload_ext shapecheck")
    assert loaded_once(ours(ip))
    cell = run(ip, BUG)
    assert len(cell.html) == 1


def test_import_shapecheck_does_not_import_ipython():
    p = python("-c", "import sys, shapecheck; print('IPython' in sys.modules, hasattr(shapecheck, "
                     "'load_ipython_extension'), 'load_ipython_extension' in shapecheck.__all__)")
    assert p.stdout.split() == ["False", "True", "False"]


# -- findings under the cell ---------------------------------------------------------------------


def test_a_finding_is_displayed_as_html_and_text(ip):
    cell = run(ip, BUG)
    assert cell.result.result == (5, 5)  # the value is the plain one
    [shown] = cell.displays
    n = cell.result.execution_count
    page = well_formed(shown["text/html"])
    [row] = [r for r in page.cells if r and r[0] == "SC101"]
    assert row[1:5] == ["warning", f"cell [{n}], line 4", "y - y_hat", "y (5,) y_hat (5, 1) \u2192 (5, 5)"]
    assert row[6] == "y.reshape(-1, 1) - y_hat -> (5, 1)"
    text = shown["text/plain"]
    assert text.startswith("shapecheck: 1 warning (SC101) in this cell")
    assert f"SC101   warning     cell [{n}], line 4  y - y_hat" in text
    assert "fix: y.reshape(-1, 1) - y_hat -> (5, 1)" in text
    assert cell.stderr == ""


def test_a_clean_cell_displays_nothing(ip):
    cell = run(ip, CLEAN)
    assert (cell.displays, cell.stderr) == ([], "")
    assert cell.stdout == f"Out[{cell.result.execution_count}]: (4, 3)\n"  # the last expression, as always


def test_a_rerun_is_not_reported_again_unless_the_cell_changed(ip):
    assert len(run(ip, BUG).html) == 1
    assert run(ip, BUG).html == []
    assert len(run(ip, BUG + "  # edited").html) == 1


def test_a_finding_in_a_function_from_an_earlier_cell_is_shown_under_the_calling_cell(ip):
    run(ip, "import numpy as np\ndef residual(y, y_hat):\n    return y - y_hat")
    defining = ip.execution_count - 1
    cell = run(ip, "r = residual(np.zeros(3), np.zeros((3, 1)))")
    [html] = cell.html
    assert f"cell [{defining}], line 3" in html


def test_findings_go_through_warnings_filters(ip):
    run(ip, "import warnings, shapecheck\nwarnings.filterwarnings('ignore', category=shapecheck.ShapeWarning)")
    try:
        assert run(ip, BUG).displays == []
    finally:
        run(ip, "warnings.resetwarnings()")


def test_cells_behave_as_without_shapecheck(ip):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cell = run(ip, "import numpy as np, warnings, inspect\n"
                       "def f(a):\n"
                       "    return a * 2\n"
                       "print('printed', f(np.arange(3)))\n"
                       "warnings.warn('mine')\n"
                       "inspect.getsource(f).splitlines()[1].strip()")
    assert cell.stdout.startswith("printed [0 2 4]")
    [w] = [w for w in caught if str(w.message) == "mine"]
    assert (w.category, w.lineno, w.filename.startswith("<ipython-input-")) == (UserWarning, 5, True)
    assert cell.result.result == "return a * 2"
    cell = run(ip, "x = 1\n\nraise KeyError('k')")
    assert isinstance(cell.result.error_in_exec, KeyError)
    assert "----> 3 raise KeyError('k')" in cell.stdout
    cell = run(ip, "%time t = np.ones(3) + np.ones((3, 1))\n%timeit -n1 -r1 np.ones(3) @ np.ones(3)\nt.shape")
    assert cell.result.success and cell.result.result == (3, 3) and "could not rewrite" not in cell.stderr
    cell = run(ip, "%%time\nu = np.ones(2) * 3\nu.sum()")
    assert cell.result.success and cell.result.result == 6.0 and "Wall time" in cell.stdout


def test_modules_from_the_notebook_folder_are_traced_and_earlier_ones_named(ip, tmp_path):
    (tmp_path / "layers_nb.py").write_text("def residual(y, y_hat):\n    return y - y_hat\n")
    cell = run(ip, "import numpy as np, layers_nb\nlayers_nb.residual(np.zeros(4), np.zeros((4, 1))).shape")
    [html] = cell.html
    assert "layers_nb.py:2" in html
    (tmp_path / "early_nb.py").write_text("X = 1\n")
    run(ip, "%unload_ext shapecheck")
    run(ip, "import early_nb")
    cell = run(ip, "%load_ext shapecheck")
    assert "early_nb was imported before %load_ext shapecheck" in cell.stdout
    assert "importlib.reload(early_nb)" in cell.stdout


# -- magics --------------------------------------------------------------------------------------


def test_off_on_and_status(ip):
    assert "shapecheck off" in run(ip, "%shapecheck off").stdout
    assert run(ip, BUG).displays == []
    status = run(ip, "%shapecheck status").stdout
    assert status.startswith("shapecheck off: only %%shapecheck cells are checked")
    run(ip, "%shapecheck on")
    assert len(run(ip, BUG + "\n").html) == 1
    status = run(ip, "%shapecheck").stdout
    assert status.startswith("shapecheck on: every cell is checked") and "1 warning (SC101)" in status
    assert "unknown argument 'sideways'" in run(ip, "%shapecheck sideways").stdout


def test_cell_magic_checks_one_cell_while_off(ip):
    run(ip, "%shapecheck off")
    cell = run(ip, "%%shapecheck\n" + BUG)
    assert cell.result.result == (5, 5)
    [html] = cell.html
    assert f"cell [{cell.result.execution_count}], line 5" in html  # the line as the user sees it
    cell = run(ip, "%%shapecheck\n" + CRASH)
    assert isinstance(cell.result.error_in_exec, ValueError)
    assert cell.stdout.count("Traceback (most recent call last)") == 1
    assert "----> 5 Z = X @ W" in cell.stdout
    assert f"shapecheck: `X @ W` at cell [{cell.result.execution_count}], line 5" in cell.stdout


def test_report_lists_the_session_findings(ip):
    run(ip, BUG)
    run(ip, "import numpy as np\nb = np.zeros(3)\nq = b - np.zeros((3, 1))")
    cell = run(ip, "%shapecheck report")
    report = cell.result.result
    assert report.title == "shapecheck: 2 warnings (SC101) this session"
    assert [f.site.text for f in report.findings] == ["y - y_hat", "b - np.zeros((3, 1))"]
    assert "text/html" in report._repr_mimebundle_()


# -- crashes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["Plain", "Context", "Verbose"])
def test_crash_explanation_is_shown_as_a_note(ip, mode):
    run(ip, f"%xmode {mode}")
    cell = run(ip, CRASH)
    n = cell.result.execution_count
    assert isinstance(cell.result.error_in_exec, ValueError)
    out = cell.stdout
    note = out[out.index("shapecheck: `X @ W`"):]
    assert note.startswith(f"shapecheck: `X @ W` at cell [{n}], line 4\n")
    assert "  X  ndarray (4, 3) float64" in note and "  W  ndarray (4, 2) float64" in note
    assert "fix:   X.T @ W -> (3, 2)" in note
    assert "<ipython-input" not in note
    assert out.index("ValueError: matmul") < out.index("shapecheck: `X @ W`")
    assert cell.result.error_in_exec.__notes__ == [note.rstrip("\n")]
    # what %debug and %tb walk: the cell's frame stopped at the cell's own line
    tb = sys.last_traceback
    cell_lines = []
    while tb is not None:
        if ip.compile._filename_map.get(tb.tb_frame.f_code.co_filename) == n:
            cell_lines.append(tb.tb_lineno)
        tb = tb.tb_next
    assert cell_lines == [4]


# -- the transformer never raises ----------------------------------------------------------------


def test_an_internal_failure_runs_the_cell_as_written(ip, monkeypatch):
    def broken(self, node):
        raise RuntimeError("boom")

    monkeypatch.setattr(_notebook.Rewriter, "visit", broken)
    errors = _recorder.STATE.internal_errors
    cell = run(ip, BUG)
    assert cell.result.result == (5, 5) and cell.displays == []
    assert cell.stderr == ("shapecheck: could not rewrite this cell (RuntimeError: boom); it ran as written, "
                           "unchecked; please report it\n")
    assert _recorder.STATE.internal_errors == errors + 1
    assert loaded_once(ours(ip))  # IPython did not drop the transformer
    monkeypatch.undo()
    assert len(run(ip, BUG + "\n").html) == 1


def test_an_early_cell_run_again_after_many_others_is_checked(ip, monkeypatch):
    # ipykernel names a cell's file after its text alone: a re-run reuses an old name
    monkeypatch.setattr(ip.compile, "get_code_name", lambda raw, transformed, number: f"/tmp/k/{hash(raw)}.py")
    first = "import numpy as np\nearly = np.zeros(2) - np.zeros((2, 1))"
    assert len(run(ip, first).html) == 1
    for i in range(25):
        run(ip, f"v{i} = {i}")
    run(ip, "%unload_ext shapecheck")
    run(ip, "%load_ext shapecheck")  # a new session of the extension: nothing shown yet
    assert len(run(ip, first).html) == 1


def test_top_level_await_cells_are_checked(ip):
    cell = run(ip, "import asyncio, numpy as np\nawait asyncio.sleep(0)\nq = np.zeros(2) - np.zeros((2, 1))\nq.shape")
    assert cell.result.result == (2, 2) and len(cell.html) == 1


def test_without_note_support_the_explanation_is_printed_after_the_traceback(ip, monkeypatch):
    monkeypatch.setattr(_notebook, "_shows_notes", lambda: False)  # as with IPython < 8.14
    cell = run(ip, CRASH)
    assert cell.stderr.startswith(f"shapecheck: `X @ W` at cell [{cell.result.execution_count}], line 4\n")
    assert "  W  ndarray (4, 2) float64" in cell.stderr


def test_a_function_defined_in_a_cell_runs_in_a_worker_it_is_shipped_to(ip):
    """joblib/loky and dask send notebook functions by value (cloudpickle): the worker has no shapecheck
    hooks, and must compute what the plain function computes."""
    run(ip, "import numpy as np\ndef step(x, w):\n    return [float(v) for v in np.sum(x @ w - 1, axis=0)]")
    cell = run(ip, "import cloudpickle, subprocess, sys\n"
                   "payload = cloudpickle.dumps((step, np.ones((3, 4)), np.ones((4, 2))))\n"
                   "worker = 'import pickle, sys; f, x, w = pickle.loads(sys.stdin.buffer.read()); print(f(x, w))'\n"
                   "p = subprocess.run([sys.executable, '-c', worker], input=payload, capture_output=True)\n"
                   "(p.returncode, p.stdout.decode().strip(), p.stderr.decode()[-300:])")
    assert cell.result.result == (0, "[9.0, 9.0]", ""), cell.stderr
