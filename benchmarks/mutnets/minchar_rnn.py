"""min-char-rnn style (Karpathy): one lossFun with the forward pass and BPTT, dWxh/dWhh/dWhy/dbh/dby, tanh."""

import numpy as np

BACKWARD = ("lossFun",)

vocab_size, hidden_size = 5, 5


def lossFun(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    """inputs, targets are lists of integers; hprev is the (H, 1) initial hidden state."""
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    # forward pass
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1), dtype=Wxh.dtype)
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
        ys[t] = np.dot(Why, hs[t]) + by
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
        loss += -np.log(ps[t][targets[t], 0])
    # backward pass: compute gradients going backwards
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext
        dhraw = (1 - hs[t] * hs[t]) * dh
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def problem(seed=0, dtype=np.float64):
    """(loss, grads, params): vocabulary 5, hidden 5, a sequence of 6 characters."""
    rng = np.random.default_rng(seed)
    params = {
        "Wxh": (0.5 * rng.standard_normal((hidden_size, vocab_size))).astype(dtype),
        "Whh": (0.5 * rng.standard_normal((hidden_size, hidden_size))).astype(dtype),
        "Why": (0.5 * rng.standard_normal((vocab_size, hidden_size))).astype(dtype),
        "bh": (0.1 * rng.standard_normal((hidden_size, 1))).astype(dtype),
        "by": (0.1 * rng.standard_normal((vocab_size, 1))).astype(dtype),
    }
    data = rng.integers(0, vocab_size, 7)
    inputs, targets = list(data[:-1]), list(data[1:])
    hprev = (0.1 * rng.standard_normal((hidden_size, 1))).astype(dtype)

    def run(p):
        return lossFun(inputs, targets, hprev, p["Wxh"], p["Whh"], p["Why"], p["bh"], p["by"])

    def loss(p):
        return run(p)[0]

    def grads(p):
        _, dWxh, dWhh, dWhy, dbh, dby, _ = run(p)
        return {"Wxh": dWxh, "Whh": dWhh, "Why": dWhy, "bh": dbh, "by": dby}

    return loss, grads, params
