"""SC202 pandas label alignment, and crash explanations for a numpy method called on any pandas expression.

The rule tables describe real pandas objects with the recorder's own `describe` and `_analyse` (what a run
records once per signature), then judge the record with the pure rules: SC202 fires on the bugs, SC201
stands aside where SC202 speaks, and the look-alike idioms stay quiet (or a note).  The end-to-end tests
run fixtures and scripts under `python -m shapecheck`, and apply each offered fix to prove it runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import FIXTURES, shapecheck
from shapecheck._events import OperandSpec, Record, Site, SiteLog
from shapecheck._recorder import _analyse, _index_text, _labels, describe
from shapecheck._rules import Context, pandas_mixing
from shapecheck._rules_pandas import label_alignment

rng = np.random.default_rng(0)
DF = pd.DataFrame(rng.normal(size=(6, 3)), columns=["a", "b", "c"])
SQ = pd.DataFrame(rng.normal(size=(3, 3)))  # square, labels 0..2 on both axes
W = pd.DataFrame(rng.normal(size=(3, 2)))  # weights made from a bare array: rows 0..2
W_NAMED = pd.DataFrame(W.to_numpy(), index=DF.columns)
W_REORDERED = pd.DataFrame(W.to_numpy(), index=["c", "a", "b"])
S = DF["a"]  # labels 0..5, like DF's rows
SHUFFLED = S.sample(frac=1.0, random_state=0)
OTHER = pd.Series(np.ones(6), index=range(10, 16))
PART = pd.Series(np.ones(4))  # 0..3 against S.iloc[2:] (2..5): two in common
MASK = DF["a"] > 0


def spec(text: str, **kw) -> OperandSpec:
    return OperandSpec(text, name=text if text.isidentifier() else None, **kw)


def judge(text: str, *objs, kind: str = "binop", specs=None, keywords=(), logs=()):
    """(the site's findings as (code, severity), the SC202 finding) for `text` run on real objects."""
    if specs is None:
        if kind in ("binop", "compare"):
            left, op, right = text.split(" ", 2)
            specs = [spec(left), spec(right)]
        else:
            recv, rest = text.split(".", 1)
            specs = [spec(recv)] + [spec(t.strip()) for t in rest[rest.index("(") + 1:-1].split(",")
                                    if "=" not in t]
    op = text.split(" ")[1] if kind in ("binop", "compare") else text.split("(")[0]
    callee = None if kind in ("binop", "compare") else op.rsplit(".", 1)[-1]
    site = Site(id=0, path="net.py", line=9, col=1, end_line=9, end_col=len(text) + 1, kind=kind, op=op,
                text=text, operands=tuple(specs), scope="<module>", callee=callee, keywords=tuple(keywords))
    rec = Record(operands=tuple(map(describe, objs)), count=1)
    _analyse(site, rec, objs)
    ctx = Context([SiteLog(site, [rec], last=rec), *logs])
    found = [f for f in (pandas_mixing(site, rec, ctx), label_alignment(site, rec, ctx)) if f is not None]
    sc202 = [f for f in found if f.code == "SC202"]
    return sorted((f.code, f.severity) for f in found), (sc202[0] if sc202 else None)


def assigned(name: str, text: str, value) -> SiteLog:
    """The log of `name = text` run at line 5, as the recorder keeps it."""
    site = Site(id=1, path="net.py", line=5, col=1, end_line=5, end_col=len(text) + 1, kind="assign", op="=",
                text=text, operands=(), scope="<module>", targets=(name,))
    rec = Record(operands=(), result=describe(value), count=1)
    return SiteLog(site, [rec], last=rec)


WARN, INFO = ("SC202", "warning"), ("SC202", "info")


@pytest.mark.parametrize("text, objs, kw, want, fix", [
    # DataFrame.dot / @: the shapes agree, the labels do not (pandas raises "matrices are not aligned")
    ("X.dot(W)", (DF, W), {"kind": "method"}, [WARN], "X.dot(W.to_numpy()) -> (6, 2) (pairs them by position), "
     "or label W's rows where it is made: pd.DataFrame(..., index=X.columns)"),
    ("X @ W", (DF, W), {}, [WARN], "X @ W.to_numpy() -> (6, 2)"),
    ("X.dot(W)", (DF, W_REORDERED), {"kind": "method"}, [INFO], "X.dot(W.to_numpy()) -> (6, 2) (if W's rows"),
    # a 1-D array as long as the rows: pandas lines it up with the columns and raises
    ("df - v", (DF, np.arange(6.0)), {}, [WARN], "df.sub(v, axis=0) -> (6, 3) (to go row by row)"),
    ("v - df", (np.arange(6.0), DF), {}, [WARN], "df.rsub(v, axis=0) -> (6, 3)"),
    ("df / v", (DF, np.arange(6.0)), {}, [WARN], "df.div(v, axis=0) -> (6, 3)"),
    # a Series labelled like the rows: a (6, 9) frame of NaN
    ("df - s", (DF, S), {}, [WARN], "df.sub(s, axis=0) -> (6, 3)"),
    ("s * df", (S, DF), {}, [WARN], "df.mul(s, axis=0) -> (6, 3)"),
    ("df.sub(s)", (DF, S), {"kind": "method"}, [WARN], "df.sub(s, axis=0) -> (6, 3)"),
    # a Series whose labels are neither the columns nor the rows
    ("df - s", (DF, OTHER), {}, [WARN], "df.sub(s.to_numpy(), axis=0) -> (6, 3)"),
    # two Series or frames labelled differently: NaN where a label is in one only
    ("a + b", (S.iloc[2:], PART), {}, [WARN], "a.to_numpy() + b.to_numpy() -> (4,)"),
    ("a == b", (S.iloc[2:], PART), {"kind": "compare"}, [WARN], "a.to_numpy() == b.to_numpy() -> (4,)"),
    ("a == b", (S, SHUFFLED), {"kind": "compare"}, [WARN], "a.to_numpy() == b.to_numpy() -> (6,)"),  # raises
    ("a + b", (DF[["a", "b"]], DF[["b", "c"]]), {}, [WARN], "a.to_numpy() + b.to_numpy() -> (6, 2)"),
    ("a - b", (S, OTHER.iloc[:3]), {}, [WARN], "select the same rows in both first: they have 6 and 3 rows"),
])
def test_sc202_fires(text, objs, kw, want, fix):
    got, f = judge(text, *objs, **kw)
    assert got == want
    if fix is not None:
        assert f.fix.startswith(fix), f.fix


def test_a_square_frame_minus_its_own_row_means_is_caught_by_the_reduction():
    """Labels cannot tell here (0..2 on both axes): the operand is `sq.mean(axis=1)` of that very frame."""
    specs = [spec("sq"), OperandSpec("sq.mean(axis=1)", reduced="sq", reduction_axis=1)]
    got, f = judge("sq - sq.mean(axis=1)", SQ, SQ.mean(axis=1), specs=specs)
    assert got == [WARN]
    assert "sq.mean(axis=1) is one value per row of sq" in f.message
    assert f.fix.startswith("sq.sub(sq.mean(axis=1), axis=0) -> (3, 3)")
    specs = [spec("sq"), OperandSpec("sq.mean(axis=0)", reduced="sq", reduction_axis=0)]
    assert judge("sq - sq.mean(axis=0)", SQ, SQ.mean(axis=0), specs=specs)[0] == []  # per column: meant


def test_a_series_made_by_position_next_to_shuffled_labels_is_a_warning():
    """The same labels in another order: no NaN gives it away.  A warning only when one side was made by
    position (`pd.Series(values)` without `index=`), else pandas pairs labels that name rows: a note."""
    made = pd.Series(np.zeros(6))
    log = assigned("pred", "pd.Series(np.zeros(6))", made)
    got, f = judge("y_test - pred", SHUFFLED, made, logs=[log])
    assert got == [WARN]
    assert re.search(r"y_test \(Series \(6,\), index \[\d, \d, \d, \d, \.\.\.\], 6 labels\) and pred \(Series "
                     r"\(6,\), index RangeIndex 0\.\.5\) hold the same labels in different orders", f.message)
    assert f.fix.startswith("y_test.reset_index(drop=True) - pred -> (6,) (pairs them by position), or give pred "
                            "the labels where it is made: index=y_test.index")
    labelled = pd.Series(np.zeros(6), index=SHUFFLED.index)
    log = assigned("pred", "pd.Series(np.zeros(6), index=y_test.index)", labelled)
    assert judge("y_test - pred", SHUFFLED, labelled, logs=[log])[0] == []
    log = assigned("pred", "pd.Series(np.zeros(6), index=range(6))", made)  # labels said: pandas pairs them
    assert judge("y_test - pred", SHUFFLED, made, logs=[log])[0] == [INFO]
    assert judge("a + b", SHUFFLED, S)[0] == [INFO]  # both labelled by the data: `s.sort_values() + t`


def test_partial_overlap_counts_the_nan():
    _, f = judge("a + b", S.iloc[2:], PART)
    assert f.message.endswith("only 2 of their labels are in both, and the result has 6 labels, 4 of them NaN")
    _, f = judge("df - s", DF, OTHER)
    assert "0 of them match, and the result (6, 9) has 9 NaN columns" in f.message


@pytest.mark.parametrize("text, objs, kw", [
    ("a - b", (DF.loc[MASK, "a"], DF.loc[MASK, "b"]), {}),  # the same rows picked from both
    ("df.sub(v)", (DF, np.arange(6.0)), {"kind": "method", "keywords": [("axis", "0")]}),
    ("df.div(s)", (DF, S), {"kind": "method", "keywords": [("axis", "0")]}),
    ("df - m", (DF, DF.mean()), {}),  # a value per column, on purpose
    ("df - m", (DF, DF.mean()[["c", "a", "b"]]), {}),  # the same, in another order: pandas reorders
    ("s + c", (S, 2.0), {}),
    ("x - v", (DF.values, np.arange(6.0)[:, None]), {}),
    ("X.dot(W)", (DF, W_NAMED), {"kind": "method"}),
    ("a + b", (S, S * 2), {}),
    ("a.add(b)", (S.iloc[2:], PART), {"kind": "method", "keywords": [("fill_value", "0")]}),
    ("reg.fit(X, y)", (object(), DF, S), {"kind": "method"}),
    ("X.merge(Y)", (DF, DF[["a"]]), {"kind": "method"}),
])
def test_sc202_stays_quiet_on_look_alikes(text, objs, kw):
    got, _ = judge(text, *objs, **kw)
    assert [g for g in got if g[0] == "SC202"] == [], got
    assert not [g for g in got if g[1] != "info"], got


@pytest.mark.parametrize("text, objs, want", [
    ("df * v", (DF, np.arange(3.0)), [("SC201", "info")]),  # per column, as numpy would
    ("sq - v", (SQ, np.arange(3.0)), [("SC201", "info")]),  # square: nothing says rows were meant
    ("s - v", (S, np.arange(6.0)), [("SC201", "info")]),
])
def test_sc201_keeps_the_numpy_cases_sc202_does_not_judge(text, objs, want):
    assert judge(text, *objs)[0] == want


# -- what the recorder reads off real indexes (once per signature) ---------------------------------

@pytest.mark.parametrize("op, x, y, want", [
    ("-", DF, DF.mean(), "equal"),
    ("-", DF, DF.mean(axis=1), "rows"),
    ("-", DF, OTHER, "differ"),
    ("-", S, SHUFFLED, "reordered"),
    ("+", S.iloc[2:], PART, "differ"),
    ("==", S, S * 2, "equal"),
    ("-", DF, DF[["b", "a", "c"]], "reordered"),
    ("+", DF[["a", "b"]], DF[["b", "c"]], "differ"),
    ("dot", DF, W, "differ"),
    ("@", DF, W_NAMED, "equal"),
    ("dot", DF, W_REORDERED, "reordered"),
    ("sub", S, SHUFFLED, "reordered"),
    ("merge", DF, DF, None),  # does not pair values by label: not read
])
def test_labels_relation(op, x, y, want):
    assert _labels(op, x, y) == want


def test_index_text_shows_plain_labels_and_never_runs_another_objects_repr():
    class Label:
        def __repr__(self):
            raise AssertionError("a user's __repr__ ran")

        def __hash__(self):
            return 1

    assert _index_text(pd.RangeIndex(3, 9)) == "RangeIndex 3..8"
    assert _index_text(pd.Index(["a", "b"])) == "['a', 'b']"
    assert _index_text(pd.Index([5, 2, 1, 3, 0])) == "[5, 2, 1, 3, ...], 5 labels"
    assert _index_text(pd.Index([Label()], dtype=object)) == "Index of 1 labels"


# -- end to end ---------------------------------------------------------------------------------------

def _apply_fix(script: Path, line: int, expr: str, fix: str, tmp_path: Path) -> str:
    """Run the fixture with the failing expression at `line` replaced by the fix, without shapecheck."""
    lines = script.read_text().splitlines()
    assert expr in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(expr, fix)
    fixed = tmp_path / script.name
    fixed.write_text("\n".join(lines) + "\n")
    p = subprocess.run([sys.executable, str(fixed)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.parametrize("name, line, printed", [
    ("sc202_dot_labels.py", 27, "(5, 2)"),
    ("sc202_frame_rows.py", 23, "(6, 3)"),
    ("crash_series_reshape_expr.py", 20, "(50, 1)"),
])
def test_the_crash_fix_offered_runs_and_gives_its_shape(name, line, printed, fixture_runs, tmp_path):
    script = FIXTURES / "rules" / name
    crash = fixture_runs(script).report["crash"]
    expr, shape = crash["fixes"][0].split("  (")[0].split(" -> ")
    assert shape == printed
    out = _apply_fix(script, line, crash["expression"], expr, tmp_path)
    assert out.strip().splitlines()[-1] == printed


def test_the_crash_explanations_say_what_pandas_does(fixture_runs):
    crash = fixture_runs(FIXTURES / "rules" / "sc202_dot_labels.py").report["crash"]
    assert crash["explanation"] == ("X's column labels (['age', 'income', 'score']) are not W's row labels "
                                    "(RangeIndex 0..2); the shapes agree, but pandas multiplies by label, not "
                                    "position, and raises `ValueError: matrices are not aligned`")
    crash = fixture_runs(FIXTURES / "rules" / "sc202_frame_rows.py").report["crash"]
    assert crash["explanation"].startswith("row_bias is 6 values long, like df's rows, but pandas lines a 1-D "
                                           "array up with a DataFrame's columns (['x1', 'x2', 'x3']), not its rows")
    crash = fixture_runs(FIXTURES / "rules" / "crash_series_reshape_expr.py").report["crash"]
    assert crash["explanation"] == ('data["sales"] is a pandas Series (50,), not a numpy array: it has no '
                                    '`.reshape`, which is a numpy method')


SETUP = """\
import numpy as np
import pandas as pd

class Holder:
    pass

data = pd.DataFrame({"sales": np.arange(50.0), "ads": np.arange(50.0) * 2})
obj = Holder()
obj.frame = data
"""


@pytest.mark.parametrize("expr, receiver, kind, shape, fix", [
    ("obj.frame.sales.reshape(-1, 1)", "obj.frame.sales", "Series", [50], "obj.frame.sales.to_numpy().reshape(-1, 1) -> (50, 1)"),
    ('data.loc[:, "ads"].flatten()', 'data.loc[:, "ads"]', "Series", [50], 'data.loc[:, "ads"].to_numpy().flatten() -> (50,)'),
    ('data[["sales", "ads"]].reshape(-1)', 'data[["sales", "ads"]]', "DataFrame", [50, 2],
     'data[["sales", "ads"]].to_numpy().reshape(-1) -> (100,)'),
    ("pd.Series(np.ones(4)).reshape(2, 2)", "pd.Series(np.ones(4))", "Series", [4],
     "pd.Series(np.ones(4)).to_numpy().reshape(2, 2) -> (2, 2)"),
    ('(data["sales"] * 2).reshape(-1, 1)', 'data["sales"] * 2', "Series", [50],
     '(data["sales"] * 2).to_numpy().reshape(-1, 1) -> (50, 1)'),
])
def test_any_receiver_expression_is_named_with_its_kind_and_shape(expr, receiver, kind, shape, fix, tmp_path):
    script = tmp_path / "recv.py"
    script.write_text(SETUP + f"x = {expr}\nprint(x.shape)\n")
    run = shapecheck(str(script), json_report=True, tmp=tmp_path, cwd=tmp_path)
    crash = run.report["crash"]
    assert crash["type"] == "AttributeError" and crash["line"] == 10
    [op] = crash["operands"]
    assert (op["text"], op["kind"], op["shape"]) == (receiver, kind, shape)
    assert crash["explanation"].startswith(f"{receiver} is a pandas {kind} ")
    assert crash["fixes"][0] == fix
    new, want = fix.split(" -> ")
    script.write_text(SETUP + f"x = {new}\nprint(x.shape)\n")
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert p.stdout.strip() == want  # the fix runs, and gives the shape it was offered with


@pytest.mark.parametrize("expr, says", [
    ('data["sales"].reshape(4, 4)', '`data["sales"].to_numpy().reshape(4, 4)` would fail too'),
    ('data["sales"].fooo()', "it has no `.fooo`, and a numpy array has none either"),
])
def test_no_fix_when_numpy_would_refuse_too(expr, says, tmp_path):
    script = tmp_path / "refuse.py"
    script.write_text(SETUP + f"x = {expr}\n")
    crash = shapecheck(str(script), json_report=True, tmp=tmp_path, cwd=tmp_path).report["crash"]
    assert says in crash["explanation"]
    assert crash["fixes"] == []
    # The cause is the kind of object, not a shape: no "no transpose or reshape works" advice either.
    run = shapecheck(str(script), tmp=tmp_path, cwd=tmp_path)
    text = run.stdout + run.stderr
    assert says.split("`")[0] in " ".join(text.split()) and "no transpose, reshape or swap" not in text
