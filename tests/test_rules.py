"""The rules as pure functions: a table of operand shapes (and what the source says) -> finding or none."""

from __future__ import annotations

import pytest

from shapecheck._events import OperandSpec, Record, Site, SiteLog, Value
from shapecheck._recorder import _analyse
from shapecheck._rules import Context, outer_broadcast, pandas_mixing, rank1_operand, run
from shapecheck._rules_pandas import label_alignment


def nd(*shape, dtype="float64") -> Value:
    return Value("ndarray", tuple(shape), dtype)


def scalar() -> Value:
    return Value("scalar", (), "float", type_name="float")


def series(n, index="RangeIndex 0..5") -> Value:
    return Value("Series", (n,), "int64", index=index)


def frame(m, n) -> Value:
    return Value("DataFrame", (m, n), "float64", index="RangeIndex")


def make(text: str, vals, kind="binop", op=None, specs=None, callee=None, explicit=False, aligned=None):
    if specs is None:
        if kind == "binop":
            left, op_, right = text.split(" ", 2)
            op = op or op_
            specs = [OperandSpec(left, name=left), OperandSpec(right, name=right)]
        else:
            inner = text[text.index("(") + 1:-1]
            specs = [OperandSpec(t.strip(), name=t.strip()) for t in inner.split(",")]
    site = Site(id=0, path="net.py", line=3, col=1, end_line=3, end_col=10, kind=kind, op=op or text,
                text=text, operands=tuple(specs), scope="<module>", callee=callee, explicit=explicit)
    rec = Record(operands=tuple(vals), count=1)
    _analyse(site, rec, (None,) * len(vals))
    if aligned is not None:  # what the recorder reads off real pandas indexes
        rec.aligned = aligned
    return site, rec


def codes(site, rec):
    ctx = Context([SiteLog(site, [rec], last=rec)])
    found = [f for f in (outer_broadcast(site, rec, ctx), rank1_operand(site, rec, ctx),
                         pandas_mixing(site, rec, ctx)) if f is not None]
    return sorted((f.code, f.severity) for f in found)


W = ("SC101", "warning")
I = ("SC101", "info")


@pytest.mark.parametrize("text, vals, want", [
    ("y - y_hat", [nd(5), nd(5, 1)], [W]),                      # the seeds' silent bug: (m,) with (m,1)
    ("y_hat - y", [nd(5, 1), nd(5)], [W]),
    ("row * col", [nd(1, 5), nd(5, 1)], [W]),
    ("a - b", [nd(4, 1), nd(5)], [W]),                          # different lengths, nothing says why
    ("z + b", [nd(3, 5), nd(5)], []),                           # a bias row on a batch
    ("z + b", [nd(3, 5), nd(1, 5)], []),
    ("Z + b", [nd(3, 5), nd(3, 1)], []),                        # (h, m) + (h, 1)
    ("e / s", [nd(4, 3), nd(4, 1)], []),                        # keepdims division
    ("x * lr", [nd(4, 3), scalar()], []),
    ("x * loss", [nd(5, 1), nd(1)], []),                        # one-element arrays broadcast as scalars
    ("x * loss", [nd(5, 1), nd(1, 1)], []),
    ("a - b", [nd(4, 1), nd(4, 1)], []),
    ("t + t", [nd(2, 3, 4), nd(3, 4)], []),
    ("sq + sq.T", [nd(4, 1), nd(1, 4)], [I]),                   # an array and its own transpose: pairwise
    ("A @ B", [nd(4, 3), nd(3, 2)], []),
])
def test_elementwise_table(text, vals, want):
    assert codes(*make(text, vals)) == want


def test_spelled_out_outer_broadcast_is_info():
    specs = [OperandSpec("u[:, None]", explicit=True), OperandSpec("v[None, :]", explicit=True)]
    assert codes(*make("u[:, None] - v[None, :]", [nd(8, 1), nd(1, 5)], specs=specs, op="-")) == [I]


def test_operands_shaped_where_they_were_assigned_are_info_unless_same_length():
    specs = [OperandSpec("xs", name="xs", shaped_by_name=True), OperandSpec("ys", name="ys")]
    assert codes(*make("xs + ys", [nd(8, 1), nd(5)], specs=specs, op="+")) == [I]
    # (m, 1) with (m,): still the classic bug, whatever the history of the names
    assert codes(*make("xs + ys", [nd(8, 1), nd(8)], specs=specs, op="+")) == [W]


