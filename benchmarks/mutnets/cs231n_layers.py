"""CS231n style: row-major x (N, D), layer functions returning (out, cache), affine/relu/softmax, a model class, L2."""

import numpy as np

BACKWARD = ("affine_backward", "relu_backward", "affine_relu_backward", "softmax_loss", "TwoLayerNet.loss")


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def relu_forward(x):
    out = np.maximum(0, x)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    x = cache
    dx = dout * (x > 0)
    return dx


def affine_relu_forward(x, w, b):
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    cache = (fc_cache, relu_cache)
    return out, cache


def affine_relu_backward(dout, cache):
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db


def softmax_loss(x, y):
    shifted_logits = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted_logits), axis=1, keepdims=True)
    log_probs = shifted_logits - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


class TwoLayerNet:
    """affine - relu - affine - softmax, with L2 regularisation 0.5 * reg * sum(W ** 2)."""

    def __init__(self, params, reg=0.0):
        self.params = params
        self.reg = reg

    def loss(self, X, y):
        W1, b1 = self.params["W1"], self.params["b1"]
        W2, b2 = self.params["W2"], self.params["b2"]
        h, cache1 = affine_relu_forward(X, W1, b1)
        scores, cache2 = affine_forward(h, W2, b2)
        loss, dscores = softmax_loss(scores, y)
        loss += 0.5 * self.reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        grads = {}
        dh, grads["W2"], grads["b2"] = affine_backward(dscores, cache2)
        grads["W2"] += self.reg * W2
        dx, grads["W1"], grads["b1"] = affine_relu_backward(dh, cache1)
        grads["W1"] += self.reg * W1
        return loss, grads


def problem(seed=0, dtype=np.float64):
    """(loss, grads, params): D = 6 -> H = 6 (ReLU) -> C = 4 softmax, N = 10, reg = 0.3."""
    rng = np.random.default_rng(seed)
    N, D, H, C = 10, 6, 6, 4
    X = rng.standard_normal((N, D)).astype(dtype)
    y = rng.integers(0, C, N)
    params = {
        "W1": (rng.standard_normal((D, H)) / np.sqrt(D)).astype(dtype),
        "b1": (0.1 * rng.standard_normal(H)).astype(dtype),
        "W2": (rng.standard_normal((H, C)) / np.sqrt(H)).astype(dtype),
        "b2": (0.1 * rng.standard_normal(C)).astype(dtype),
    }
    reg = 0.3

    def loss(p):
        return TwoLayerNet(p, reg).loss(X, y)[0]

    def grads(p):
        return TwoLayerNet(p, reg).loss(X, y)[1]

    return loss, grads, params
