"""Tracing overhead: traced / plain time for three typical hand-written networks, measured in one run.

    python benchmarks/bench_tracing.py [--mode all|in-process|whole-process|rewrite|instructions]
                                       [--repeat N] [--pairs N] [--quick] [--only WORDS]

In-process: each workload is compiled twice from the same source, plainly and
rewritten by shapecheck; runs alternate (plain, traced, plain, ...) and the ratio
of the medians is printed.  Targets (issue 2): vectorised <= 1.05x, per-example
loop <= 1.6x, tiny full batch <= 1.4x; and (issue 12) a site past its signature
cap (50 input shapes) no dearer than one whose 32 shapes are all kept.

Whole-process (issue 11): what a user feels, `python -m shapecheck script.py`
against `python script.py`, start-up, rewriting and the report included.  Each
pair runs both commands in separate processes, back to back, in alternating order;
the median of the pairs' ratios is printed with their spread (the lowest and the
highest ratio), and next to it the median of the CPU-time ratios (user and system
time of the process and its BLAS threads), which a busy machine stretches less
than wall time.  A control row runs the vectorised script against itself in the
same way: how far its ratio lands from 1 is the noise a 2% target is read against.  The machine may be shared: medians of interleaved runs are what to
read.  Bytecode caches are written to a temporary folder (PYTHONPYCACHEPREFIX) and
warmed first, as an installed package has them.  Targets: start-up alone (a script
that only imports numpy) <= 1.15x, vectorised <= 1.02x, tiny full batch <= 1.2x,
per-example loop <= 1.25x.

Instructions (issue 11, not part of `all`): the whole-process workloads but the
vectorised one, each run once plain and once traced under valgrind (callgrind), and
the ratio of the instructions executed.  A shared machine's load does not move it, so
it shows a change of a few percent that wall-clock medians cannot; it is not wall
time (a cache miss costs more than an instruction).  Needs valgrind; slow (a minute a run).

Rewrite (issue 11): the time `_rewrite.rewrite` takes (parse, rewrite, compile) on a
generated 2000-line training script, per 1000 lines, next to a plain compile.
Target: <= 100 ms per 1000 lines.

This is a benchmark, not a test: it prints, it does not assert.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
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


STARTUP = """
import numpy as np
"""

# One block of a hand-written training script; `training_script` repeats it with fresh names.
BLOCK = '''
# ---- model {k}: a two-layer network, trained with mini-batches ----


class Dense{k}:
    """A fully connected layer with its gradients."""

    def __init__(self, n_in, n_out, rng):
        self.W = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
        self.b = np.zeros((1, n_out))
        self.cache = {{}}

    def forward(self, x):
        self.cache["x"] = x
        return x @ self.W + self.b

    def backward(self, grad):
        x = self.cache["x"]
        self.dW = x.T @ grad / x.shape[0]
        self.db = grad.mean(axis=0, keepdims=True)
        return grad @ self.W.T


def relu_{k}(z):
    return np.maximum(z, 0)


def relu_grad_{k}(z):
    return (z > 0).astype(float)


def softmax_{k}(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy_{k}(probs, y):
    m = y.shape[0]
    return -np.sum(y * np.log(probs + 1e-12)) / m


def load_{k}(rng, m=256, n=20, classes=3):
    X = rng.standard_normal((m, n))
    labels = rng.integers(0, classes, m)
    Y = np.eye(classes)[labels]
    mu = X.mean(axis=0)
    sigma = X.std(axis=0) + 1e-8
    return (X - mu) / sigma, Y, labels


def train_{k}(epochs=3, lr=0.1, batch=32, seed={k}):
    rng = np.random.default_rng(seed)
    X, Y, labels = load_{k}(rng)
    layer1 = Dense{k}(X.shape[1], 16, rng)
    layer2 = Dense{k}(16, Y.shape[1], rng)
    history = []
    for epoch in range(epochs):
        order = rng.permutation(X.shape[0])
        total = 0.0
        for start in range(0, X.shape[0], batch):
            idx = order[start:start + batch]
            xb, yb = X[idx], Y[idx]
            z1 = layer1.forward(xb)
            a1 = relu_{k}(z1)
            z2 = layer2.forward(a1)
            probs = softmax_{k}(z2)
            loss = cross_entropy_{k}(probs, yb)
            total += loss * xb.shape[0]
            dz2 = probs - yb
            da1 = layer2.backward(dz2)
            dz1 = da1 * relu_grad_{k}(z1)
            layer1.backward(dz1)
            for layer in (layer1, layer2):
                layer.W -= lr * layer.dW
                layer.b -= lr * layer.db
        hidden = relu_{k}(layer1.forward(X))
        accuracy = np.mean(np.argmax(softmax_{k}(layer2.forward(hidden)), axis=1) == labels)
        history.append((epoch, total / X.shape[0], accuracy))
        print(f"model {k} epoch {{epoch}}: loss {{total / X.shape[0]:.4f}}, accuracy {{accuracy:.3f}}")
    return history


def evaluate_{k}(params, X, y):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    hidden = np.tanh(np.dot(X, W1) + b1)
    scores = np.dot(hidden, W2) + b2
    predictions = np.argmax(scores, axis=1)
    confusion = np.zeros((scores.shape[1], scores.shape[1]), dtype=int)
    for t, p in zip(y, predictions):
        confusion[t, p] += 1
    precision = np.diag(confusion) / np.maximum(confusion.sum(axis=0), 1)
    recall = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {{"accuracy": np.mean(predictions == y), "f1": f1.mean(), "confusion": confusion}}

'''


def training_script(lines: int = 2000) -> str:
    """A hand-written-looking training script of about `lines` lines: blocks of layers, losses and loops."""
    parts = ['"""Generated for the rewriting benchmark: small models trained by hand."""\n', "import numpy as np\n"]
    k = 0
    while sum(p.count("\n") for p in parts) < lines:
        parts.append(BLOCK.format(k=k))
        k += 1
    parts.append("\nif __name__ == '__main__':\n    train_0(epochs=1)\n")
    return "".join(parts)


def rewriting(repeat: int) -> str:
    """The median time of `rewrite` (parse, rewrite, compile) on the generated script, per 1000 lines."""
    source = training_script()
    n = source.count("\n")
    rw, plain = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        compile(source, "<train>", "exec")
        t1 = time.perf_counter()
        rewrite(source, "<train>", "<train>", _recorder.next_id())
        t2 = time.perf_counter()
        plain.append(t1 - t0)
        rw.append(t2 - t1)
    r, c = statistics.median(rw), statistics.median(plain)
    return (f"rewriting a {n}-line training script: {r * 1e3:.0f} ms, {r / n * 1e6:.0f} ms per 1000 lines "
            f"(target <= 100); a plain compile: {c / n * 1e6:.0f} ms per 1000 lines ({r / c:.1f}x)")


def _env(cache: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _wall(cmd: list[str], env: dict, cwd: str) -> float:
    return _timed(cmd, env, cwd)[0]


def _timed(cmd: list[str], env: dict, cwd: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the process and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} exited {p.returncode}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def whole_process(source: str, pairs: int, cache: str,
                  control: bool = False) -> tuple[float, float, float, float, float, float]:
    """(plain median, traced median, median of the paired ratios, lowest ratio, highest ratio, median of the
    paired CPU-time ratios).  CPU time is what the process and its BLAS threads spent, wherever they ran:
    a busy machine stretches wall time more than it.  With `control`, the "traced" run is the plain one
    again: the ratios then show the measurement's own noise (what a ratio of 1 looks like here)."""
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, "script.py")
        with open(script, "w") as f:
            f.write(source)
        env = _env(cache)
        plain_cmd = [sys.executable, script]
        traced_cmd = plain_cmd if control else [sys.executable, "-m", "shapecheck", script]
        _wall(plain_cmd, env, folder), _wall(traced_cmd, env, folder)  # warm the caches (bytecode, disk)
        plain, traced, ratios, cpu = [], [], [], []
        for i in range(pairs):
            if i % 2:  # alternate which runs first: neither always gets the warmer machine
                t, p = _timed(traced_cmd, env, folder), _timed(plain_cmd, env, folder)
            else:
                p, t = _timed(plain_cmd, env, folder), _timed(traced_cmd, env, folder)
            plain.append(p[0])
            traced.append(t[0])
            ratios.append(t[0] / p[0])
            cpu.append(t[1] / p[1])
    return (statistics.median(plain), statistics.median(traced), statistics.median(ratios), min(ratios), max(ratios),
            statistics.median(cpu))


