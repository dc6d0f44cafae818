"""SC301 (a NaN or inf made at a site) and SC302 (integer traps), end to end through `python -m shapecheck`.

Each case is a small script: the finding's code, severity, line and wording are checked in the JSON report.
Look-alikes (guarded logs, max-shifted softmax, silenced warnings, promoted integer arithmetic) must stay
quiet.  A differential test proves that the warnings a script shows are the same with and without
shapecheck.  Runs on numpy 2.x and 1.26 (the old venv), whose integer promotion differs (NEP 50).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO, shapecheck

pytest_plugins = ["pytester"]
NUMPY2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


def traced(tmp_path, source: str, *flags: str):
    script = tmp_path / "net.py"
    script.write_text(textwrap.dedent(source))
    run = shapecheck(*flags, str(script), json_report=True, tmp=tmp_path)
    assert run.report is not None, run.stderr
    return run


def findings(run, code: str, severity: str | None = None) -> list[dict]:
    return [f for f in run.report["findings"] if f["code"] == code and (severity is None or f["severity"] == severity)]


# -- SC301: where the NaN or inf was made ------------------------------------------------------------------

FIRES_301 = [
    pytest.param("""\
        import numpy as np
        A2 = np.array([[0.0, 0.4, 0.9]])
        cost = -np.mean(np.log(A2))
        """, 3, "np.log(A2)",
        r"`np\.log\(A2\)` made -inf: A2 \(1, 3\) float64 has 1 of 3 entries equal to 0 \(min 0, max 0\.9\); "
        r"numpy warned \"divide by zero encountered in log\"",
        r"^np\.log\(np\.maximum\(A2, 1e-12\)\)", id="log-of-zero"),
    pytest.param("""\
        import numpy as np
        def loss(p):
            return np.log(p)
        p = np.array([0.5, -0.25, -1.0, 0.1])
        print(loss(p))
        """, 3, "np.log(p)",
        r"`np\.log\(p\)` made NaN: p \(4,\) float64 has 2 of 4 entries negative \(min -1, max 0\.5\)",
        r"^np\.log\(np\.maximum\(p, 1e-12\)\)", id="log-of-negative-in-a-function"),
    pytest.param("""\
        import numpy as np
        var = np.array([1.0, 4.0, -1e-9])
        sd = np.sqrt(var)
        """, 3, "np.sqrt(var)", r"made NaN: var \(3,\) float64 has 1 of 3 entries negative",
        r"^np\.sqrt\(np\.maximum\(var, 0\)\)$", id="sqrt-of-negative"),
    pytest.param("""\
        import numpy as np
        z = np.array([10.0, 800.0])
        e = np.exp(z)
        probs = e / e.sum()
        """, 3, "np.exp(z)", r"made inf: z \(2,\) float64 has 1 of 2 entries above 709\.8, where exp overflows",
        r"^np\.exp\(z - np\.max\(z\)\) if this is a softmax", id="exp-overflow-softmax-1d"),
    pytest.param("""\
        import numpy as np
        counts = np.array([[3.0, 0.0], [1.0, 0.0]])
        totals = counts.sum(axis=0)
        freq = counts / totals
        """, 4, "counts / totals",
        r"made NaN: totals \(2,\) float64 has 1 of 2 entries equal to 0, and 2 entries are 0/0",
        r"^counts / np\.maximum\(totals, 1e-12\)", id="zero-over-zero"),
    pytest.param("""\
        import numpy as np
        A = np.array([1.0, 2.0, 0.0])
        L = np.log(A)
        cost = np.sum(L * 0)
        B = L - L
        """, 3, "np.log(A)", r"made -inf", None, id="only-the-origin-not-its-consequences"),
    pytest.param("""\
        import numpy as np
        a = np.array([1.0, 2.0])
        b = np.array([0.0, 2.0])
        r = np.divide(a, b)
        """, 4, "np.divide(a, b)", r"made inf: b \(2,\) float64 has 1 of 2 entries equal to 0",
        r"^np\.divide\(a, np\.maximum\(b, 1e-12\)\) \(or skip", id="np-divide-call"),
    pytest.param("""\
        import numpy as np
        x = np.array([4.0, -1.0])
        r = x ** 0.5
        """, 3, "x ** 0.5", r"made NaN: x \(2,\) float64 has 1 of 2 entries negative \(min -1, max 4\), and a "
        r"fractional power of a negative number is NaN; numpy warned \"invalid value encountered in sqrt\"",
        r"^np\.maximum\(x, 0\) \*\* 0\.5$", id="power-with-a-literal-is-an-assignment-site"),
    pytest.param("""\
        import numpy as np
        p = np.array([0.0, 0.5])
        r = 1.0 / p
        """, 3, "1.0 / p", r"made inf: p \(2,\) float64 has 1 of 2 entries equal to 0",
        r"^1\.0 / np\.maximum\(p, 1e-12\)", id="literal-over-array"),
    pytest.param("""\
        import numpy as np
        def sigmoid(z):
            return 1 / (1 + np.exp(-z))
        z = np.array([0.0, 40.0])
        cost = -np.mean(np.log(1 - sigmoid(z)))
        """, 5, "np.log(1 - sigmoid(z))",
        r"made -inf: 1 - sigmoid\(z\) had a 0 \(not a plain name: its range is not shown\)",
        r"^np\.log\(np\.maximum\(1 - sigmoid\(z\), 1e-12\)\)", id="operand-not-a-plain-name"),
    pytest.param("""\
        import numpy as np
        w = np.array([1e200, 2.0])
        q = w * w
        """, 3, "w * w", r"overflowed to inf from finite operands; numpy warned \"overflow encountered in multiply\"",
        None, id="float-overflow"),
]


@pytest.mark.parametrize("source, line, expr, message, fix", FIRES_301)
def test_sc301_names_the_site_the_operand_range_and_the_fix(tmp_path, source, line, expr, message, fix):
    run = traced(tmp_path, source)
    assert run.status == 0, run.stderr
    found = findings(run, "SC301", "warning")
    assert [(f["line"], f["expression"]) for f in found] == [(line, expr)], run.report["findings"]
    assert re.search(message, found[0]["message"]), found[0]["message"]
    if fix:
        assert re.search(fix, found[0]["fix"]), found[0]["fix"]


def test_sc301_on_numpy_scalars_has_no_record_but_still_a_finding(tmp_path):
    run = traced(tmp_path, """\
        import numpy as np
        num = np.float64(0.0)
        den = np.float64(0.0)
        ratio = num / den
        """)
    found = findings(run, "SC301", "warning")
    assert [(f["line"], f["expression"]) for f in found] == [(4, "num / den")]
    assert "den float64 is equal to 0, and one entry is 0/0" in found[0]["message"]


def test_sc301_is_found_once_however_often_the_warning_is_shown(tmp_path):
    run = traced(tmp_path, """\
        import warnings
        import numpy as np
        warnings.simplefilter("always")
        x = np.array([0.0, 1.0])
        for _ in range(50):
            y = np.log(x)
        """)
    found = findings(run, "SC301")
    assert [(f["line"], f["count"]) for f in found] == [(6, 1)]
    assert run.stderr.count("RuntimeWarning: divide by zero encountered in log") == 50


QUIET_301 = [
    pytest.param("""\
        import numpy as np
        Z = np.array([[800.0, 1.0], [2.0, 3.0]])
        E = np.exp(Z - np.max(Z, axis=0, keepdims=True))
        S = E / E.sum(axis=0, keepdims=True)
        """, id="max-shifted-softmax"),
    pytest.param("""\
        import numpy as np
        p = np.array([0.0, 1.0, 0.5])
        a = np.log(p + 1e-12)
        b = np.log(np.maximum(p, 1e-12))
        c = np.log(np.clip(p, 1e-12, 1 - 1e-12))
        """, id="log-with-epsilon"),
    pytest.param("""\
        import numpy as np
        p = np.array([0.0, 1.0])
        with np.errstate(divide="ignore"):
            a = np.log(p)
        """, id="users-own-errstate-ignore"),
    pytest.param("""\
        import numpy as np
        np.seterr(all="ignore")
        a = np.log(np.array([0.0, -1.0]))
        """, id="users-own-seterr-ignore"),
    pytest.param("""\
        import warnings
        import numpy as np
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        a = np.log(np.array([0.0, -1.0]))
        """, id="users-own-warning-filter"),
    pytest.param("""\
        import numpy as np
        x = np.array([1.0, np.nan, 3.0])
        y = np.log(x) * 2
        """, id="nan-from-the-data-makes-no-warning"),
    pytest.param("""\
        import numpy as np
        z = np.array([-1000.0, 0.0, 1000.0])
        s = 1 / (1 + np.exp(-z))
        """, id="sigmoid-overflow-is-info"),
    pytest.param("""\
        import numpy as np
        d = np.array([0.0, 2.0])
        x = np.array([1.0, 1.0])
        r = np.where(d > 0, x / d, 0.0)
        """, id="np-where-guard-is-info"),
]


@pytest.mark.parametrize("source", QUIET_301)
def test_sc301_look_alikes_stay_quiet(tmp_path, source):
    run = traced(tmp_path, source)
    assert run.status == 0, run.stderr
    assert not [f for f in run.report["findings"] if f["severity"] != "info"], run.report["findings"]


def test_sc301_sigmoid_and_where_notes_say_why_the_result_is_right(tmp_path):
    run = traced(tmp_path, """\
        import numpy as np
        z = np.array([-1000.0, 0.0])
        s = 1 / (1 + np.exp(-z))
        d = np.array([0.0, 2.0])
        r = np.where(d > 0, 1.0 / d, 0.0)
        q = np.where(d > 0, s / d, 0.0)
        """)
    notes = {f["line"]: f for f in findings(run, "SC301", "info")}
    assert "in a sigmoid 1 / (1 + inf) is 0, so the result is still right" in notes[3]["message"]
    assert notes[3]["fix"].startswith("np.exp(np.clip(-z, -500, 500))")
    assert "np.where replaces those entries" in notes[6]["message"]
    assert notes[6]["fix"].startswith("np.divide(s, d, out=np.zeros_like(s, dtype=float), where=d != 0)")


def test_sc301_and_sc302_are_silenced_by_the_comment_and_the_option(tmp_path):
    source = """\
        import numpy as np
        A2 = np.array([0.0, 0.5])
        img = np.array([200], dtype=np.uint8)
        a = np.log(A2)  # shapecheck: ignore[SC301]
        b = img * 2
        c = np.log(A2 - 1)
        """
    run = traced(tmp_path, source, "--ignore", "SC302")
    assert [(f["code"], f["line"]) for f in run.report["findings"]] == [("SC301", 6)]


def test_seterr_raise_gives_no_finding_and_the_crash_is_pythons(tmp_path):
    run = traced(tmp_path, """\
        import numpy as np
        np.seterr(all="raise")
        a = np.log(np.array([0.0, 1.0]))
        """)
    assert run.status == 1
    assert "FloatingPointError: divide by zero encountered in log" in run.stderr
    assert not findings(run, "SC301")


# -- warnings seen by the user: identical with and without shapecheck --------------------------------------

WARNING_SCRIPT = """\
import sys
import warnings

