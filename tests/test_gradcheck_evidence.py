"""No false pass, no unsupported claim: a consistent error is evidence whatever the tensor's size,
an unsettled row is never ok, and transpose/scale/sign are claimed only when over-determined."""

from __future__ import annotations

import numpy as np
import pytest

import shapecheck._gradcheck as gc
from gradnets import colmajor_tanh, rowmajor_relu
from shapecheck import assert_gradients_close, gradcheck


def half_square(p):
    return 0.5 * np.sum(p["W"] ** 2)


@pytest.mark.parametrize("factor", [0.9, 0.56, 1.05, 0.99])
def test_a_small_consistent_factor_on_a_small_tensor_fails(factor):
    # The reproducer: 0.9 * W on 6 entries was "passed".
    W = np.random.default_rng(0).standard_normal(6)
    r = gradcheck(half_square, lambda p: {"W": factor * p["W"]}, {"W": W})
    assert not r.passed
    row = r.rows[0]
    assert (row.status, row.diagnosis.kind) == ("wrong", "scale")
    assert row.diagnosis.factor == pytest.approx(factor, rel=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_a_uniform_factor_on_a_large_weight_fails_in_auto_mode(seed):
    W = np.random.default_rng(seed).standard_normal((784, 100))
    r = gradcheck(half_square, lambda p: {"W": 0.9 * p["W"]}, {"W": W}, seed=seed)
    row = r.rows[0]
    assert not r.passed and row.status == "wrong"
    assert row.evaluations <= gc.AUTO_BUDGET == 40
    assert (row.diagnosis.kind, row.diagnosis.factor) == ("scale", 0.9)


def test_every_tensor_with_the_same_slip_is_named():
    rng = np.random.default_rng(1)
    params = {"W": rng.standard_normal(6), "b": rng.standard_normal(3)}

    def loss(p):
        return 0.5 * np.sum(p["W"] ** 2) + np.sum(np.sin(p["b"]))

    r = gradcheck(loss, lambda p: {"W": 0.8 * p["W"], "b": 0.8 * np.cos(p["b"])}, params)
    assert [(x.name, x.status, x.diagnosis.kind, x.diagnosis.factor) for x in r.rows] == [
        ("W", "wrong", "scale", 0.8), ("b", "wrong", "scale", 0.8)]
    assert "Only" not in r.overall_text
    assert r.overall_kind == "scale" and "Every gradient is off by the same factor 0.8" in r.overall_text


@pytest.mark.parametrize("bug", [("sign", "W1"), ("scale", "b1"), ("sign", "W2"), ("zero", "b2")])
def test_a_slip_shared_by_two_tensors_names_both(bug):
    # A shared upstream slip shows in the weight and in the bias: both are named, the look-first one last.
    loss, grads, params = rowmajor_relu(seed=3)
    kind, name = bug
    other = {"W1": "b1", "b1": "W1", "W2": "b2", "b2": "W2"}[name]

    def wrong(p):
        g = grads(p)
        for k in (name, other):
            g[k] = {"sign": -g[k], "scale": 0.8 * g[k], "zero": 0 * g[k]}[kind]
        return g

    r = gradcheck(loss, wrong, params)
    assert {x.name for x in r.rows if x.status == "wrong"} == {name, other}
    assert all(n in r.overall_text for n in (name, other))


@pytest.mark.parametrize("mode", ["auto", "full"])
def test_a_random_extra_term_is_never_called_transposed_or_scaled(mode):
    claims = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        A, B, W, E = (rng.standard_normal((4, 4)) for _ in range(4))

        def loss(p):
            return np.sum(np.tanh(A @ p["W"] @ B))

        def grads(p):
            g = A.T @ (1 - np.tanh(A @ p["W"] @ B) ** 2) @ B.T
            return {"W": g + 0.3 * np.linalg.norm(g) * E / np.linalg.norm(E)}

        row = gradcheck(loss, grads, {"W": W}, mode=mode, seed=seed).rows[0]
        assert row.status == "wrong"
        claims.append(row.diagnosis.kind)
    assert not {"transpose", "scale", "sign"} & set(claims), claims


def test_one_number_alone_claims_no_pattern():
    r = gradcheck(lambda p: float(np.sin(p["b"])), lambda p: {"b": -np.cos(p["b"])}, {"b": 0.3})
    row = r.rows[0]
    assert row.status == "wrong" and row.diagnosis.kind == "unknown"
    assert "a single probe cannot tell a sign or a factor" in row.diagnosis.text
    assert "analytic / numeric = -1" in row.diagnosis.text


def test_one_number_borrows_a_factor_established_elsewhere():
    rng = np.random.default_rng(2)
    params = {"W": rng.standard_normal((3, 4)), "b": np.array([0.4])}

    def loss(p):
        return 0.5 * np.sum(p["W"] ** 2) + float(np.sum(np.sin(p["b"])))

    r = gradcheck(loss, lambda p: {"W": -p["W"], "b": -np.cos(p["b"])}, params)
    b = r.rows[1]
    assert (b.status, b.diagnosis.kind, b.diagnosis.factor) == ("wrong", "sign", -1.0)
    assert "the same factor as W" in b.diagnosis.text
    assert r.overall_kind == "sign"


def test_a_row_the_budget_cannot_settle_is_unsure_never_ok(monkeypatch):
    # Every probe of 6 entries is spent on the first pass: nothing is left to re-check with, and the
    # disagreements follow no single factor.
    monkeypatch.setattr(gc, "AUTO_BUDGET", 12)
    W = np.random.default_rng(0).standard_normal(6)
    offset = 0.05 * np.cos(7 * np.arange(6))
    r = gradcheck(half_square, lambda p: {"W": p["W"] + offset}, {"W": W})
    row = r.rows[0]
    assert not r.passed and row.status == "unsure"
    assert row.evaluations == 12 and row.mismatched == 6
    assert "not settled" in row.diagnosis.text and "mode='full' settles it" in row.diagnosis.text
    assert r.overall_kind == "unsure" and r.overall_text.startswith("Not settled: W")
    assert str(r).startswith("gradient check FAILED: Not settled")
    with pytest.raises(AssertionError, match="Not settled"):
        assert_gradients_close(half_square, lambda p: {"W": p["W"] + offset}, {"W": W})


def test_unsettled_probes_sharing_one_factor_are_wrong(monkeypatch):
    # The same budget, but every probe reads analytic / numeric = 0.9: consistent, so evidence.
    monkeypatch.setattr(gc, "AUTO_BUDGET", 12)
    W = np.random.default_rng(0).standard_normal(6)
    row = gradcheck(half_square, lambda p: {"W": 0.9 * p["W"]}, {"W": W}).rows[0]
    assert (row.status, row.diagnosis.kind, row.diagnosis.factor) == ("wrong", "scale", 0.9)
    assert row.evaluations == 12


def test_a_float32_factor_hidden_by_round_off_at_small_steps_is_caught():
    # The loss of 4e4 in float32 has round-off near the size of the error at small steps:
    # agreement within that noise is no evidence, and the row must not pass.
    W = np.random.default_rng(0).standard_normal((784, 100)).astype(np.float32)

    def loss(p):
        return float(np.vdot(p["W"], p["W"])) * 0.5

    for mode in ("auto", "directions"):
        assert gradcheck(loss, lambda p: {"W": p["W"]}, {"W": W}, mode=mode).passed
        r = gradcheck(loss, lambda p: {"W": 0.9 * p["W"]}, {"W": W}, mode=mode)
        assert not r.passed and r.rows[0].status in ("wrong", "unsure"), str(r)


@pytest.mark.parametrize("n", [6, 10, 11, 400, 78400])
def test_auto_spends_at_most_40_evaluations_per_tensor_when_wrong(n):
    W = np.random.default_rng(n).standard_normal(n)
    for change in (lambda g: 0.9 * g, lambda g: -g, lambda g: g + 0.01 * np.abs(g).max()):
        r = gradcheck(half_square, lambda p: {"W": change(p["W"])}, {"W": W})
        assert r.rows[0].status == "wrong" and r.rows[0].evaluations <= 40


# -- every report agrees with itself -------------------------------------------------------------

def _wrap(grads, name, change, prefix=""):
    def wrong(p):
        g = grads(p)
        g[prefix + name] = change(g[prefix + name])
        return g
    return wrong


CHANGES = {
    "sign": lambda v: -v, "x0.9": lambda v: 0.9 * v, "x1.5": lambda v: 1.5 * v, "zero": np.zeros_like,
    "transpose": lambda v: v.T if v.ndim == 2 and v.shape[0] == v.shape[1] else v[::-1],
    "one entry": lambda v: v + (np.arange(v.size).reshape(v.shape) == 0) * (0.2 * np.abs(v).max() + 1e-3),
}


def _reports():
    for dtype in (np.float64, np.float32):
        for seed in range(3):
            for build, prefix in ((rowmajor_relu, ""), (colmajor_tanh, "d")):
                loss, grads, params = build(seed=seed, dtype=dtype)
                for mode in ("auto", "full"):
                    yield gradcheck(loss, grads, params, mode=mode, seed=seed), dtype
                    for name in params:
                        for kind, change in CHANGES.items():
                            if seed and kind not in ("x0.9", "one entry"):
                                continue
                            wrong = _wrap(grads, name, change, prefix)
                            yield gradcheck(loss, wrong, params, mode=mode, seed=seed), dtype


def test_status_numbers_and_notes_never_contradict_each_other():
    count = 0
    for report, dtype in _reports():
        count += 1
        rows = report.rows
        assert report.passed == all(r.status in ("ok", "kink") for r in rows), str(report)
        assert str(report).startswith("gradient check passed" if report.passed else "gradient check FAILED")
        loose = 3e-2 if dtype == np.float32 else 1e-4
        for r in rows:
            probes = r.checked + r.directions
            assert r.status in ("ok", "wrong", "shape", "kink", "unsure", "skipped")
            assert not any("re-checked fine" in n for n in r.notes), str(report)
            if r.status == "ok":
                assert r.mismatched == 0 and r.diagnosis.kind == "ok", str(report)
                assert r.rel_error is not None and r.rel_error <= loose, str(report)
            if r.status == "wrong":
                assert 1 <= r.mismatched <= probes and r.rel_error > 0, str(report)
            if r.status == "unsure":
                assert r.mismatched >= 1 and not report.passed
            if any("confirmed wrong by re-checks" in n for n in r.notes):
                # Re-checks cost loss evaluations beyond the first pass: they happened.
                assert r.evaluations > 2 * probes, str(report)
            if r.diagnosis.kind in ("sign", "scale", "transpose") and r.status == "wrong":
                assert probes >= 2 or "the same factor as" in r.diagnosis.text, str(report)
            if report.mode == "auto":
                assert r.evaluations <= gc.AUTO_BUDGET
        wrong = [r.name for r in rows if r.status in ("wrong", "shape")]
        for name in wrong:
            assert name in report.headline
            assert name in report.overall_text or report.overall_kind in ("sign", "scale"), str(report)
    assert count > 200


@pytest.mark.parametrize("size", [{}, {"m": 64, "h": 20}])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("build", [rowmajor_relu, colmajor_tanh])
def test_no_false_failure_on_correct_networks_over_seeds(build, dtype, size):
    # The wider ReLU net in float32 puts kinks and round-off of the same size as the
    # first-pass disagreements: re-checks must settle them as kinks, not as errors.
    for seed in range(8):
        loss, grads, params = build(seed=seed, dtype=dtype, **size)
        for mode in ("auto", "full", "directions"):
            r = gradcheck(loss, grads, params, mode=mode, seed=seed + 7)
            assert r.passed, str(r)


def test_no_false_failure_on_the_correct_fixtures_over_seeds():
    import runpy
    from pathlib import Path

    from shapecheck._gradcheck import gradcheck_from_namespace
    from test_gradcheck_fixtures import expectations

    checked = 0
    for path in sorted((Path(__file__).parent.parent / "fixtures" / "grad").glob("*.py")):
        spec, expected = expectations(path)
        if expected is not None:
            continue
        namespace = runpy.run_path(str(path), run_name="__shapecheck_fixture__")
        for seed in range(6):
            for mode in ("auto", "full"):
                r = gradcheck_from_namespace(namespace, spec, mode=mode, seed=seed)
                assert r.passed, f"{path.name} seed {seed}:\n{r}"
                checked += 1
    assert checked >= 5 * 12
