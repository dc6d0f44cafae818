"""deeplearning.ai style with inverted dropout: masks D1, D2 fixed at construction so the loss is deterministic."""

import numpy as np

BACKWARD = ("backward_propagation_with_dropout",)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(0, x)


def forward_propagation_with_dropout(X, parameters, masks, keep_prob):
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    D1 = masks[0]  # the course draws np.random.rand(*A1.shape) < keep_prob here
    A1 = A1 * D1
    A1 = A1 / keep_prob
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    D2 = masks[1]
    A2 = A2 * D2
    A2 = A2 / keep_prob
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)
    cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache


def compute_cost(A3, Y):
    m = Y.shape[1]
    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    return 1. / m * np.sum(logprobs)


def backward_propagation_with_dropout(X, Y, cache, keep_prob):
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dA2 = dA2 * D2
    dA2 = dA2 / keep_prob
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T)
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dA1 = dA1 * D1
    dA1 = dA1 / keep_prob
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T)
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    gradients = {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2,
                 "dZ2": dZ2, "dW2": dW2, "db2": db2, "dA1": dA1,
                 "dZ1": dZ1, "dW1": dW1, "db1": db1}
    return gradients


def problem(seed=0, dtype=np.float64):
    """(loss, grads, params): 3 -> 6 (ReLU, dropout) -> 4 (ReLU, dropout) -> 1 (sigmoid), m = 10, keep_prob = 0.8."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, 10)).astype(dtype)
    Y = (rng.random((1, 10)) > 0.5).astype(dtype)
    dims = [3, 6, 4, 1]
    parameters = {}
    for l in range(1, len(dims)):
        parameters["W" + str(l)] = (rng.standard_normal((dims[l], dims[l - 1])) * np.sqrt(2 / dims[l - 1])).astype(dtype)
        parameters["b" + str(l)] = (0.1 * rng.standard_normal((dims[l], 1))).astype(dtype)
    keep_prob = 0.8
    masks = [(rng.random((6, 10)) < keep_prob).astype(dtype), (rng.random((4, 10)) < keep_prob).astype(dtype)]

    def loss(p):
        A3, _ = forward_propagation_with_dropout(X, p, masks, keep_prob)
        return compute_cost(A3, Y)

    def grads(p):
        _, cache = forward_propagation_with_dropout(X, p, masks, keep_prob)
        return backward_propagation_with_dropout(X, Y, cache, keep_prob)

    return loss, grads, parameters