import numpy as np

x = np.array([0.0, 1.0, -1.0])
a = np.log(x)
b = np.exp(np.array([1000.0]))
c = x / x
d = np.sqrt(x)
with np.errstate(all="ignore"):
    e = np.log(x)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    f = np.log(x)
    g = np.log(x)
print("recorded:", [str(w.message) for w in caught], [w.lineno for w in caught])
shown = []
old = warnings.showwarning
warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: shown.append(
    (str(message), lineno))
h = np.exp(np.array([2000.0]))
warnings.showwarning = old
print("own showwarning:", shown)
for _ in range(3):
    k = np.log(x)
s = np.float64(1e308) * np.float64(10)
warnings.warn("divide by zero encountered in log", RuntimeWarning)
print("done", np.isnan(a).sum(), np.isinf(b).sum(), np.isnan(c).sum(), np.isnan(d).sum(), file=sys.stderr)
"""


@pytest.mark.parametrize("flags", [(), ("-W", "always"), ("-W", "error::RuntimeWarning")], ids=str)
def test_warnings_the_user_sees_are_the_same_with_and_without_shapecheck(tmp_path, flags):
    script = tmp_path / "warns.py"
    script.write_text(WARNING_SCRIPT)
    plain = subprocess.run([sys.executable, *flags, str(script)], capture_output=True, text=True, cwd=tmp_path)
    report = tmp_path / "report.json"
    traced_run = subprocess.run([sys.executable, *flags, "-m", "shapecheck", "--format", "json", "-o", str(report),
                                 str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert traced_run.stdout == plain.stdout
    assert traced_run.returncode == plain.returncode
    if "error" in "".join(flags):
        # The first warning is raised as an error: the traceback is Python's, then the crash note is ours.
        assert plain.stderr.startswith("Traceback") and traced_run.stderr.startswith(plain.stderr)
        assert traced_run.stderr[len(plain.stderr):].startswith("shapecheck: `np.log(x)` at warns.py:7")
    else:
        assert traced_run.stderr == plain.stderr
    if not flags:
        assert "RuntimeWarning" in plain.stderr and "recorded: ['divide by zero" in plain.stdout


# -- SC302: integer traps ------------------------------------------------------------------------------------

FIRES_302 = [
    pytest.param("""\
        import numpy as np
        img = np.array([[10, 200], [250, 0]], dtype=np.uint8)
        out = img + 60
        """, 3, "img + 60", r"`img \+ 60` wrapped around: the true values run from 60 to 310, but uint8 holds "
        r"0\.\.255, so 2 of 4 entries came out modulo 256", r"^img\.astype\(int\) \+ 60", id="uint8-plus-literal"),
    pytest.param("""\
        import numpy as np
        img = np.array([10, 200], dtype=np.uint8)
        out = np.clip(img * 2, 0, 255)
        """, 3, "np.clip(img * 2, 0, 255)", r"`img \* 2` wrapped around: the true values run from 20 to 400",
        r"^img\.astype\(int\) \* 2", id="clip-after-the-wrap-is-too-late"),
    pytest.param("""\
        import numpy as np
        a = np.array([5, 9], dtype=np.uint8)
        b = np.array([7, 3], dtype=np.uint8)
        d = a - b
        """, 4, "a - b", r"true values run from -2 to 6, but uint8 holds 0\.\.255, so 1 of 2 entries",
        r"^a\.astype\(int\) - b", id="difference-of-uint8"),
    pytest.param("""\
        import numpy as np
        a = np.array([100, -100], dtype=np.int8)
        b = np.array([2, 2], dtype=np.int8)
        c = np.multiply(a, b)
        """, 4, "np.multiply(a, b)", r"int8 holds -128\.\.127", None, id="int8-np-multiply"),
    pytest.param("""\
        import numpy as np
        acc = np.array([200, 100], dtype=np.uint8)
        acc += np.array([100, 100], dtype=np.uint8)
        """, 3, "acc += np.array([100, 100], dtype=np.uint8)", r"true values run from 200 to 300",
        r"^acc = acc\.astype\(int\) \+ ", id="in-place"),
    pytest.param("""\
        import numpy as np
        W = np.zeros((2, 3), dtype=int)
        g = np.ones((2, 3))
        for i in range(2):
            W[i] = W[i] - 0.01 * g[i]
        """, 5, "W[i] - 0.01 * g[i]",
        r"`W\[i\] = W\[i\] - 0\.01 \* g\[i\]` stores float64 values in W, which is int64 since line 2 "
        r"\(`np\.zeros\(\(2, 3\), dtype=int\)`\): numpy truncates them toward 0",
        r"^W = np\.zeros\(\(2, 3\), dtype=float\) at line 2$", id="float-into-int-weights"),
]


@pytest.mark.parametrize("source, line, expr, message, fix", FIRES_302)
def test_sc302_fires_when_the_integers_went_wrong(tmp_path, source, line, expr, message, fix):
    run = traced(tmp_path, source)
    assert run.status == 0, run.stderr
    found = findings(run, "SC302", "warning")
    assert [(f["line"], f["expression"]) for f in found] == [(line, expr)], run.report["findings"]
    assert re.search(message, found[0]["message"]), found[0]["message"]
    if fix:
        assert re.search(fix, found[0]["fix"]), found[0]["fix"]


QUIET_302 = [
    pytest.param("inv = 255 - img", id="inversion"),
    pytest.param("c = img - img.mean()", id="float-mean"),
    pytest.param("s = img.sum()", id="sum-promotes"),
    pytest.param("f = img / 255.0", id="true-divide"),
    pytest.param("f = img.astype(np.int16) * 2", id="widened-first"),
    pytest.param("k = np.arange(10) * 2", id="int64-arange"),
    pytest.param("i = 3\nj = i + 1", id="python-ints"),
    pytest.param("m = (img > 100).astype(np.uint8) * 255", id="mask-times-255"),
    pytest.param("small = (img // 2) + 10", id="stays-in-range"),
    pytest.param("img[0] = img[0] * 0.5", id="uint8-darkened-in-place"),
    pytest.param("H = np.zeros(3, dtype=int)\nfor t in range(3):\n    H[t] = np.floor(img[t].mean())",
                 id="floor-into-int"),
    pytest.param("try:\n    big = img + 300\nexcept OverflowError:\n    big = None", id="out-of-range-literal"),
]


@pytest.mark.parametrize("code", QUIET_302)
def test_sc302_look_alikes_stay_quiet(tmp_path, code):
    source = "import numpy as np\nimg = np.array([[10, 200], [250, 0], [3, 4]], dtype=np.uint8)\n" + code + "\n"
    run = traced(tmp_path, source)
    assert run.status == 0, run.stderr
    assert not [f for f in run.report["findings"] if f["severity"] != "info"], run.report["findings"]


def test_out_of_range_literal_follows_the_numpy_version(tmp_path):
    """numpy 2 refuses `uint8_array + 300` (OverflowError, NEP 50); numpy 1.26 computes it in uint16.
    Neither wraps, so neither is SC302; the script sees what it sees without shapecheck."""
    run = traced(tmp_path, """\
        import numpy as np
        img = np.array([10, 200], dtype=np.uint8)
        try:
            out = img + 300
            print(out.dtype, out.max())
        except OverflowError as e:
            print("refused:", e)
        """)
    assert run.stdout == ("refused: Python integer 300 out of bounds for uint8\n" if NUMPY2 else "uint16 500\n")
    assert not findings(run, "SC302")


@pytest.mark.parametrize("statement, fixed_dtypes", [
    ("bright = img + 300", ["int16"]),
    ("img += 300", ["int16", "uint8"]),
    ("bright = np.multiply(img, -1000)", ["int32"]),
    ("bright = 300 - img", ["int16"]),
])
def test_an_out_of_range_integer_is_explained_with_fixes_that_run(tmp_path, statement, fixed_dtypes):
    """numpy 2's OverflowError for `uint8_array + 300`: the cause names the dtype's range and where it was set;
    each fix, put in the script's place, runs under plain Python and gives the dtype it promises.  numpy 1.26
    computes the same line in a wider type: the run is clean there."""
    source = f"import numpy as np\nimg = np.full((2, 3), 7, dtype=np.uint8)\n{statement}\n"
    run = traced(tmp_path, source)
    if not NUMPY2:
        assert run.status == 0 and run.report["crash"] is None
        return
    crash = run.report["crash"]
    assert (crash["type"], crash["line"]) == ("OverflowError", 3)
    target = "img" if "+=" in statement else "bright"
    n = re.search(r"-?\d{3,}", statement)[0]
    assert crash["explanation"].startswith(f"img is uint8, which holds 0..255, and numpy 2 computes ")
    assert f"the Python integer {n} does not fit" in crash["explanation"]
    assert crash["explanation"].endswith("img is uint8 since line 2 (`np.full((2, 3), 7, dtype=np.uint8)`)")
    assert [o["text"] for o in crash["operands"]] == ["img"]
    dtypes = []
    for fix in crash["fixes"]:
        expr = fix.split(" -> (2, 3)")[0]
        line = expr if expr.startswith("img = ") else f"{target} = {expr}"
        script = tmp_path / "fixed.py"
        script.write_text(source.replace(statement, line) + f"print({target}.dtype, {target}.shape)\n")
        plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
        assert plain.returncode == 0, (line, plain.stderr)
        dtype, shape = plain.stdout.split(" ", 1)
        assert shape.strip() == "(2, 3)"
        dtypes.append(dtype)
    assert dtypes == fixed_dtypes


def test_in_place_float_update_of_an_int_array_is_explained(tmp_path):
    run = traced(tmp_path, """\
        import numpy as np
        W = np.zeros((2, 3), dtype=int)
        dW = np.ones((2, 3))
        W -= 0.1 * dW
        """)
    assert run.status == 1
    crash = run.report["crash"]
    assert (crash["type"], crash["line"], crash["expression"]) == ("UFuncTypeError", 4, "W -= 0.1 * dW")
    assert crash["explanation"].startswith(
        "W is int64, and an in-place `-=` keeps its dtype: numpy will not store the float64 values of 0.1 * dW "
        "in it (casting 'same_kind'); the shapes are fine; W is int64 since line 2 (`np.zeros((2, 3), dtype=int)`)")
    assert crash["fixes"][0].startswith("W = np.zeros((2, 3), dtype=float) at line 2  (then W holds floats")
    assert "Cannot cast ufunc 'subtract' output from dtype('float64') to dtype('int64')" in run.stderr


# -- pure helpers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op, x, y, want", [
    ("+", np.array([250], dtype=np.uint8), 10, (1, 260, 260)),
    ("-", 0, np.array([1, 0], dtype=np.uint8), (1, -1, 0)),  # 0 fits uint8: uint8 on numpy 2 and 1.26
    ("-", 255, np.array([0, 255], dtype=np.uint8), None),
    ("*", np.array([20000], dtype=np.int16), np.array([2], dtype=np.int16), (1, 40000, 40000)),
    ("+", np.array([1], dtype=np.int64), 2 ** 62, None),
])
def test_wrapped_is_exact(op, x, y, want):
    from shapecheck._numerics import wrapped

    got = wrapped(op, x, y)
    assert (None if got is None else (got[1], got[3], got[4])) == want


# -- pytest --shapecheck: per-test findings ----------------------------------------------------------------


def test_pytest_reports_sc301_made_inside_a_test(pytester):
    """pytest records warnings per test with catch_warnings(record=True): the hook still sees them."""
    pytester.makepyfile(net="""\
        import numpy as np

        def cost(p):
            return -np.mean(np.log(p))
        """, test_net="""\
        import numpy as np
        import net

        def test_cost():
            assert np.isinf(net.cost(np.array([0.0, 0.5])))
        """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--shapecheck", "-W", "default")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*net.py:4: ShapeWarning: SC301 warning at net.py:4: `np.log(p)` made -inf: "
                                 "p (2,) float64 has 1 of 2 entries equal to 0*"])
    result.stdout.fnmatch_lines(["*net.py:4: RuntimeWarning: divide by zero encountered in log*"])


# -- the other entry points: @trace and the notebook extension -------------------------------------------------


def test_trace_decorator_warns_sc301_at_the_users_line(tmp_path):
    script = tmp_path / "traced_fn.py"
    script.write_text(textwrap.dedent("""\
        import numpy as np
        import shapecheck

        @shapecheck.trace
        def cost(p):
            return -np.mean(np.log(p))

        cost(np.array([0.0, 0.5]))
        """))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "traced_fn.py:6: RuntimeWarning: divide by zero encountered in log" in p.stderr
    assert "traced_fn.py:6: ShapeWarning: SC301 warning at traced_fn.py:6: `np.log(p)` made -inf: p (2,) float64 " \
           "has 1 of 2 entries equal to 0" in p.stderr


def test_notebook_cell_shows_sc301(tmp_path):
    code = textwrap.dedent("""\
        from IPython.testing.globalipapp import start_ipython
        ip = start_ipython()
        ip.run_line_magic("load_ext", "shapecheck")
        ip.run_cell("import numpy as np\\nA2 = np.array([0.0, 0.5])")
        ip.run_cell("cost = -np.mean(np.log(A2))")
        """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    out = p.stdout + p.stderr
    assert "shapecheck: 1 warning (SC301) in this cell" in out, out
    assert "`np.log(A2)` made -inf: A2 (2,) float64 has 1 of 2 entries equal to 0" in out