def instructions(source: str, cache: str) -> tuple[int, int]:
    """(plain, traced) instructions executed by the whole process, counted by callgrind."""
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, "script.py")
        with open(script, "w") as f:
            f.write(source)
        env = _env(cache)
        env["OPENBLAS_NUM_THREADS"] = "1"  # an idle BLAS thread spins for a while: instructions of no one's
        counts = []
        for cmd in ([sys.executable, script], [sys.executable, "-m", "shapecheck", script]):
            _wall(cmd, env, folder)  # write the bytecode caches
            out = os.path.join(folder, "callgrind.out")
            _wall(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd], env, folder)
            with open(out) as f:
                counts.append(next(int(line.split()[1]) for line in f if line.startswith("summary:")))
    return counts[0], counts[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("all", "in-process", "whole-process", "rewrite", "instructions"),
                    default="all")
    ap.add_argument("--repeat", type=int, default=7, help="in-process runs of each workload")
    ap.add_argument("--pairs", type=int, default=15, help="whole-process (plain, traced) pairs of each workload")
    ap.add_argument("--quick", action="store_true", help="smaller workloads, for a smoke run")
    ap.add_argument("--only", metavar="WORDS", default="",
                    help="whole-process and instructions modes: only the workloads whose label contains WORDS")
    opts = ap.parse_args()
    _recorder.install()
    q = opts.quick
    if opts.mode in ("all", "rewrite"):
        print(rewriting(3 if q else 9))
    if opts.mode in ("all", "whole-process"):
        whole = [
            ("start-up alone (a script that only imports numpy)", STARTUP, "<= 1.15x"),
            ("vectorised MNIST-size (X 42000x784, 784-64-10, full batch)",
             VECTORISED.format(m=4200 if q else 42000, iters=2), "<= 1.02x"),
            ("per-example column vectors (784-30-10, 2000 examples)", PER_EXAMPLE.format(n=200 if q else 2000),
             "<= 1.25x"),
            ("tiny full batch (130x4, 4-8-1, 2000 iterations)", TINY.format(iters=200 if q else 2000), "<= 1.2x"),
        ]
        whole = [w for w in whole if opts.only in w[0]]
        pairs = 5 if q else opts.pairs
        print(f"\nwhole process, {pairs} interleaved pairs each: median of the paired wall-time ratios (lowest-"
              f"highest), and of the CPU-time ratios")
        print(f"{'workload':58} {'plain':>9} {'traced':>9} {'ratio':>7} {'spread':>12} {'cpu':>7}  target")
        with tempfile.TemporaryDirectory() as cache:
            for label, source, target in whole:
                mp, mt, ratio, lo, hi, cpu = whole_process(source, pairs, cache)
                print(f"{label:58} {mp * 1e3:7.0f}ms {mt * 1e3:7.0f}ms {ratio:6.3f}x {lo:5.2f}-{hi:5.2f}x "
                      f"{cpu:6.3f}x  {target}")
            # The control: the vectorised script against itself.  Its distance from 1 is the noise of this
            # machine's medians, against which a 2% target is read.
            vectorised = [source for label, source, _ in whole if label.startswith("vectorised")]
            if vectorised:
                mp, mt, ratio, lo, hi, cpu = whole_process(vectorised[0], pairs, cache, control=True)
                print(f"{'control: vectorised, plain against plain':58} {mp * 1e3:7.0f}ms {mt * 1e3:7.0f}ms "
                      f"{ratio:6.3f}x {lo:5.2f}-{hi:5.2f}x {cpu:6.3f}x  the noise")
    if opts.mode == "instructions":
        counted = [
            ("start-up alone (a script that only imports numpy)", STARTUP),
            ("per-example column vectors (784-30-10, 2000 examples)", PER_EXAMPLE.format(n=200 if q else 2000)),
            ("tiny full batch (130x4, 4-8-1, 2000 iterations)", TINY.format(iters=200 if q else 2000)),
        ]
        counted = [w for w in counted if opts.only in w[0]]
        print("whole process, instructions executed (callgrind), one run each")
        print(f"{'workload':58} {'plain':>10} {'traced':>10} {'ratio':>7}")
        with tempfile.TemporaryDirectory() as cache:
            for label, source in counted:
                plain, traced = instructions(source, cache)
                print(f"{label:58} {plain / 1e6:9.0f}M {traced / 1e6:9.0f}M {traced / plain:6.3f}x")
    if opts.mode not in ("all", "in-process"):
        return
    print("\nin process: ratio of the medians")
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
