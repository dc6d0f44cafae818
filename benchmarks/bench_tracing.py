"""Tracing overhead: traced / plain time for three typical hand-written networks, measured in one run.

    python benchmarks/bench_tracing.py [--repeat N] [--quick]

Each workload is compiled twice from the same source, plainly and rewritten by
shapecheck; runs alternate (plain, traced, plain, ...) and the ratio of the
medians is printed.  Targets (issue 2): vectorised <= 1.05x, per-example loop
<= 1.6x, tiny full batch <= 1.4x; and (issue 12) a site past its signature
cap (50 input shapes) no dearer than one whose 32 shapes are all kept.  This is a benchmark, not a test: it
prints, it does not assert.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from shapecheck import _recorder  # noqa: E402
from shapecheck._rewrite import rewrite  # noqa: E402

VECTORISED = """
import numpy as np
rng = np.random.default_rng(0)
m = {m}
X = rng.random((m, 784))
Y = np.eye(10)[rng.integers(0, 10, m)]
W1 = rng.standard_normal((784, 64)) * 0.01
b1 = np.zeros((1, 64))
W2 = rng.standard_normal((64, 10)) * 0.01
b2 = np.zeros((1, 10))
for it in range({iters}):
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    Z2 = A1 @ W2 + b2
    E = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    A2 = E / E.sum(axis=1, keepdims=True)
    dZ2 = (A2 - Y) / m
    dW2 = A1.T @ dZ2
    db2 = dZ2.sum(axis=0, keepdims=True)
    dZ1 = (dZ2 @ W2.T) * (Z1 > 0)
    dW1 = X.T @ dZ1
    db1 = dZ1.sum(axis=0, keepdims=True)
    W1 -= 0.1 * dW1
    b1 -= 0.1 * db1
    W2 -= 0.1 * dW2
    b2 -= 0.1 * db2
"""

PER_EXAMPLE = """
import numpy as np
rng = np.random.default_rng(0)
n = {n}
X = rng.random((n, 784))
labels = rng.integers(0, 10, n)
W1 = rng.standard_normal((30, 784)) * 0.01
b1 = np.zeros((30, 1))
W2 = rng.standard_normal((10, 30)) * 0.01
b2 = np.zeros((10, 1))

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))

def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1 - s)

for i in range(n):
    x = X[i].reshape(784, 1)
    y = np.zeros((10, 1))
    y[labels[i]] = 1.0
    z1 = np.dot(W1, x) + b1
    a1 = sigmoid(z1)
    z2 = np.dot(W2, a1) + b2
    a2 = sigmoid(z2)
    delta2 = (a2 - y) * sigmoid_prime(z2)
    dW2 = np.dot(delta2, a1.T)
    delta1 = np.dot(W2.T, delta2) * sigmoid_prime(z1)
    dW1 = np.dot(delta1, x.T)
    W2 -= 0.5 * dW2
    b2 -= 0.5 * delta2
    W1 -= 0.5 * dW1
    b1 -= 0.5 * delta1
"""

TINY = """
import numpy as np
rng = np.random.default_rng(0)
X = rng.standard_normal((130, 4))
y = (rng.random((130, 1)) > 0.5).astype(float)
w1 = rng.random((4, 8))
w2 = rng.random((8, 1))

def sigmoid(x, deriv=False):
    if deriv:
        return sigmoid(x) * (1 - sigmoid(x))
    return 1 / (1 + np.exp(-x))

for it in range({iters}):
    z1 = np.dot(X, w1)
    a1 = sigmoid(z1)
    z2 = np.dot(a1, w2)
    y_hat = sigmoid(z2)
    delta3 = (y - y_hat) * sigmoid(z2, deriv=True)
    dJdW2 = a1.T.dot(delta3)
    delta2 = np.dot(delta3, w2.T) * sigmoid(z1, deriv=True)
    dJdW1 = np.dot(X.T, delta2)
    w1 += 0.01 * dJdW1
    w2 += 0.01 * dJdW2
