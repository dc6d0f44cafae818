"""Shared helpers: run `python -m shapecheck` in a subprocess, read fixtures' `Expected:` blocks."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


@dataclass
class Run:
    status: int
    stdout: str
    stderr: str
    report: dict | None  # the JSON report, when one was asked for


def shapecheck(*args: str, cwd: Path = REPO, json_report: bool = False, tmp: Path | None = None,
               env: dict | None = None) -> Run:
    """`python -m shapecheck ARGS` in a subprocess; with json_report, the report is read from a file so
    that stderr holds only what the script (and Python) printed."""
    cmd = [sys.executable, "-m", "shapecheck"]
    out = None
    if json_report:
        out = (tmp or Path(os.environ.get("TMPDIR", "/tmp"))) / f"report-{os.getpid()}-{abs(hash(args))}.json"
        cmd += ["--format", "json", "--output", str(out)]
    p = subprocess.run(cmd + list(args), cwd=cwd, capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, timeout=300)
    report = None
    if out is not None and out.exists():
        report = json.loads(out.read_text())
        out.unlink()
    return Run(p.returncode, p.stdout, p.stderr, report)


def python(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


# -- the Expected: grammar of fixtures/ (see fixtures/README.md) -----------------------------------

SHAPE = r"\((?:-?\d+(?:,\s*-?\d+)*,?)?\)"
FINDING = re.compile(rf"^(?P<code>SC\d{{3}}) (?P<severity>error|warning|info) line (?P<line>\d+)"
                     rf"(?: in (?P<path>\S+))?(?: `(?P<expr>[^`]+)`)?"
                     rf"(?: (?P<shapes>(?:{SHAPE} ?)+)-> (?P<result>{SHAPE}))?$")
CRASH = re.compile(r"^crash (?P<type>\w+) line (?P<line>\d+)(?: `(?P<expr>[^`]+)`)?$")
OPERAND = re.compile(rf"^operand (?P<text>\S+) (?P<kind>\w+) (?P<shape>{SHAPE})$")
FIX = re.compile(rf"^fix `(?P<expr>[^`]+)`(?: -> (?P<shape>{SHAPE}))?$")


def parse_shape(text: str) -> list[int]:
    return [int(d) for d in re.findall(r"-?\d+", text)]


def expected(path: Path) -> list[str]:
    doc = ast.get_docstring(ast.parse(path.read_bytes())) or ""
    if "Expected:" not in doc:
        return []
    return [line.strip() for line in doc.split("Expected:", 1)[1].splitlines() if line.strip()]


def fixture_scripts() -> list[Path]:
    scripts = sorted((FIXTURES / "seeds").glob("*.py")) + sorted((FIXTURES / "rules").glob("*.py"))
    scripts.append(FIXTURES / "rules" / "uses_module" / "main.py")
    # syntax_error.py and latin1.py do not even compile: test_cli checks them.
    return [p for p in scripts if p.name not in ("syntax_error.py", "latin1.py") and expected(p)]


@pytest.fixture(scope="session")
def fixture_runs(tmp_path_factory):
    """Each fixture run once under shapecheck (JSON report), shared by the tests that read it."""
    cache: dict[Path, Run] = {}
    tmp = tmp_path_factory.mktemp("reports")

    def get(path: Path) -> Run:
        if path not in cache:
            cache[path] = shapecheck(str(path.relative_to(REPO)), json_report=True, tmp=tmp)
        return cache[path]

    return get