def test_sc101_message_and_fix():
    site, rec = make("y - y_hat", [nd(130), nd(130, 1)])
    f = outer_broadcast(site, rec, Context([]))
    assert f.result == (130, 130)
    assert f.message.startswith("`y - y_hat` stretches both operands: y (130,) and y_hat (130, 1) broadcast to "
                                "(130, 130)")
    assert "y is rank-1 (130,), which numpy treats as a row (1, 130)" in f.message
    assert f.fix == "y.reshape(-1, 1) - y_hat -> (130, 1)"


def test_sc101_fix_for_a_row_and_a_column_transposes():
    site, rec = make("r * c", [nd(1, 6), nd(6, 1)])
    assert outer_broadcast(site, rec, Context([])).fix in ("r.T * c -> (6, 1)", "r * c.T -> (1, 6)")


@pytest.mark.parametrize("x_shape, want", [((4,), [("SC102", "warning")]), ((4, 1), [])])
def test_transpose_of_a_rank1_array(x_shape, want):
    specs = [OperandSpec("dz", name="dz"), OperandSpec("x.T", transposed=True)]
    site, rec = make("np.dot(dz, x.T)", [nd(4), nd(*x_shape)], kind="call", op="np.dot", specs=specs,
                     callee="dot")
    assert codes(site, rec) == want
    if want:
        f = rank1_operand(site, rec, Context([]))
        assert "x.T does nothing, because x is rank-1 (4,)" in f.message
        assert f.fix.startswith("np.outer(dz, x) -> (4, 4)")


@pytest.mark.parametrize("axis, keepdims, n, want", [
    (1, False, 4, [("SC102", "warning")]),   # one value per row, lined up with the columns
    (-1, False, 4, [("SC102", "warning")]),
    (0, False, 4, []),                       # X - X.mean(axis=0): per column, as intended
    (1, True, 4, []),
])
def test_reduction_over_rows_meeting_a_matrix(axis, keepdims, n, want):
    specs = [OperandSpec("e", name="e"),
             OperandSpec(f"np.sum(e, axis={axis})", reduction_axis=axis, keepdims=keepdims, reduced="e")]
    reduced = nd(n) if not keepdims else nd(n, 1)
    assert codes(*make("e / s", [nd(n, n), reduced], specs=specs, op="/")) == want


def test_norms_of_another_array_line_up_with_the_columns_on_purpose():
    # dists (n_test, n_train) + np.sum(X_train ** 2, axis=1): correct, even with n_test == n_train
    specs = [OperandSpec("dists", name="dists"),
             OperandSpec("train_sq", name="train_sq", reduction_axis=1, reduced="X_train ** 2")]
    assert codes(*make("dists + train_sq", [nd(100, 100), nd(100)], specs=specs, op="+")) == []


def test_a_vector_against_its_own_reshape_is_a_pairwise_table():
    specs = [OperandSpec("sq_col", name="sq_col", shaped_by_name=True, shaped_from="sq"), OperandSpec("sq", name="sq")]
    assert codes(*make("sq_col + sq", [nd(8, 1), nd(8)], specs=specs, op="+")) == [I]


@pytest.mark.parametrize("left, severity", [((4,), "warning"), ((7, 4), "info")])
def test_transposed_rank1_on_the_left_of_a_product_is_right(left, severity):
    specs = [OperandSpec("w.T", transposed=True), OperandSpec("X.T", transposed=True)]
    site, rec = make("np.dot(w.T, X.T)", [nd(4), nd(4, 9)], kind="call", op="np.dot", specs=specs, callee="dot")
    assert codes(site, rec) == [("SC102", "info")]  # w.T @ X.T: numpy gives what w^T X^T means
    specs = [OperandSpec("a", name="a"), OperandSpec("b.T", transposed=True)]
    site, rec = make("np.dot(a, b.T)", [nd(*left), nd(4)], kind="call", op="np.dot", specs=specs, callee="dot")
    assert codes(site, rec) == [("SC102", severity)]


