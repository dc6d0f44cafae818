"""Gradient-check benchmark: cost of auto against full, detection of injected bugs, false failures, peak memory.

Not a test: run ``python benchmarks/bench_gradcheck.py`` (add ``--quick`` to
skip the full-mode run, about a minute and a half here). Everything is
measured in this one run on an MLP 784-100-10 (ReLU, softmax cross-entropy,
79,510 parameters) with a batch of 256 synthetic MNIST-like examples.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from shapecheck._gradcheck import AUTO_BUDGET, gradcheck

M, N_IN, N_HID, N_OUT = 256, 784, 100, 10


def mlp(seed: int, dtype=np.float64):
    """(loss, grads, params) for the 784-100-10 MLP, row-major batch, mean cross-entropy."""
    rng = np.random.default_rng(seed)
    X = rng.random((M, N_IN)).astype(dtype)  # pixel intensities in [0, 1)
    Y = np.eye(N_OUT, dtype=dtype)[rng.integers(0, N_OUT, M)]
    params = {
        "W1": (rng.normal(size=(N_IN, N_HID)) * np.sqrt(2 / N_IN)).astype(dtype),
        "b1": np.full(N_HID, 0.01, dtype),
        "W2": (rng.normal(size=(N_HID, N_OUT)) * np.sqrt(2 / N_HID)).astype(dtype),
        "b2": np.zeros(N_OUT, dtype),
    }

    def forward(p):
        z1 = X @ p["W1"] + p["b1"]
        a1 = np.maximum(z1, 0)
        z2 = a1 @ p["W2"] + p["b2"]
        z2 = z2 - z2.max(axis=1, keepdims=True)
        probs = np.exp(z2) / np.exp(z2).sum(axis=1, keepdims=True)
        return z1, a1, probs

    def loss(p):
        return -np.sum(Y * np.log(forward(p)[2])) / M

    def grads(p):
        z1, a1, probs = forward(p)
        dz2 = (probs - Y) / M
        dz1 = (dz2 @ p["W2"].T) * (z1 > 0)
        return {"W1": X.T @ dz1, "b1": dz1.sum(axis=0), "W2": a1.T @ dz2, "b2": dz2.sum(axis=0)}

    return loss, grads, params


def inject(grads, kind: str, name: str, factor: float):
    def wrong(p):
        g = grads(p)
        v = g[name]
        g[name] = {"sign": -v, "scale": factor * v, "transpose": v.T, "zero": np.zeros_like(v)}[kind]
        return g

    return wrong


def cost(quick: bool) -> None:
    loss, grads, params = mlp(0)
    size = sum(v.size for v in params.values())
    print(f"MLP {N_IN}-{N_HID}-{N_OUT}, batch {M}: {size:,} parameters in {len(params)} tensors")
    t = time.perf_counter()
    for _ in range(20):
        loss(params)
    one = (time.perf_counter() - t) / 20
    print(f"one loss evaluation: {one * 1e3:.2f} ms")
    rows = []
    for mode in ["auto"] + ([] if quick else ["full"]):
        t = time.perf_counter()
        r = gradcheck(loss, grads, params, mode=mode)
        dt = time.perf_counter() - t
        per = max(row.evaluations for row in r.rows)
        rows.append((mode, r.evaluations, per, dt, r.passed))
    print(f"{'mode':6} {'loss evals':>11} {'max per tensor':>15} {'time (s)':>9}  passed")
    for mode, ev, per, dt, ok in rows:
        print(f"{mode:6} {ev:>11,} {per:>15,} {dt:>9.2f}  {ok}")
    if len(rows) == 2:
        print(f"auto / full: {rows[0][1] / rows[1][1]:.5f} of the evaluations, {rows[1][3] / rows[0][3]:.0f}x faster")
    assert rows[0][2] <= AUTO_BUDGET, "auto exceeded its budget"


def detection(seeds: int) -> None:
    factors = [256.0, 2.0, 0.5, 10.0, 1 / 256]
    found = right = total = clean = 0
    misses = []
    t = time.perf_counter()
    for seed in range(seeds):
        loss, grads, params = mlp(seed)
        for kind in ("sign", "scale", "transpose", "zero"):
            for name in params:
                if kind == "transpose" and params[name].ndim < 2:
                    continue  # a 1-d array's transpose is itself: no bug to inject
                factor = factors[seed % len(factors)]
                r = gradcheck(loss, inject(grads, kind, name, factor), params, mode="auto", seed=seed)
                row = next(x for x in r.rows if x.name == name)
                total += 1
                hit = row.status in ("wrong", "shape")
                found += hit
                only = all(x.status in ("ok", "kink") for x in r.rows if x.name != name)
                clean += hit and only
                d = row.diagnosis
                ok_kind = d.kind == kind and (kind != "scale" or abs(d.factor / factor - 1) < 0.01)
                right += hit and ok_kind
                if not (hit and ok_kind and only):
                    misses.append((seed, kind, name, row.status, d.kind, d.factor))
    dt = time.perf_counter() - t
    print(f"injected single-tensor bugs (sign, scale x{{256, 2, 1/2, 10, 1/256}}, transpose, zero) over {seeds} seeds, mode auto:")
    print(f"  detected: {found}/{total} ({100 * found / total:.1f}%); only the bugged tensor flagged: {clean}/{total}; "
          f"diagnosed kind (and factor within 1%): {right}/{total} ({100 * right / total:.1f}%)  [{dt:.1f} s]")
    for miss in misses[:10]:
        print("  miss:", miss)


def false_failures(seeds: int) -> None:
    for dtype in (np.float64, np.float32):
        fails = 0
        t = time.perf_counter()
        for seed in range(seeds):
            loss, grads, params = mlp(1000 + seed, dtype)
            r = gradcheck(loss, grads, params, mode="auto", seed=seed)
            fails += not r.passed
        dt = time.perf_counter() - t
        print(f"correct network, {np.dtype(dtype).name}, {seeds} seeds, mode auto: false failures {fails}/{seeds}  [{dt:.1f} s]")


def _peak(fn) -> int:
    fn()  # warm-up: imports and first-call caches are not the check's memory
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def memory() -> None:
    """Peak memory traced during one check, as a multiple of the parameters' bytes."""
    print("peak memory during the check (tracemalloc), x the parameters' bytes:")
    for dtype in (np.float64, np.float32):
        W = np.random.default_rng(0).standard_normal((N_IN, N_HID)).astype(dtype)

        def half_square(p):
            return float(np.vdot(p["W"], p["W"])) * 0.5

        for mode in ("auto", "directions"):
            for label, factor in (("right", 1.0), ("x0.9", 0.9)):
                peak = _peak(lambda: gradcheck(half_square, lambda p: {"W": factor * p["W"]}, {"W": W}, mode=mode))
                print(f"  one {N_IN}x{N_HID} {np.dtype(dtype).name} weight, {mode:10} {label:5}: {peak / W.nbytes:.2f}x")
    loss, grads, params = mlp(0)
    size = sum(v.nbytes for v in params.values())
    peak = _peak(lambda: gradcheck(loss, grads, params, mode="auto"))
    print(f"  MLP {N_IN}-{N_HID}-{N_OUT} float64, auto, right (loss and grads' own arrays included): "
          f"{peak / size:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip mode='full' (about 160,000 loss evaluations)")
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()
    cost(args.quick)
    detection(args.seeds)
    false_failures(args.seeds)
    memory()


if __name__ == "__main__":
    main()
