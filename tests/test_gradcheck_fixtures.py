"""End to end over the fixture scripts: run each as a script, check the names its docstring gives,
and compare every row with its ``Expected:`` lines (in auto and full mode)."""

from __future__ import annotations

import ast
import json
import runpy
from pathlib import Path

import pytest

from shapecheck._gradcheck import gradcheck_from_namespace

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "grad").glob("*.py"))


def expectations(path: Path) -> tuple[str, list[tuple[str, str, str, float | None]] | None]:
    """(the Grad: spec, the expected wrong rows or None for "passed") from the module docstring."""
    doc = ast.get_docstring(ast.parse(path.read_text()))
    spec = next(line.split(":", 1)[1].strip() for line in doc.splitlines() if line.startswith("Grad:"))
    rows = []
    for line in doc.splitlines():
        if not line.startswith("Expected:"):
            continue
        words = line.split(":", 1)[1].split()
        if words == ["passed"]:
            return spec, None
        name, status, kind, *factor = words
        rows.append((name, status, kind, float(factor[0]) if factor else None))
    return spec, rows


def run_fixture(path: Path, **options):
    namespace = runpy.run_path(str(path), run_name="__shapecheck_fixture__")
    spec, expected = expectations(path)
    return gradcheck_from_namespace(namespace, spec, **options), expected


def test_fixtures_are_there():
    assert len(FIXTURES) >= 15
    styles = {p.stem.split("_")[0] for p in FIXTURES}
    assert {"colvec", "rowmajor", "colmajor", "layers"} <= styles


@pytest.mark.parametrize("mode", ["auto", "full"])
@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture_diagnosis(path, mode):
    report, expected = run_fixture(path, mode=mode)
    if expected is None:
        assert report.passed, str(report)
        return
    assert not report.passed
    by_name = {r.name: r for r in report.rows}
    for name, status, kind, factor in expected:
        row = by_name[name]
        assert (row.status, row.diagnosis.kind) == (status, kind), f"{name}:\n{report}"
        if factor is not None:
            assert row.diagnosis.factor == pytest.approx(factor, rel=1e-2), f"{name}:\n{report}"
    wrong = {name for name, *_ in expected}
    for row in report.rows:
        if row.name not in wrong:
            assert row.status in ("ok", "kink"), f"{row.name} flagged:\n{report}"
    # Every rendering works on every fixture and the JSON is plain data.
    assert json.loads(json.dumps(report.to_dict(), allow_nan=False))["passed"] is False
    assert report.to_markdown().startswith("**gradient check FAILED**")


def test_fixture_parameters_untouched_by_the_check():
    path = next(p for p in FIXTURES if p.stem == "colmajor_bug_missing_1_over_m")
    namespace = runpy.run_path(str(path), run_name="__shapecheck_fixture__")
    before = {k: v.copy() for k, v in namespace["parameters"].items()}
    gradcheck_from_namespace(namespace, "compute_cost,backward,parameters", mode="full")
    for k, v in namespace["parameters"].items():
        assert v.tobytes() == before[k].tobytes()