@pytest.mark.parametrize("vals, kind, aligned, want", [
    ([series(6), nd(6)], "binop", None, [("SC201", "info")]),       # by position, as numpy would
    ([series(6), nd(5)], "binop", None, [("SC201", "warning")]),
    ([series(300), nd(10, 300)], "binop", None, [("SC201", "warning")]),
    ([frame(6, 3), nd(3)], "binop", None, [("SC201", "info")]),     # per-column scaling
    ([frame(6, 3), nd(6)], "binop", None, []),  # meant the rows: SC202's (tests/test_rules_pandas10.py)
    ([frame(6, 3), nd(6, 1)], "binop", None, [("SC201", "info")]),  # broadcasts as numpy would
    ([frame(6, 3), nd(3, 3)], "binop", None, [("SC201", "warning")]),
    ([series(6), scalar()], "binop", None, []),
    ([series(4), series(4, "Index of 4 labels")], "binop", False, []),  # labels: SC202's
    ([series(4), series(4)], "binop", True, []),
    ([frame(300, 784), nd(784, 10)], "call", None, [("SC201", "info")]),   # np.dot(df, W) only converts
])
def test_pandas_mixing(vals, kind, aligned, want):
    if kind == "call":
        site, rec = make("np.dot(x, W)", vals, kind="call", op="np.dot", callee="dot")
    else:
        site, rec = make("a - b", vals, aligned=aligned)
    assert codes(site, rec) == want


def _method(text, vals, callee):
    recv, inner = text.split(f".{callee}(")
    specs = [OperandSpec(recv, name=recv if recv.isidentifier() else None)]
    specs += [OperandSpec(t.strip(), name=t.strip()) for t in inner[:-1].split(",")]
    return make(text, vals, kind="method", op=f"{recv}.{callee}", specs=specs, callee=callee)


def pandas_findings(site, rec):
    return [(f.severity, f.message) for f in [pandas_mixing(site, rec, Context([SiteLog(site, [rec], last=rec)]))]
            if f is not None]


@pytest.mark.parametrize("text, callee", [("reg.fit(X, y)", "fit"), ("reg.score(X, y)", "score")])
def test_a_method_that_passes_an_array_and_a_series_combines_nothing(text, callee):
    model = Value("other", None, type_name="LinearRegression")
    assert pandas_findings(*_method(text, [model, nd(20, 2), series(20)], callee)) == []


def test_a_function_that_passes_them_on_combines_nothing():
    site, rec = make("train_test_split(X, y)", [nd(20, 2), series(20)], kind="call", op="train_test_split",
                     callee="train_test_split")
    assert pandas_findings(site, rec) == []


def test_ndarray_dot_converts_a_dataframe_and_returns_an_array():
    [(severity, msg)] = pandas_findings(*_method("X.T.dot(y)", [nd(3, 20), frame(20, 2)], "dot"))
    assert severity == "info"
    assert msg == "`X.T.dot(y)`: ndarray.dot turns y (DataFrame (20, 2)) into a numpy array here, and the " \
                  "result is a numpy array"


def test_a_pandas_method_that_combines_is_judged_like_an_operator():
    [(severity, msg)] = pandas_findings(*_method("s.sub(P)", [series(300), nd(10, 300)], "sub"))
    assert severity == "warning" and "pandas does not broadcast a 2-D array against a Series" in msg
    [(severity, msg)] = pandas_findings(*_method("df.dot(W)", [frame(6, 3), nd(3, 2)], "dot"))
    assert severity == "info" and msg.endswith("the result is a DataFrame with df's row labels and columns 0..k-1")


def test_a_ufunc_hands_pandas_operands_to_pandas():
    site, rec = make("np.maximum(s, a)", [series(6), nd(5)], kind="call", op="np.maximum", callee="maximum")
    assert codes(site, rec) == [("SC201", "warning")]


def test_drift_from_the_recorded_update():
    site = Site(id=0, path="net.py", line=9, col=5, end_line=9, end_col=20, kind="binop", op="-",
                text="b - lr * db", operands=(OperandSpec("b", name="b"), OperandSpec("lr * db")),
                scope="<module>", targets=("b",), self_refs=((0, 0),))
    rec = Record(operands=(nd(3), nd(1, 3)), result=nd(1, 3), count=1)
    log = SiteLog(site, [rec], drift=[("b", (3,), (1, 3))], last=rec)
    [f] = [f for f in run([log]) if f.code == "SC103"]
    assert f.severity == "warning" and f.result == (1, 3)
    assert f.message.startswith("b changes shape at `b = b - lr * db`: (3,) before, (1, 3) after")
    assert f.fix == "make lr * db (3,) like b: (lr * db).reshape(3,)" or "(3,)" in f.fix


