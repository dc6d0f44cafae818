"""SC401 (np.matrix `*`), SC402 (positional `out`), SC501 (`x =- y`), SC502 (an update with a broadcast
gradient): each snippet runs rewritten and recorded in this process (the real rewriter, hooks and rules),
and the table says which of these codes it must give, at which line and severity.  The look-alike rows
are the idioms each rule must leave alone.  End-to-end runs of the fixtures are in test_fixtures.py."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import numpy as np
import pytest

from shapecheck import _recorder, _scope
from shapecheck._runner import compile_file

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix says it is old
CODES = ("SC401", "SC402", "SC501", "SC502")
REPO = Path(__file__).resolve().parent.parent
_n = itertools.count()


def findings(tmp_path: Path, source: str):
    """The SC4xx/SC5xx findings of one snippet, run rewritten (an exception of the snippet's is kept)."""
    source = "import numpy as np\n" + textwrap.dedent(source).lstrip("\n")
    path = tmp_path / f"snippet_{next(_n)}.py"
    path.write_text(source)
    _recorder.install()
    mark = _scope.mark()
    code = compile_file(str(path), source)
    try:
        exec(code, {"__name__": "__main__"})
    except Exception:  # noqa: BLE001 - the crash cases: the findings are made from what was recorded
        pass
    return [f for f in _scope.findings_since(mark) if f.code in CODES]


def summary(found) -> list[tuple[str, str, int]]:
    """(code, severity, line) with the line counted in the snippet as written (the import is line 0)."""
    return sorted((f.code, f.severity, f.site.line - 1) for f in found)


W401, I401, W402, W501, I501, W502 = (("SC401", "warning"), ("SC401", "info"), ("SC402", "warning"),
                                      ("SC501", "warning"), ("SC501", "info"), ("SC502", "warning"))

CASES = {
    # -- SC401 ------------------------------------------------------------------------------------------
    "matrix sigmoid derivative, square": ("""
        s = np.matrix(np.random.rand(3, 3))
        d = s * (1 - s)
        """, [W401 + (2,)]),
    "matrix sigmoid derivative, column (crash)": ("""
        s = np.matrix(np.random.rand(3, 1))
        d = s * (1 - s)
        """, [W401 + (2,)]),
    "matrix times ndarray of the same column shape": ("""
        s = np.matrix(np.random.rand(3, 1))
        e = np.random.rand(3, 1)
        d = s * e
        """, [W401 + (3,)]),
    "matrix *= related": ("""
        s = np.matrix(np.random.rand(2, 2))
        s *= (1 - s)
        """, [W401 + (2,)]),
    "square matrices with no relation: a note": ("""
        A = np.matrix(np.random.rand(3, 3))
        B = np.matrix(np.random.rand(3, 3))
        C = A * B
        """, [I401 + (3,)]),
    "quiet: X.T * X, the matrix product np.matrix code means": ("""
        X = np.matrix(np.random.rand(5, 3))
        G = X.T * X
        y = X * np.matrix(np.random.rand(3, 1))
        """, []),
    "quiet: a scalar times a matrix": ("""
        s = np.matrix(np.random.rand(3, 3))
        lr = 0.1
        a = lr * s
        b = s * lr
        """, []),
    "quiet: np.multiply on matrices": ("""
        s = np.matrix(np.random.rand(3, 1))
        d = np.multiply(s, 1 - s)
        """, []),
    "quiet: ndarrays": ("""
        s = np.random.rand(3, 3)
        d = s * (1 - s)
        """, []),
    "quiet: a (1, 1) matrix scales": ("""
        k = np.matrix([[2.0]])
        s = np.matrix(np.random.rand(1, 3))
        d = k * s
        """, []),
    # -- SC402 ------------------------------------------------------------------------------------------
    "np.multiply with an array third": ("""
        o = np.random.rand(4, 1)
        error = np.random.rand(4, 1)
        delta = np.multiply(o, 1 - o, error)
        """, [W402 + (3,)]),
    "np.matmul with an array third (crash)": ("""
        o = np.random.rand(4, 1)
        error = np.random.rand(4, 1)
        delta = np.matmul(o, 1 - o, error)
        """, [W402 + (3,)]),
    "np.dot that silently overwrites": ("""
        a = np.random.rand(2, 3)
        b = np.random.rand(3, 2)
        grad = np.zeros((2, 2))
        h = np.dot(a, b, grad)
        """, [W402 + (4,)]),
    "np.add with an array third": ("""
        a = np.random.rand(3)
        b = np.random.rand(3)
        c = np.random.rand(3)
        total = np.add(a, b, c)
        """, [W402 + (4,)]),
    "a unary ufunc's second argument": ("""
        z = np.random.rand(3)
        w = np.random.rand(3)
        e = np.exp(z, w)
        """, [W402 + (3,)]),
    "ndarray.dot's second argument": ("""
        a = np.random.rand(2, 3)
        b = np.random.rand(3, 2)
        g = np.zeros((2, 2))
        h = a.dot(b, g)
        """, [W402 + (4,)]),
    "quiet: in place into an operand": ("""
        a = np.random.rand(3)
        b = np.random.rand(3)
        np.add(a, b, a)
        np.exp(b, b)
        """, []),
    "quiet: out= spelled out": ("""
        a = np.random.rand(3)
        b = np.random.rand(3)
        c = np.empty(3)
        np.multiply(a, b, out=c)
        np.matmul(a[:, None], b[None, :], out=np.empty((3, 3)))
        """, []),
    "quiet: a buffer by its name": ("""
        a = np.random.rand(3)
        out_buf = np.empty(3)
        np.tanh(a, out_buf)
        res = np.empty(3)
        np.add(a, 0.5 * a, res)
        """, []),
    "quiet: the result assigned back to the output": ("""
        a = np.random.rand(3)
        b = np.random.rand(3)
        c = np.empty(3)
        c = np.multiply(a, b, c)
        """, []),
    "quiet: three-operand functions": ("""
        x = np.random.rand(3)
        y = np.random.rand(3)
        z = np.where(x > 0.5, x, y)
        w = np.clip(x, y * 0, y + 1)
        """, []),
    "quiet: a function of the user's named like a ufunc": ("""
        import types
        ops = types.SimpleNamespace(multiply=lambda a, b, c: a * b * c)
        a = np.random.rand(3)
        d = ops.multiply(a, a, a + 1)
        """, []),
    # -- SC501 ------------------------------------------------------------------------------------------
    "=- in an update loop": ("""
        X = np.random.rand(6, 3)
        W = np.zeros((3, 1))
        for i in range(2):
            dW = X.T @ (X @ W - 1)
            W =- 0.1 * dW
        """, [W501 + (5,)]),
    "=- of a name": ("""
        b = np.zeros(3)
        db = np.ones(3)
        b =- db
        """, [W501 + (3,)]),
    "=+ of a name": ("""
        b = np.zeros(3)
        db = np.ones(3)
        b =+ db
        """, [W501 + (3,)]),
    "=- on an attribute set elsewhere": ("""
        class Layer:
            def __init__(self):
                self.W = np.zeros((2, 2))
                self.dW = np.ones((2, 2))
                self.lr = 0.1

            def step(self):
                self.W =- self.lr * self.dW

        Layer().step()
        """, [W501 + (8,)]),
    "=- with no space at all: a note": ("""
        b = np.zeros(3)
        db = np.ones(3)
        b=-db
        """, [I501 + (3,)]),
    "quiet: a negation spelled with a space": ("""
        b = np.zeros(3)
        db = np.ones(3)
        b = -db
        c = - db
        """, []),
    "quiet: a first assignment": ("""
        y = np.ones(3)
        neg =- y
        z = neg * 2
        """, []),
    "quiet: the name on the right": ("""
        x = np.ones(3)
        x =- x
        """, []),
    "quiet: an integer counter": ("""
        n = 3
        n =- 1
        k = 0
        k =+ 1
        """, []),
    "quiet: a name that held no array": ("""
        msg = "x"
        y = np.ones(2)
        msg =- y
        """, []),
    # -- SC502 ------------------------------------------------------------------------------------------
    "scalar db from np.sum without an axis, in place": ("""
        dZ = np.random.rand(3, 5)
        b = np.zeros((3, 1))
        db = np.sum(dZ)
        b -= 0.1 * db
        """, [W502 + (4,)]),
    "scalar db onto a (3,) bias, W = W - lr * dW form": ("""
        dZ = np.random.rand(5, 3)
        b = np.zeros(3)
        lr = 0.1
        db = dZ.sum()
        b = b - lr * db
        """, [W502 + (5,)]),
    "lr / m * np.sum(dZ) inline": ("""
        dZ = np.random.rand(3, 5)
        b = np.zeros((3, 1))
        m = 5
        b -= 0.1 / m * np.sum(dZ)
        """, [W502 + (4,)]),
    "a gradient added with +=": ("""
        dZ = np.random.rand(3, 5)
        b = np.zeros((3, 1))
        db = np.sum(dZ)
        lr = -0.1
        b += lr * db
        """, [W502 + (5,)]),
    "a (1, n) gradient onto an (m, n) weight": ("""
        W = np.zeros((4, 3))
        dW = np.random.rand(1, 3)
        W -= 0.1 * dW
        """, [W502 + (3,)]),
    "quiet: a (1, n) gradient onto (n, 1) in W = W - lr * dW (SC103's)": ("""
        b = np.zeros((3, 1))
        db = np.random.rand(1, 3)
        b = b - 0.1 * db
        """, []),
    "quiet: the keepdims gradient": ("""
        dZ = np.random.rand(3, 5)
        b = np.zeros((3, 1))
        db = np.sum(dZ, axis=1, keepdims=True)
        b -= 0.1 * db
        """, []),
    "quiet: weight decay": ("""
        W = np.random.rand(3, 2)
        lr, reg = 0.1, 1e-3
        W -= lr * reg * W
        W = W - lr * reg * W
        """, []),
    "quiet: a literal step": ("""
        b = np.zeros(3)
        lr = 0.1
        b -= lr * 0.5
        b = b + 0.01
        """, []),
    "quiet: momentum": ("""
        W = np.random.rand(3, 2)
        v = np.zeros_like(W)
        dW = np.random.rand(3, 2)
        v = 0.9 * v - 0.1 * dW
        W += v
        """, []),
    "quiet: a learning-rate schedule": ("""
        W = np.random.rand(3, 2)
        dW = np.random.rand(3, 2)
        for t in range(3):
            lr_t = 0.1 * np.exp(-0.5 * t)
            decay = np.mean(np.ones(4))
            W -= lr_t * decay * dW
        """, []),
    "quiet: equal shapes": ("""
        W = np.random.rand(3, 2)
        dW = np.random.rand(3, 2)
        W -= 0.1 * dW
        """, []),
    "quiet: a scalar parameter and a scalar gradient": ("""
        err = np.random.rand(5)
        w0 = np.zeros(1)
        dw0 = np.sum(err)
        w0 -= 0.1 * dw0
        c = 0.0
        c -= 0.1 * np.sum(err)
        """, []),
    "quiet: a (1, D) scale updated by a (D,) gradient": ("""
        gamma = np.ones((1, 4))
        dgamma = np.random.rand(4)
        gamma -= 0.1 * dgamma
        """, []),
    "quiet: centring and the softmax max-shift": ("""
        X = np.random.rand(5, 3)
        X -= X.mean(axis=0)
        mu = X.mean(axis=0)
        X = X - mu
        z = np.random.rand(4, 3)
        z = z - z.max(axis=1, keepdims=True)
        z -= np.max(z)
        """, []),
    "quiet: a (1, n) array not named as a gradient": ("""
        W = np.zeros((4, 3))
        shift = np.random.rand(1, 3)
        W -= 0.1 * shift
        """, []),
    "quiet: an outer-product gradient made by broadcasting in the update": ("""
        W = np.zeros((3, 2))
        dz = np.random.rand(3, 1)
        x = np.random.rand(2, 1)
        W -= 0.1 * dz * x.T
        """, []),
    "quiet: a scalar mean subtracted (centring, normalising by the training mean)": ("""
        X = np.random.rand(5, 3)
        X_mean = np.mean(X)
        X -= X_mean
        X_test = np.random.rand(4, 3)
        X_test = X_test - X_mean
        X_test -= 0.5 * X_mean
        """, []),
    "a gradient item of a dict, made by a full sum": ("""
        dZ = np.random.rand(3, 5)
        params = {"b1": np.zeros((3, 1))}
        grads = {"db1": np.sum(dZ)}
        grads["db1"] = 1 / 5 * np.sum(dZ)
        params["b1"] = params["b1"] - 0.1 * grads["db1"]
        """, [W502 + (5,)]),
    "quiet: a per-column rate on a full gradient": ("""
        W = np.random.rand(3, 2)
        dW = np.random.rand(3, 2)
        col = np.array([1.0, 0.5])
        W -= 0.1 * dW * col
        """, []),
}


@pytest.mark.parametrize("name", list(CASES))
def test_table(name, tmp_path):
    source, want = CASES[name]
    assert summary(findings(tmp_path, source)) == sorted(want)


def one(tmp_path, source):
    found = findings(tmp_path, source)
    assert len(found) == 1, [f.message for f in found]
    return found[0]


def test_sc401_names_the_operands_and_offers_np_multiply(tmp_path):
    f = one(tmp_path, """
        s = np.matrix(np.random.rand(3, 1))
        d = s * (1 - s)
        """)
    assert f.message.startswith("`s * (1 - s)`: `*` with an np.matrix operand is the matrix product "
                                "(s np.matrix (3, 1) and (1 - s) np.matrix (3, 1)); numpy raises")
    assert f.fix.startswith("np.multiply(s, 1 - s) -> (3, 1) (elementwise)")
    assert [o.shape for o in f.operands] == [(3, 1), (3, 1)]


def test_sc402_says_which_array_is_overwritten_and_the_evident_intent(tmp_path):
    f = one(tmp_path, """
        a = np.random.rand(2, 3)
        b = np.random.rand(3, 2)
        scale = np.random.rand(2, 2)
        h = np.matmul(a, b, scale)
        """)
    assert "numpy writes the result into scale (2, 2), overwriting it" in f.message
    assert f.fix.startswith("np.matmul(a, b) * scale -> (2, 2) if scale was meant as an operand; "
                            "np.matmul(a, b, out=scale)")
    assert f.result == (2, 2)


def test_sc402_says_the_output_is_taken_not_overwritten_when_numpy_refuses_it(tmp_path):
    f = one(tmp_path, """
        a = np.random.rand(2, 3)
        b = np.random.rand(3, 2)
        counts = np.zeros((2, 2), dtype=int)
        h = np.dot(a, b, counts)
        """)
    assert "counts (2, 2) is taken as the array to write the result into" in f.message


def test_sc402_does_not_offer_an_operand_fix_that_would_broadcast_into_a_table(tmp_path):
    f = one(tmp_path, """
        a = np.random.rand(3)
        b = np.random.rand(3)
        c = np.random.rand(3, 1)
        np.multiply(a, b, c)
        """)
    assert f.fix.startswith("np.multiply(a, b), without c")
    assert "c (3, 1) is taken as the array to write the result into" in f.message  # numpy raises here


def test_sc501_message_and_fix(tmp_path):
    f = one(tmp_path, """
        b = np.zeros(3)
        db = np.ones(3)
        b =+ 0.5 * db
        """)
    assert f.message.startswith("`b =+ 0.5 * db` assigns +0.5 * db to b, which held an array (3,)")
    assert f.fix == "b += 0.5 * db (or b = +0.5 * db, with a space, if the sign is meant)"


def test_sc502_names_the_reduction_at_the_line_where_the_gradient_was_made(tmp_path):
    f = one(tmp_path, """
        dZ = np.random.rand(3, 5)
        b = np.zeros(3)
        m = 5
        db = 1 / m * np.sum(dZ)
        b -= 0.1 * db
        """)
    assert f.message.startswith("`b -= 0.1 * db`: db is a scalar () from `np.sum(dZ)` at line 5, a sum over "
                                "every axis of dZ (3, 5); broadcast onto b (3,)")
    assert f.fix == "db = 1 / m * np.sum(dZ, axis=1) at line 5 -> (3,)"


def test_sc502_inline_reduction_fix_is_the_whole_statement(tmp_path):
    f = one(tmp_path, """
        dZ = np.random.rand(5, 3)
        b = np.zeros((1, 3))
        b = b - 0.1 * dZ.sum()
        """)
    assert f.fix == "b = b - 0.1 * dZ.sum(axis=0, keepdims=True) (dZ.sum(axis=0, keepdims=True) -> (1, 3))"


def test_sc502_on_a_square_gradient_does_not_guess_the_batch_axis(tmp_path):
    f = one(tmp_path, """
        dZ = np.random.rand(3, 3)
        b = np.zeros(3)
        db = np.sum(dZ)
        b -= 0.1 * db
        """)
    assert f.fix == "db = np.sum(dZ, axis=0) at line 4 -> (3,) (or axis=1: each gives (3,); sum over the batch axis)"


def test_sc502_follows_the_courses_dictionaries_across_functions(fixture_runs):
    """`update_parameters(parameters, grads)` reads `grads["db1"]`: the parameter is what every call passes,
    that variable is the dictionary `backward_propagation` returned, and its "db1" entry is the variable
    made by `1 / m * np.sum(dZ1)`.  The fix goes there, with the axis that gives b1's shape."""
    report = fixture_runs(REPO / "fixtures" / "rules" / "sc502_course_dicts.py").report
    (f,) = [f for f in report["findings"] if f["code"] == "SC502"]
    assert (f["line"], f["expression"]) == (43, 'b1 - learning_rate * grads["db1"]')
    assert f["message"] == ('`b1 = b1 - learning_rate * grads["db1"]`: grads["db1"] is a scalar () from `np.sum(dZ1)` '
                            'at line 37, a sum over every axis of dZ1 (4, 400); broadcast onto b1 (4, 1), it moves '
                            'every entry of b1 by the same step')
    assert f["fix"] == "db1 = 1 / m * np.sum(dZ1, axis=1, keepdims=True) at line 37 -> (4, 1)"
    ok = fixture_runs(REPO / "fixtures" / "rules" / "sc502_course_dicts_ok.py").report
    assert [f for f in ok["findings"] if f["severity"] != "info"] == []


def test_sc502_fixes_a_dictionary_entry_written_as_an_expression(tmp_path):
    f = one(tmp_path, """
        dZ = np.random.rand(3, 8)
        params = {"b1": np.zeros((3, 1))}
        m = 8
        grads = {"dZ": dZ, "db1": np.sum(dZ) / m}
        params["b1"] = params["b1"] - 0.1 * grads["db1"]
        """)
    assert f.message.startswith('`params["b1"] = params["b1"] - 0.1 * grads["db1"]`: grads["db1"] is a scalar () '
                                "from `np.sum(dZ)` at line 5, a sum over every axis of dZ (3, 8)")
    assert f.fix == '"db1": np.sum(dZ, axis=1, keepdims=True) / m at line 5 -> (3, 1)'


def test_silenced_by_the_ignore_comment(tmp_path):
    assert findings(tmp_path, """
        b = np.zeros(3)
        db = np.ones(3)
        b =- db  # shapecheck: ignore[SC501]
        o = np.random.rand(4, 1)
        np.multiply(o, o, db[:, None] + o)  # shapecheck: ignore[SC402]
        """) == []


FIXTURES = sorted((REPO / "fixtures" / "rules").glob("sc40[12]_*.py")) + sorted(
    (REPO / "fixtures" / "rules").glob("sc50[12]_*.py"))


@pytest.mark.parametrize("script", FIXTURES, ids=lambda p: p.name)
def test_tracing_does_not_change_what_the_fixtures_compute(script, tmp_path):
    """Differential: each fixture plain and traced gives the same values, output, warnings and errors."""
    from test_differential import compare

    compare(script.read_text(), tmp_path)  # each fixture seeds its own random numbers


@pytest.mark.parametrize("name", list(CASES))
def test_tracing_does_not_change_what_the_snippets_compute(name, tmp_path):
    from test_differential import compare

    compare("import numpy as np\nnp.random.seed(0)\n" + textwrap.dedent(CASES[name][0]).lstrip("\n"), tmp_path)


@pytest.mark.parametrize("script, cause, fix", [
    ("sc401_matrix_crash.py", "`*` with an np.matrix operand is the matrix product", "np.multiply(s, 1 - s) -> (3, 1)"),
    ("sc402_matmul_out.py", "the third positional argument of np.matmul is its output",
     "o * (1 - o) * error -> (4, 1)"),
])
def test_a_crash_caused_by_an_api_trap_is_explained_by_it_and_offers_only_what_was_meant(script, cause, fix,
                                                                                           fixture_runs):
    # Transposing an operand would also run (an outer product, or into an output of the wrong shape):
    # the crash offers the trap's fix alone.
    crash = fixture_runs(REPO / "fixtures" / "rules" / script).report["crash"]
    assert cause in crash["explanation"]
    assert [f.split("  (")[0] for f in crash["fixes"]] == [fix]
