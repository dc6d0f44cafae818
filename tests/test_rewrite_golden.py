"""The rewriter's output, pinned: for every fixture script (and tests/golden/constructs.py), the rewritten
tree (ast.dump with locations) and its site tables are exactly what they were when the golden files were
written (from the rewriter before its single-walk rework).  Regenerate only on purpose:
`SHAPECHECK_WRITE_GOLDEN=1 python -m pytest tests/test_rewrite_golden.py`.
"""

from __future__ import annotations

import ast
import gzip
import os
import sys
import warnings
from pathlib import Path

import pytest

from shapecheck import _recorder, _rewrite
from shapecheck._runner import read_source

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"


def _parsed(path: Path) -> tuple[str, ast.Module] | None:
    try:
        source = read_source(str(path))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return source, ast.parse(source, str(path))
    except SyntaxError:  # fixtures/rules/syntax_error.py
        return None


SCRIPTS = sorted(p for p in [*(REPO / "fixtures").rglob("*.py"), GOLDEN / "constructs.py"] if _parsed(p))


def _rewritten(path: Path, monkeypatch) -> str:
    source, tree = _parsed(path)
    # ids numbered from 0 whatever the recorder claimed before
    monkeypatch.setattr(_recorder, "claim", lambda make_sites: make_sites(0))
    rw = _rewrite.Rewriter(source, path.name)
    tree = rw.visit(tree)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)  # constructs.py's 1200-term sum, too deep to rewrite, is dumped
    try:
        # one line a top-level statement: a difference is shown by statement
        lines = [ast.dump(stmt, include_attributes=True) for stmt in tree.body]
    finally:
        sys.setrecursionlimit(limit)
    lines += [repr(site) for site in rw.sites]
    lines += [repr(rw.positions), repr(sorted(rw.lookups.items())), repr(rw.untraced)]
    return "\n".join(lines) + "\n"


# ast.dump's text is the interpreter's: 3.12 adds type_params, 3.13 omits empty fields.  The goldens were
# written on 3.11 (CI's interpreter); the differential and fixture tests cover the rewriter on the others.
@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="golden ast.dump text was written by Python 3.11")
@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_rewritten_tree_and_sites_unchanged(path, monkeypatch):
    got = _rewritten(path, monkeypatch)
    golden = GOLDEN / (str(path.relative_to(REPO)).replace("/", "__") + ".txt.gz")
    if os.environ.get("SHAPECHECK_WRITE_GOLDEN"):
        golden.write_bytes(gzip.compress(got.encode(), mtime=0))
    assert golden.exists(), f"no golden file {golden.name}"
    want = gzip.decompress(golden.read_bytes()).decode()
    for k, (a, b) in enumerate(zip(got.splitlines(), want.splitlines())):
        assert a == b, f"line {k + 1} of the dump differs"
    assert got == want
