"""deeplearning.ai style: column-major X (n_x, m), Z = W @ X + b, a cache tuple, grads["dW1"], L2 regularisation."""

import numpy as np

BACKWARD = ("backward_propagation_with_regularization",)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(0, x)


def initialize_parameters(layer_dims, rng, dtype):
    parameters = {}
    for l in range(1, len(layer_dims)):
        parameters["W" + str(l)] = (rng.standard_normal((layer_dims[l], layer_dims[l - 1]))
                                    * np.sqrt(2 / layer_dims[l - 1])).astype(dtype)
        parameters["b" + str(l)] = (0.1 * rng.standard_normal((layer_dims[l], 1))).astype(dtype)
    return parameters


def forward_propagation(X, parameters):
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = np.tanh(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)
    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache


def compute_cost_with_regularization(A3, Y, parameters, lambd):
    m = Y.shape[1]
    W1, W2, W3 = parameters["W1"], parameters["W2"], parameters["W3"]
    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cross_entropy_cost = 1. / m * np.sum(logprobs)
    L2_regularization_cost = lambd / (2 * m) * (np.sum(np.square(W1)) + np.sum(np.square(W2)) + np.sum(np.square(W3)))
    return cross_entropy_cost + L2_regularization_cost


def backward_propagation_with_regularization(X, Y, cache, lambd):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T) + lambd / m * W3
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, 1 - np.power(A2, 2))
    dW2 = 1. / m * np.dot(dZ2, A1.T) + lambd / m * W2
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T) + lambd / m * W1
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    gradients = {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2,
                 "dZ2": dZ2, "dW2": dW2, "db2": db2, "dA1": dA1,
                 "dZ1": dZ1, "dW1": dW1, "db1": db1}
    return gradients


def problem(seed=0, dtype=np.float64):
    """(loss, grads, params): 4 -> 5 (ReLU) -> 5 (tanh) -> 1 (sigmoid), m = 8, lambd = 0.7."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((4, 8)).astype(dtype)
    Y = (rng.random((1, 8)) > 0.5).astype(dtype)
    parameters = initialize_parameters([4, 5, 5, 1], rng, dtype)
    lambd = 0.7

    def loss(p):
        A3, _ = forward_propagation(X, p)
        return compute_cost_with_regularization(A3, Y, p, lambd)

    def grads(p):
        _, cache = forward_propagation(X, p)
        return backward_propagation_with_regularization(X, Y, cache, lambd)

    return loss, grads, parameters