def test_findings_are_deduplicated_per_site_and_code():
    site, rec1 = make("y - y_hat", [nd(5), nd(5, 1)])
    rec2 = Record(operands=(nd(7), nd(7, 1)), count=3)
    _analyse(site, rec2, (None, None))
    [f] = run([SiteLog(site, [rec1, rec2], last=rec2)])
    assert f.code == "SC101" and f.count == 4


def test_ignored_codes_are_dropped():
    site, rec = make("y - y_hat", [nd(5), nd(5, 1)])
    assert run([SiteLog(site, [rec], last=rec)], ignore=["sc101"]) == []


@pytest.mark.parametrize("pandas_val, arr, want", [
    (Value("DataFrame", (5, 1), "float64"), nd(5), [("p - y.to_numpy().ravel()", (5,))]),
    (series(5), nd(5, 1), [("p - y.to_numpy().reshape(-1, 1)", (5, 1))]),
    (series(5), nd(5), [("p - y.to_numpy()", (5,))]),
])
def test_a_pandas_fix_never_becomes_an_outer_broadcast(pandas_val, arr, want):
    from shapecheck._rules import numpy_versions

    site, rec = make("p - y", [arr, pandas_val])
    got = [(f"p - {text}", res) for text, _, res, _ in numpy_versions(site, 1, pandas_val, arr)]
    assert got == want
    ctx = Context([SiteLog(site, [rec], last=rec)])
    f = pandas_mixing(site, rec, ctx) or label_alignment(site, rec, ctx)  # a frame as long as p: SC202's
    assert ".to_numpy()" in f.fix and "(5, 5)" not in f.fix


def test_a_parameter_reshaped_on_an_assumed_shape_that_outgrows_the_data_is_a_warning():
    specs = [OperandSpec("gamma", name="gamma", shaped_by_name=True, shaped_from="gamma"),
             OperandSpec("x_norm", name="x_norm")]
    site, rec = make("gamma * x_norm", [nd(1, 1, 6, 1, 1, 1, 1), nd(2, 6, 4, 5)], specs=specs, op="*")
    assert codes(site, rec) == [W]
    f = outer_broadcast(site, rec, Context([]))
    assert "it now has 7 axes, more than x_norm's 4" in f.message
    assert f.fix == "gamma.reshape(1, 6, 1, 1) * x_norm -> (2, 6, 4, 5)"


def test_a_name_reshaped_in_place_into_a_pairwise_table_stays_info():
    specs = [OperandSpec("x", name="x", shaped_by_name=True, shaped_from="x"), OperandSpec("y", name="y")]
    assert codes(*make("x - y", [nd(8, 1), nd(5)], specs=specs, op="-")) == [I]


def test_a_partial_outer_broadcast_is_not_said_to_pair_every_element():
    site, rec = make("a * b", [nd(32, 3, 3, 1, 1), nd(1, 3, 3, 1, 4)])
    f = outer_broadcast(site, rec, Context([]))
    assert "every element" not in f.message
    assert "so numpy repeats a 4 times and b 32 times to fill it" in f.message


def test_a_pandas_result_has_the_dtype_numpy_promotion_gives():
    frame_int = Value("DataFrame", (3, 2), "int64")
    site, rec = make("df - arr", [frame_int, nd(3, 2)])
    assert (rec.result.kind, rec.result.dtype) == ("DataFrame", "float64")


def test_a_name_reshaped_in_place_for_one_more_axis_stays_info():
    # per-feature distances to k thresholds: X = X[:, :, None]; X - c
    specs = [OperandSpec("X", name="X", shaped_by_name=True, shaped_from="X"), OperandSpec("c", name="c")]
    assert codes(*make("X - c", [nd(8, 3, 1), nd(3, 5)], specs=specs, op="-")) == [I]


def test_a_pandas_method_told_its_axis_is_quiet():
    specs = [OperandSpec("df", name="df"), OperandSpec("mu", name="mu")]
    site = Site(id=0, path="net.py", line=3, col=1, end_line=3, end_col=10, kind="method", op="df.sub",
                text="df.sub(mu, axis=0)", operands=tuple(specs), scope="<module>", callee="sub",
                keywords=(("axis", "0"),))
    rec = Record(operands=(frame(6, 3), nd(6)), count=1)
    assert pandas_findings(site, rec) == []