"""


# Variable-length inputs (sentences, images): one site sees as many operand shapes as there are lengths.
# Past 32 signatures a site keeps no more (issue 12, item 24): a capped run must cost what a kept one does.
LENGTHS = """
import numpy as np
rng = np.random.default_rng(0)
W = rng.standard_normal((16, 8))
b = np.zeros(8)
sentences = [rng.standard_normal((n, 16)) for n in range(1, {shapes} + 1)]
for it in range({iters}):
    for x in sentences:
        h = np.tanh(x @ W + b)
        s = h.sum(axis=0) / len(x)
"""


def compile_both(source: str, name: str):
    plain = compile(source, name, "exec")
    rw = rewrite(source, name, name, _recorder.next_id())
    _recorder.register(rw, name)
    return plain, rw.code


def timed(code) -> float:
    ns = {"__name__": "__bench__"}
    t0 = time.perf_counter()
    exec(code, ns)
    return time.perf_counter() - t0


def measure(label: str, source: str, repeat: int) -> tuple[float, float, float]:
    plain, traced = compile_both(source, f"<{label}>")
    timed(plain), timed(traced)  # warm up caches, the allocator and the recorder's first signatures
    p, t = [], []
    for _ in range(repeat):
        p.append(timed(plain))
        t.append(timed(traced))
    mp, mt = statistics.median(p), statistics.median(t)
    return mp, mt, mt / mp


def memory(iters_small: int = 200, iters_large: int = 2000) -> str:
    """The recorder's memory does not grow with the number of iterations: run the tiny network traced
    for N and for 10 N iterations and compare what the recorder keeps."""
    import tracemalloc

    out = []
    for iters in (iters_small, iters_large):
        _, traced = compile_both(TINY.format(iters=iters), f"<tiny-{iters}>")
        tracemalloc.start()
        timed(traced)
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, "*/shapecheck/_*.py")])
        tracemalloc.stop()
        kept = sum(stat.size for stat in snapshot.statistics("filename"))
        logs = [lg for lg in _recorder.snapshot() if lg.site.path == f"<tiny-{iters}>"]
        records = sum(len(lg.records) for lg in logs)
        runs = sum(r.count for lg in logs for r in lg.records)
        out.append((iters, records, runs, kept))
    (n1, r1, c1, k1), (n2, r2, c2, k2) = out
    return (f"recorder memory: {r1} records for {c1} recorded operations ({n1} iterations), {r2} records for "
            f"{c2} operations ({n2} iterations); held by shapecheck after the run: {k1 / 1024:.1f} KiB vs "
            f"{k2 / 1024:.1f} KiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smaller workloads, for a smoke run")
    opts = ap.parse_args()
    _recorder.install()
    q = opts.quick
    workloads = [
        ("vectorised MNIST-size (X 42000x784, 784-64-10, full batch)",
         VECTORISED.format(m=4200 if q else 42000, iters=2), "<= 1.05x"),
        ("per-example column vectors (784-30-10, 2000 examples)", PER_EXAMPLE.format(n=200 if q else 2000), "<= 1.6x"),
        ("tiny full batch (130x4, 4-8-1, 2000 iterations)", TINY.format(iters=200 if q else 2000), "<= 1.4x"),
        ("variable lengths, 32 input shapes (all kept)", LENGTHS.format(shapes=32, iters=20 if q else 200), ""),
        ("variable lengths, 50 input shapes (18 past the cap)", LENGTHS.format(shapes=50, iters=13 if q else 128),
         "as 32"),
    ]
    print(f"{'workload':58} {'plain':>9} {'traced':>9} {'ratio':>7}  target")
    for label, source, target in workloads:
        mp, mt, ratio = measure(label, source, max(3, opts.repeat if "vectorised" not in label else 3))
        print(f"{label:58} {mp * 1e3:8.1f}ms {mt * 1e3:8.1f}ms {ratio:6.2f}x  {target}")
    print(memory())


if __name__ == "__main__":
    main()
