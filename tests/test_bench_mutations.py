"""The mutation benchmark's own ground: clean networks are right, every operator makes a real slip, runs repeat."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from mutnets import NETWORKS  # noqa: E402
from mutnets.mutator import OPERATORS, classify, compare, leaves, lookup, mutants, network  # noqa: E402

OPERATOR_LABELS = {
    "sign", "x2", "1/m dropped", "1/m added", "N-1", "dropout", "reg missing", "reg doubled", "reg halved",
    "transpose added", "transpose removed", "bias not summed", "sum wrong axis", "activation wrong array",
    "activation dropped", "read after update", "swapped", "zeroed",
}


def numeric_gradient(loss, params, arr, h=1e-6):
    """Central differences of ``loss`` over every entry of ``arr`` (a leaf of ``params``), in place and restored."""
    out = np.zeros(arr.shape)
    for i in np.ndindex(arr.shape):
        old = arr[i]
        arr[i] = old + h
        up = loss(params)
        arr[i] = old - h
        down = loss(params)
        arr[i] = old
        out[i] = (up - down) / (2 * h)
    return out


@pytest.mark.parametrize("name", NETWORKS)
def test_clean_network_gradient_matches_full_finite_differences(name):
    loss, grads, params = network(name).problem(0)
    analytic = grads(params)
    norms = []
    for leaf, path, arr in leaves(params):
        assert arr.dtype == np.float64
        g = lookup(analytic, path)
        assert g is not None and g.shape == arr.shape, leaf
        n = numeric_gradient(loss, params, arr)
        rel = np.linalg.norm(g - n) / (np.linalg.norm(g) + np.linalg.norm(n))
        assert rel < 1e-6, f"{name} {leaf}: relative error {rel:.2e}"
        norms.append(np.linalg.norm(g))
    # No gradient is zero up to round-off, or a mutant's "wrong" could be round-off.
    assert min(norms) > 1e-4 * max(norms)


@pytest.mark.parametrize("name", NETWORKS)
def test_float32_network_stays_float32(name):
    loss, _, params = network(name).problem(0, np.float32)
    assert {a.dtype for _, _, a in leaves(params)} == {np.dtype(np.float32)}
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":  # NEP 50: numpy 1.x promotes float32 * 0.5 to float64
        assert np.asarray(loss(params)).dtype == np.float32


def test_every_operator_makes_a_mutant_that_compiles_and_changes_a_gradient():
    found = {}
    for name in NETWORKS:
        for m in mutants(name):
            if m.op in found:
                continue
            compile(m.tree(), network(name).__file__, "exec")
            status, truth = classify(m)
            if status == "valid":
                assert truth.wrong
                found[m.op] = m
    assert set(found) == OPERATOR_LABELS
    assert len(OPERATORS) == 9


def test_mutant_names_the_line_it_edits():
    for name in ("colmajor_l2", "minchar_rnn", "nnfs_layers"):
        tree = ast.parse(Path(network(name).__file__).read_text())
        at = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt):
                at.setdefault(node.lineno, set()).add(ast.unparse(node))
        for m in mutants(name):
            assert m.before in at[m.line], (name, m.line, m.op)
            assert m.after != m.before


def test_mutant_keeps_the_network_file_and_line_in_tracebacks():
    m = next(m for m in mutants("colmajor_l2") if m.op == "transpose removed" and "dA2" in m.after)
    _, grads, params = m.load().problem(0)
    with pytest.raises(ValueError) as info:
        grads(params)
    frame = info.traceback[-1]
    assert Path(str(frame.path)).name == "colmajor_l2.py" and frame.lineno + 1 == m.line


def test_mutator_is_deterministic():
    for name in NETWORKS:
        a, b = mutants(name), mutants(name)
        assert [(m.op, m.line, m.after) for m in a] == [(m.op, m.line, m.after) for m in b]
        assert ast.dump(a[0].tree()) == ast.dump(b[0].tree())


def test_read_after_update_moves_the_update_before_the_read():
    (m,) = [m for m in mutants("nnfs_layers") if m.op == "read after update"]
    assert m.before == "self.dinputs = np.dot(dvalues, self.weights.T)"
    status, truth = classify(m)
    # dinputs feeds every layer below the one that updated: W1, b1, W2, b2 (not W3, b3).
    assert status == "valid" and truth.wrong == {"W1", "b1", "W2", "b2"}


def test_ground_truth_patterns():
    rng = np.random.default_rng(0)
    c = {"W": rng.standard_normal((3, 3)), "b": rng.standard_normal(3), "V": rng.standard_normal((2, 3))}
    t = compare(c, {"W": c["W"].T, "b": -c["b"], "V": c["V"]})
    assert t.wrong == {"W", "b"} and t.patterns == {"W": {"transpose"}, "b": {"sign"}}
    t = compare(c, {"W": 0.8 * c["W"], "b": np.zeros(3), "V": c["V"].T})
    assert t.patterns == {"W": {"scale"}, "b": {"zero"}, "V": {"shape", "transpose"}}
    assert t.factors["W"] == pytest.approx(0.8)
    t = compare(c, {"W": c["W"] + 0.3 * rng.standard_normal((3, 3)), "b": c["b"] * (1 + 1e-12), "V": None})
    assert t.wrong == {"W", "V"} and t.patterns == {"W": frozenset(), "V": {"shape"}}


def test_scoring_of_diagnoses():
    from bench_mutations import diagnosis_matches, row_line

    assert diagnosis_matches("scale", 0.8, frozenset({"scale"}), 0.8)
    assert not diagnosis_matches("scale", 0.5, frozenset({"scale"}), 0.8)
    assert diagnosis_matches("scale", -1.0, frozenset({"sign"}), None)
    assert not diagnosis_matches("transpose", 4.326, frozenset({"transpose"}), None)
    assert not diagnosis_matches("transpose", None, frozenset(), None)
    assert diagnosis_matches("shape", None, frozenset({"shape", "transpose"}), None)

    class Row:
        location = "my_net.py:47"

    assert row_line(Row()) == 47 and row_line(object()) is None
