"""CS231n style with batch normalisation: affine (no bias) - batchnorm (gamma, beta) - relu - affine - softmax."""

import numpy as np

BACKWARD = ("affine_backward", "relu_backward", "batchnorm_backward", "softmax_loss", "BatchNormNet.loss")


def affine_forward(x, w, b):
    out = x.dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T)
    dw = x.T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    x = cache
    dx = dout * (x > 0)
    return dx


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    mu = np.mean(x, axis=0)
    var = np.var(x, axis=0)
    x_hat = (x - mu) / np.sqrt(var + eps)
    out = gamma * x_hat + beta
    cache = (x, x_hat, mu, var, gamma, eps)
    return out, cache


def batchnorm_backward(dout, cache):
    x, x_hat, mu, var, gamma, eps = cache
    N = dout.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    dvar = np.sum(dx_hat * (x - mu), axis=0) * -0.5 * (var + eps) ** -1.5
    dmu = np.sum(-dx_hat / np.sqrt(var + eps), axis=0) + dvar * np.sum(-2 * (x - mu), axis=0) / N
    dx = dx_hat / np.sqrt(var + eps) + dvar * 2 * (x - mu) / N + dmu / N
    return dx, dgamma, dbeta


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


class BatchNormNet:
    """A bias before batchnorm has a zero gradient, so the first affine layer has none."""

    def __init__(self, params):
        self.params = params

    def loss(self, X, y):
        p = self.params
        a, fc1_cache = affine_forward(X, p["W1"], 0.0)
        bn, bn_cache = batchnorm_forward(a, p["gamma1"], p["beta1"])
        h, relu_cache = relu_forward(bn)
        scores, fc2_cache = affine_forward(h, p["W2"], p["b2"])
        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dh, grads["W2"], grads["b2"] = affine_backward(dscores, fc2_cache)
        dbn = relu_backward(dh, relu_cache)
        da, grads["gamma1"], grads["beta1"] = batchnorm_backward(dbn, bn_cache)
        dx, grads["W1"], _ = affine_backward(da, fc1_cache)
        return loss, grads


def problem(seed=0, dtype=np.float64):
    """(loss, grads, params): D = 5 -> H = 6 (batchnorm, ReLU) -> C = 3 softmax, N = 8."""
    rng = np.random.default_rng(seed)
    N, D, H, C = 8, 5, 6, 3
    X = rng.standard_normal((N, D)).astype(dtype)
    y = rng.integers(0, C, N)
    params = {
        "W1": (rng.standard_normal((D, H)) / np.sqrt(D)).astype(dtype),
        "gamma1": (1 + 0.2 * rng.standard_normal(H)).astype(dtype),
        "beta1": (0.2 * rng.standard_normal(H)).astype(dtype),
        "W2": (rng.standard_normal((H, C)) / np.sqrt(H)).astype(dtype),
        "b2": (0.1 * rng.standard_normal(C)).astype(dtype),
    }

    def loss(p):
        return BatchNormNet(p).loss(X, y)[0]

    def grads(p):
        return BatchNormNet(p).loss(X, y)[1]

    return loss, grads, params
