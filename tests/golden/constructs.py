"""Constructs the rewriter treats specially, for tests/test_rewrite_golden.py (never run)."""
import numpy as np
import pandas as pd
from numpy import linalg as la


class Layer:
    """A class body with computations: its hooks are declared global."""
    scale = np.ones(3) * np.arange(3)

    def forward(self, x):
        self.out = x @ self.w + self.b
        self.cache["x"] += x - 1.0 * x
        self.grads[k + "1"] -= x.sum(axis=0, keepdims=True)
        return super().forward(x)

    def dot(self, y):
        return np.dot(self.w, y)


def relu(z):
    return np.maximum(0, z)


square = lambda v: v * v


def train(X, y, w, b, lr=0.1):
    b = b - lr * X.mean(axis=0)
    s = np.sum(X, axis=1)
    e = X / s
    col = X.reshape(-1, 1)
    d = col - X[:, None] + X[:, np.newaxis]
    w -= lr * (X.T @ (relu(X @ w + b) - y))
    b += d
    if X.sum() > 0 and y.mean() < 1:
        pass
    while (w != b).any() and not (w < b).all():
        break
    assert (w == w).all()
    t = [a * b for a in X if a > b]
    g = (a + b for a in X)
    m = {k: v * 2.0 for k, v in zip(X, y) if v >= k}
    z = w if (w > 0).all() else b
    if (n := X @ w) is not None:
        pass
    match X.shape:
        case (2, _) if X.sum() > 1:
            q = X + y
        case _:
            q = X - y
    r = la.norm(X - y) + np.linalg.norm(X) * pd.Series([1, 2]).values
    u = X.T.dot(y) @ np.transpose(w)
    f = np.zeros((3, 4)) + f"{X}" * 0
    h = (X
         .sum(axis=0))
    p = print(X + y, *t, **m)
    x1 = x2 = X * y
    a1: np.ndarray = X @ y
    ch = (X < y) < w
    v = 1 - X ** 2
    k = X[1:, ::2] @ w
    return (X @ w + b) * (s / e) - square(w) @ la.inv(X)


async def agen(x):
    yield x @ x
    await x
    async for i in x:
        x = x + i


# A name's assignments in a scope (by name, shaped from): the rewriter's scopes also count those in the
# body of a def or class standing directly in the scope's body (and not those nested deeper).
s = np.sum(X, axis=1, keepdims=True)
col = X.reshape(-1, 1)


def helper(X):
    s = X + 1
    col = X.reshape(-1, 1)

    def inner(X):
        col = X + 2
        t = X[:, None]
        return X / t - col

    class Inner:
        col = X.T
        t = col * X

        def method(self):
            t = X - 1
            return t * X

    return X / s + col * X


if X is not None:
    def conditional(X):
        col = X * 3
        return col - X


e = X / s - col * X


deep = (np.ones(2) + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w + w)
after = deep @ deep
