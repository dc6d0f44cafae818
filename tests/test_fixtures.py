"""End to end: `python -m shapecheck` on every fixture script, checked against its `Expected:` block."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CRASH, FINDING, FIX, OPERAND, REPO, expected, fixture_scripts, parse_shape

SCRIPTS = fixture_scripts()


def _id(p: Path) -> str:
    return str(p.relative_to(REPO / "fixtures"))


def _findings_text(report: dict) -> str:
    return "\n".join(f"  {f['code']} {f['severity']} {f['path']}:{f['line']} `{f['expression']}`"
                     for f in report["findings"]) or "  (none)"


@pytest.mark.parametrize("script", SCRIPTS, ids=_id)
def test_fixture(script: Path, fixture_runs):
    run = fixture_runs(script)
    assert run.report is not None, f"no report; stderr:\n{run.stderr}"
    report = run.report
    loud = [f for f in report["findings"] if f["severity"] in ("error", "warning")]
    crash = report["crash"]
    for item in expected(script):
        if item.startswith("exit "):
            assert run.status == int(item.split()[1]), f"exit status; stderr:\n{run.stderr[-3000:]}"
        elif item == "clean":
            assert not loud, f"expected no warning or error, got:\n{_findings_text(report)}"
        elif item.startswith("no SC"):
            code = item.split()[1]
            assert not [f for f in loud if f["code"] == code], f"unexpected {code}:\n{_findings_text(report)}"
        elif m := FINDING.match(item):
            want_path = (script.parent / m["path"]).relative_to(REPO) if m["path"] else script.relative_to(REPO)
            hits = [f for f in report["findings"] if f["code"] == m["code"] and f["line"] == int(m["line"])
                    and Path(f["path"]) == want_path]
            assert hits, f"missing {item}; found:\n{_findings_text(report)}"
            f = hits[0]
            assert f["severity"] == m["severity"], item
            if m["expr"]:
                assert f["expression"] == m["expr"], item
            if m["shapes"]:
                import re

                shapes = [parse_shape(s) for s in re.findall(r"\([^)]*\)", m["shapes"])]
                assert [o["shape"] for o in f["operands"]] == shapes, item
                assert f["result_shape"] == parse_shape(m["result"]), item
        elif m := CRASH.match(item):
            assert crash is not None, "expected a crash section"
            assert crash["type"] == m["type"] and crash["line"] == int(m["line"]), crash
            assert crash["path"] == str(script.relative_to(REPO)), crash
            if m["expr"]:
                assert crash["expression"] == m["expr"], crash
        elif m := OPERAND.match(item):
            ops = {o["text"]: o for o in crash["operands"]}
            assert m["text"] in ops, f"operand {m['text']} not in {list(ops)}"
            assert ops[m["text"]]["kind"] == m["kind"], ops[m["text"]]
            assert ops[m["text"]]["shape"] == parse_shape(m["shape"]), ops[m["text"]]
        elif m := FIX.match(item):
            want = f"{m['expr']} -> {m['shape']}" if m["shape"] else f"{m['expr']}  ("
            assert any(fx.startswith(want) for fx in crash["fixes"]), f"{want!r} not in {crash['fixes']}"
        else:
            pytest.fail(f"unknown Expected item in {script.name}: {item!r}")


@pytest.mark.parametrize("script", [s for s in SCRIPTS if any(i.startswith("crash") for i in expected(s))],
                         ids=_id)
def test_crash_keeps_pythons_traceback_and_adds_a_note(script: Path, fixture_runs):
    """The traceback still points at the user's line; the explanation is a note under it."""
    run = fixture_runs(script)
    crash = run.report["crash"]
    err = run.stderr
    # numpy chains some errors to a cause that has no traceback (`AttributeError: 'float' object has no
    # attribute 'exp'` above an object-dtype TypeError): Python prints the cause first, as without shapecheck.
    cause = "\n\nThe above exception was the direct cause of the following exception:\n\n"
    err = err.rsplit(cause, 1)[-1]
    assert err.startswith("Traceback (most recent call last):"), err[:500]
    assert f'File "{script}", line {crash["line"]}' in err
    assert "shapecheck/" not in err.split("shapecheck: `")[0], "a shapecheck frame leaked into the traceback"
    note = err.split(f"\n{crash['type']}", 1)[1]  # `AssertionError` alone when it has no message
    assert f"shapecheck: `{crash['expression']}` at {crash['path']}:{crash['line']}" in note
