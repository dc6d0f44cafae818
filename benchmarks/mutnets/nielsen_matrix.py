"""Nielsen style (network2.py, the matrix-based exercise): a mini-batch as columns, cross-entropy, L2 weight decay.

The bigger network of the benchmark (6,220 parameters): what auto's cost is measured on.
"""

import numpy as np

BACKWARD = ("Network.backprop_matrix",)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


class Network:
    def __init__(self, sizes, weights, biases, lmbda, n):
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.weights = weights
        self.biases = biases
        self.lmbda = lmbda
        self.n = n  # training-set size: the weight decay is lmbda / n

    def total_cost(self, X, Y):
        a = X
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        m = X.shape[1]
        cost = np.sum(np.nan_to_num(-Y * np.log(a) - (1 - Y) * np.log(1 - a))) / m
        cost += 0.5 * (self.lmbda / self.n) * sum(np.linalg.norm(w) ** 2 for w in self.weights)
        return cost

    def backprop_matrix(self, X, Y):
        m = X.shape[1]
        activation = X
        activations = [X]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        delta = activations[-1] - Y
        nabla_b[-1] = np.sum(delta, axis=1, keepdims=True) / m
        nabla_w[-1] = np.dot(delta, activations[-2].transpose()) / m + (self.lmbda / self.n) * self.weights[-1]
        for l in range(2, self.num_layers):
            z = zs[-l]
            sp = sigmoid_prime(z)
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp
            nabla_b[-l] = np.sum(delta, axis=1, keepdims=True) / m
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose()) / m + (self.lmbda / self.n) * self.weights[-l]
        return (nabla_b, nabla_w)


def problem(seed=0, dtype=np.float64):
    """(loss, grads, params): sizes [196, 30, 10] (14x14 images), a mini-batch of 10, lmbda = 5, n = 50."""
    rng = np.random.default_rng(seed)
    sizes = [196, 30, 10]
    params = {
        "weights": [(rng.standard_normal((y, x)) / np.sqrt(x)).astype(dtype) for x, y in zip(sizes[:-1], sizes[1:])],
        "biases": [rng.standard_normal((y, 1)).astype(dtype) for y in sizes[1:]],
    }
    X = rng.random((196, 10)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[:, rng.integers(0, 10, 10)]

    def net(p):
        return Network(sizes, p["weights"], p["biases"], lmbda=5.0, n=50)

    def loss(p):
        return net(p).total_cost(X, Y)

    def grads(p):
        nabla_b, nabla_w = net(p).backprop_matrix(X, Y)
        return {"weights": nabla_w, "biases": nabla_b}

    return loss, grads, params
