"""The example course notebook, executed once by a real ipykernel through nbclient; each code cell's
metadata `shapecheck` says what must appear under it (see the notebook's first cell)."""

from __future__ import annotations

import json
import re
import sys

import pytest

from conftest import FIXTURES
from test_html import well_formed

NOTEBOOK = FIXTURES / "notebooks" / "mnist_course.ipynb"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook after one run, in its own folder (it reads ../data), by a kernel on this interpreter."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    specs = tmp_path_factory.mktemp("kernels")
    (specs / "shapecheck-test").mkdir()
    (specs / "shapecheck-test" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "shapecheck test", "language": "python"}))
    km = KernelManager(kernel_name="shapecheck-test", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # Cells tagged raises-exception may fail; any other error fails the run.
    NotebookClient(nb, km=km, timeout=300, resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return nb


def _cells(nb, key):
    return [c for c in nb.cells if c.cell_type == "code" and key in c.metadata.get("shapecheck", {})]


def _shapecheck_html(cell) -> list[str]:
    return [o.data["text/html"] for o in cell.outputs if o.output_type == "display_data" and "text/html" in o.data]


def _error(cell):
    errors = [o for o in cell.outputs if o.output_type == "error"]
    return errors[0] if errors else None


def test_every_cell_with_expectations_ran(executed):
    expected = [c for c in executed.cells if c.cell_type == "code" and "shapecheck" in c.metadata]
    assert len(expected) == len([c for c in executed.cells if c.cell_type == "code"])
    assert all(c.execution_count for c in expected)
    streams = "".join(o.text for c in expected for o in c.outputs if o.output_type == "stream")
    assert "could not rewrite" not in streams and "internal error" not in streams


def test_cells_with_nothing_to_say_show_nothing_of_shapecheck(executed):
    quiet = _cells(executed, "nothing")
    assert len(quiet) >= 5  # among them the bias (3,) added to (4, 3)
    for cell in quiet:
        assert _shapecheck_html(cell) == [], cell.source
        assert _error(cell) is None, cell.source
        assert not [o for o in cell.outputs if o.output_type == "stream" and "shapecheck" in o.text], cell.source
    assert any("np.ones((4, 3)) + np.array([0.1, 0.2, 0.3])" in c.source for c in quiet)


def test_findings_are_displayed_as_an_html_table_under_their_cell(executed):
    cells = _cells(executed, "findings")
    assert len(cells) == 2
    for cell in cells:
        want = cell.metadata["shapecheck"]
        [html] = _shapecheck_html(cell)
        page = well_formed(html)
        rows = [r for r in page.cells if r and re.fullmatch(r"SC\d{3}", r[0])]
        assert sorted(r[0] for r in rows) == sorted(want["findings"]), cell.source
        for shape in want.get("shapes", []):
            assert any(shape in r[4] for r in rows), (shape, rows)
        if "location" in want:
            assert rows[0][2] == f"cell [{cell.execution_count}], {want['location']}"
        [plain] = [o.data["text/plain"] for o in cell.outputs if o.output_type == "display_data"]
        assert plain.startswith("shapecheck: ") and want["findings"][0] in plain


def test_the_sc101_cell_names_both_shapes(executed):
    [cell] = [c for c in _cells(executed, "findings") if "SC101" in c.metadata["shapecheck"]["findings"]]
    [html] = _shapecheck_html(cell)
    [row] = [r for r in well_formed(html).cells if r and r[0] == "SC101"]
    assert row[3] == "y - y_hat" and row[4] == "y (5,) y_hat (5, 1) \u2192 (5, 5)"


def test_crashes_carry_the_explanation_in_the_error_output(executed):
    cells = _cells(executed, "crash")
    assert len(cells) == 2
    for cell in cells:
        want = cell.metadata["shapecheck"]["crash"]
        error = _error(cell)
        assert error is not None and error.ename == want["type"]
        text = ANSI.sub("", "\n".join(error.traceback))
        head = f"shapecheck: `{want['expression']}` at cell [{cell.execution_count}], {want['location']}"
        note = text[text.index(head):]
        for operand in want["operands"]:  # "y Series (300,)": the note's operand line, columns aligned
            name, desc = operand.split(" ", 1)
            assert re.search(rf"^  {re.escape(name)} +{re.escape(desc)} \w+", note, re.M), (operand, note)
        if "fix" in want:
            assert re.search(rf"^  fix:\s+{re.escape(want['fix'])} ->", note, re.M), note
        assert "ipykernel_" not in note and "<ipython-input" not in note


def test_x_at_w_crash_names_operands_and_shapes(executed):
    [cell] = [c for c in _cells(executed, "crash") if c.metadata["shapecheck"]["crash"]["expression"] == "X @ W"]
    text = ANSI.sub("", "\n".join(_error(cell).traceback))
    assert "  X  ndarray (784, 300) float64" in text and "  W  ndarray (10, 784) float64" in text


def test_the_gradient_check_is_shown_as_html(executed):
    [cell] = _cells(executed, "gradcheck")
    [out] = [o for o in cell.outputs if o.output_type == "execute_result"]
    page = well_formed(out.data["text/html"])
    assert "passed" in page.all_text
    assert {r[0]: r[4] for r in page.cells if r and r[0] in ("W", "b")} == {"W": "ok", "b": "ok"}
