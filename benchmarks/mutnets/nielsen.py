"""Nielsen style (network.py): per-example backprop, lists of weights and biases, sigmoid, quadratic cost."""

import numpy as np

BACKWARD = ("sigmoid_prime", "Network.backprop", "Network.mini_batch_gradient", "Network.cost_derivative")


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


class Network:
    def __init__(self, sizes, weights, biases):
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.weights = weights
        self.biases = biases

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def cost(self, mini_batch):
        return sum(0.5 * np.sum((self.feedforward(x) - y) ** 2) for x, y in mini_batch) / len(mini_batch)

    def mini_batch_gradient(self, mini_batch):
        """The first half of update_mini_batch: the gradient of the mean cost over the mini-batch."""
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        nabla_b = [nb / len(mini_batch) for nb in nabla_b]
        nabla_w = [nw / len(mini_batch) for nw in nabla_w]
        return nabla_b, nabla_w

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, self.num_layers):
            z = zs[-l]
            sp = sigmoid_prime(z)
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return (nabla_b, nabla_w)

    def cost_derivative(self, output_activations, y):
        return (output_activations - y)


def problem(seed=0, dtype=np.float64):
    """(loss, grads, params): sizes [4, 5, 3], a mini-batch of 6 (x, y) column pairs."""
    rng = np.random.default_rng(seed)
    sizes = [4, 5, 3]
    params = {
        "weights": [rng.standard_normal((y, x)).astype(dtype) for x, y in zip(sizes[:-1], sizes[1:])],
        "biases": [rng.standard_normal((y, 1)).astype(dtype) for y in sizes[1:]],
    }
    mini_batch = [(rng.standard_normal((4, 1)).astype(dtype), np.eye(3, dtype=dtype)[:, [k]])
                  for k in rng.integers(0, 3, 6)]

    def loss(p):
        return Network(sizes, p["weights"], p["biases"]).cost(mini_batch)

    def grads(p):
        nabla_b, nabla_w = Network(sizes, p["weights"], p["biases"]).mini_batch_gradient(mini_batch)
        return {"weights": nabla_w, "biases": nabla_b}

    return loss, grads, params
