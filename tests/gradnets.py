"""Small networks with exact hand-written gradients, shared by the gradcheck tests.

Each builder returns (loss, grads, params) with the gradient written out by
hand the way the people shapecheck is for write it; ``bug`` injects one
classic mistake so tests can assert the diagnosis.
"""

from __future__ import annotations

import numpy as np


def _softmax_rows(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def rowmajor_relu(seed=0, n=6, h=5, c=4, m=16, dtype=np.float64, bug=None, reg=0.0, loss_scale=1.0):
    """X (m, n) @ W1 (n, h) + b1 (h,) -> ReLU -> W2 (h, c) + b2 (c,) -> softmax cross-entropy (mean)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)).astype(dtype)
    y = rng.integers(0, c, m)
    Y = np.eye(c, dtype=dtype)[y]
    params = {
        "W1": (rng.normal(size=(n, h)) / np.sqrt(n)).astype(dtype),
        "b1": (0.1 * rng.normal(size=h)).astype(dtype),
        "W2": (rng.normal(size=(h, c)) / np.sqrt(h)).astype(dtype),
        "b2": (0.1 * rng.normal(size=c)).astype(dtype),
    }

    def forward(p):
        z1 = X @ p["W1"] + p["b1"]
        a1 = np.maximum(z1, 0)
        probs = _softmax_rows(a1 @ p["W2"] + p["b2"])
        return z1, a1, probs

    def loss(p):
        _, _, probs = forward(p)
        data = -np.sum(Y * np.log(probs)) / m
        return loss_scale * (data + 0.5 * reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2)))

    def grads(p):
        z1, a1, probs = forward(p)
        dz2 = (probs - Y) / m
        dW2 = a1.T @ dz2 + reg * p["W2"]
        db2 = dz2.sum(axis=0)
        dz1 = (dz2 @ p["W2"].T) * (z1 > 0)
        dW1 = X.T @ dz1 + reg * p["W1"]
        db1 = dz1.sum(axis=0)
        g = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
        g = {k: loss_scale * v for k, v in g.items()}
        return _inject(g, bug, m)

    return loss, grads, params


def colmajor_tanh(seed=0, n=5, h=4, c=3, m=32, dtype=np.float64, bug=None):
    """deeplearning.ai style: X (n, m), W (out, in), b (out, 1), grads keyed dW1..., tanh then softmax."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m)).astype(dtype)
    Y = np.eye(c, dtype=dtype)[:, rng.integers(0, c, m)]
    params = {
        "W1": (0.5 * rng.normal(size=(h, n))).astype(dtype),
        "b1": (0.1 * rng.normal(size=(h, 1))).astype(dtype),
        "W2": (0.5 * rng.normal(size=(c, h))).astype(dtype),
        "b2": (0.1 * rng.normal(size=(c, 1))).astype(dtype),
    }

    def forward(p):
        A1 = np.tanh(p["W1"] @ X + p["b1"])
        Z2 = p["W2"] @ A1 + p["b2"]
        Z2 = Z2 - Z2.max(axis=0, keepdims=True)
        return A1, np.exp(Z2) / np.exp(Z2).sum(axis=0, keepdims=True)

    def loss(p):
        return -np.sum(Y * np.log(forward(p)[1])) / m

    def grads(p):
        A1, P = forward(p)
        dZ2 = (P - Y) / m
        dA1 = p["W2"].T @ dZ2
        dZ1 = dA1 * (1 - A1 ** 2)
        g = {"dW1": dZ1 @ X.T, "db1": dZ1.sum(axis=1, keepdims=True),
             "dW2": dZ2 @ A1.T, "db2": dZ2.sum(axis=1, keepdims=True), "dA1": dA1}
        return _inject(g, bug, m, prefix="d")

    return loss, grads, params


def _inject(g, bug, m, prefix=""):
    """One classic mistake in one tensor: ("sign"|"scale"|"transpose"|"zero"|"nosum", name) or None."""
    if bug is None:
        return g
    kind, name = bug
    key = prefix + name
    v = g[key]
    if kind == "sign":
        g[key] = -v
    elif kind == "scale":
        g[key] = v * m
    elif kind == "transpose":
        g[key] = v.T
    elif kind == "zero":
        g[key] = np.zeros_like(v)
    else:
        raise ValueError(kind)
    return g


def quadratic(A, b, c=0.0):
    """L(x) = 1/2 x.A.x + b.x + c with exact gradient (A + A.T)/2 x + b."""

    def loss(p):
        x = p["x"]
        return 0.5 * x @ A @ x + b @ x + c

    def grads(p):
        return {"x": 0.5 * (A + A.T) @ p["x"] + b}

    return loss, grads


def matrix_linear(C):
    """L(W) = sum(C * W) + 1/2 ||W||^2: gradient C + W, exact."""

    def loss(p):
        return float(np.sum(C * p["W"]) + 0.5 * np.sum(p["W"] ** 2))

    def grads(p):
        return {"W": C + p["W"]}

    return loss, grads
