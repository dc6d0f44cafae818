"""The HTML report: `--format html` through the CLI, parsed; escaping; the gradient check's heat maps."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np

from conftest import FIXTURES, shapecheck
from shapecheck import _html
from shapecheck._gradcheck import gradcheck

VOID = {"meta", "br", "hr", "img", "input", "link", "wbr"}


class Page(HTMLParser):
    """Checks nesting as it parses; keeps the text, the tags and the attributes seen."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.cells: list[list[str]] = []  # table rows, as the text of their cells
        self._row: list[str] | None = None
        self.feed(html)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag == "tr":
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._row.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.cells.append(self._row)
            self._row = None
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self._row:
            self._row[-1] += data

    @property
    def all_text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.text))


def well_formed(html: str) -> Page:
    page = Page(html)
    assert page.errors == []
    # Self-contained and static: nothing to fetch, nothing to run.
    assert not {"script", "link", "iframe", "img", "style"} & set(page.tags)
    assert not [v for k, v in page.attrs if k in ("src", "href") or (v and "url(" in v)]
    assert not [k for k, _ in page.attrs if k.startswith("on")]
    return page


def test_cli_writes_a_self_contained_page_with_findings_and_crash(tmp_path):
    out = tmp_path / "report.html"
    run = shapecheck("--format", "html", "-o", str(out), str(FIXTURES / "seeds" / "iris_full_batch_bug.py"))
    assert run.status == 1  # the script's own status
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    page = well_formed(html)
    text = page.all_text
    assert "crashed with ValueError (exit 1)" in text
    [row] = [r for r in page.cells if r and r[0] == "SC101"]
    assert row[1:5] == ["warning", "iris_full_batch_bug.py:53", "y - y_hat", "y (130,) y_hat (130, 1) \u2192 (130, 130)"]
    assert "y.reshape(-1, 1) - y_hat" in row[6]
    assert "Crash: ValueError at" in text and "iris_full_batch_bug.py:55" in text
    operands = {r[0]: r[1:3] for r in page.cells if r and r[0] in ("delta3", "w2.T")}
    assert operands == {"delta3": ["ndarray", "(130, 130)"], "w2.T": ["ndarray", "(1, 8)"]}
    assert "Shape log" not in text


def test_log_and_gradient_check_sections(tmp_path):
    out = tmp_path / "report.html"
    script = FIXTURES / "grad" / "square_bug_transpose.py"
    run = shapecheck("--format", "html", "--log", "--grad", "loss,grads,params", "-o", str(out), str(script))
    assert run.status == 1  # the gradient check failed: --grad fails the run like a test
    page = well_formed(out.read_text(encoding="utf-8"))
    text = page.all_text
    assert "Shape log" in text and "Gradient check" in text
    assert "FAILED" in text
    status = {r[0]: r[4] for r in page.cells if r and r[0] in ("W1", "W2", "W3")}
    assert status == {"W1": "ok", "W2": "wrong", "W3": "ok"}
    assert "transpose" in text
    # one heat map, for the wrong (6, 6) W2: the entries compared one by one are coloured, the rest grey
    assert text.count("|analytic \u2212 numeric| of") == 1 and "of W2 (6, 6)" in text
    titles = [v for k, v in page.attrs if k == "title"]
    checked = int(next(r[5] for r in page.cells if r and r[0] == "W2").split("/")[0])
    assert len(titles) == 36 and sum("not compared" not in t for t in titles) == checked
    # the shape log lists the forward pass's matrix products with their shapes
    assert any(r[2] == 'X @ p["W1"]' and "(16, 5)" in r[3] for r in page.cells if len(r) > 3)


def test_user_text_is_escaped(tmp_path):
    script = tmp_path / "tags.py"
    script.write_text('import numpy as np\n'
                      'd = {"<b>y</b>": np.zeros(3)}\n'
                      'r = d["<b>y</b>"] - np.zeros((3, 1))  # </table><script>alert(1)</script>\n'
                      'print("done")\n')
    out = tmp_path / "report.html"
    run = shapecheck("--format", "html", "-o", str(out), str(script))
    assert run.status == 0
    html = out.read_text(encoding="utf-8")
    page = well_formed(html)
    assert "<b>y</b>" not in html and "&lt;b&gt;y&lt;/b&gt;" in html
    [row] = [r for r in page.cells if r and r[0] == "SC101"]
    assert row[3] == 'd["<b>y</b>"] - np.zeros((3, 1))'


def test_heat_map_shows_a_single_wrong_row_of_a_large_matrix():
    errors = np.zeros((100, 60))
    errors[37] = 5.0  # one wrong row
    row = SimpleNamespace(name="W1", status="wrong", errors=errors)
    page = well_formed(_html.heat_map(row))
    cells = [(k, v) for k, v in page.attrs if k == "style" and v.startswith("width:14px")]
    assert len(cells) == _html.HEAT_MAX * _html.HEAT_MAX  # sampled into blocks
    dark = [v for _, v in cells if _html._heat(1.0) in v]
    assert len(dark) == _html.HEAT_MAX  # exactly the one block row that holds row 37
    assert "in 24 x 24 blocks" in page.all_text


def test_heat_map_greys_entries_not_compared_and_skips_what_it_cannot_show():
    errors = np.full((3, 4), np.nan)
    errors[0, 1] = 2.0
    page = well_formed(_html.heat_map(SimpleNamespace(name="W", status="wrong", errors=errors)))
    titles = [v for k, v in page.attrs if k == "title"]
    assert titles.count("[0, 1] 2") == 1 and sum("not compared" in t for t in titles) == 11
    assert _html.heat_map(SimpleNamespace(name="W", status="ok", errors=errors)) == ""
    assert _html.heat_map(SimpleNamespace(name="b", status="wrong", errors=np.ones(3))) == ""
    assert _html.heat_map(SimpleNamespace(name="W", status="wrong")) == ""


def test_heat_map_of_a_real_check_darkens_the_wrong_row():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 30))

    def grads(p):
        g = (p["W"] @ X) @ X.T / 30
        g[2] *= 3  # row 2 of dW is three times too large
        return {"W": g}

    report = gradcheck(lambda p: 0.5 * float(np.sum((p["W"] @ X) ** 2)) / 30, grads,
                       {"W": rng.normal(size=(6, 8))}, mode="full")
    page = well_formed(report._repr_html_())
    values = {t.split("] ")[0] + "]": float(t.split("] ")[1]) for k, t in page.attrs if k == "title"}
    assert len(values) == 48
    wrong_row = {k for k, v in values.items() if v > 1e-6}
    assert wrong_row and all(k.startswith("[2, ") for k in wrong_row)


def test_grad_report_repr_html_colours_the_status():
    w = np.arange(6.0).reshape(2, 3)
    report = gradcheck(lambda p: float(np.sum(p["w"] ** 3)), lambda p: {"w": -3 * p["w"] ** 2}, {"w": w})
    page = well_formed(report._repr_html_())
    [row] = [r for r in page.cells if r and r[0] == "w"]
    assert row[4] == "wrong"
    assert "FAILED" in page.all_text and "sign" in page.all_text
    status_style = [v for k, v in page.attrs if k == "style" and v and _html.STATUS["wrong"][1] in v]
    assert status_style


def test_cell_locations_read_as_cells():
    assert _html.location("cell [3]", 2) == "cell [3], line 2"
    assert _html.location("net.py", 12) == "net.py:12"
