"""nnfs style: layer objects keeping their inputs, dweights/dbiases/dinputs, L1 and L2 regularisers,
and a training step whose backward also applies the SGD update (after dinputs is computed)."""

import numpy as np

BACKWARD = ("Layer_Dense.backward", "Activation_ReLU.backward", "Activation_Sigmoid.backward",
            "Activation_Softmax_Loss_CategoricalCrossentropy.backward")


class Layer_Dense:
    def __init__(self, weights, biases, weight_regularizer_l1=0., weight_regularizer_l2=0., bias_regularizer_l2=0.):
        # Copies: the training step updates them in place.
        self.weights = weights.copy()
        self.biases = biases.copy()
        self.weight_regularizer_l1 = weight_regularizer_l1
        self.weight_regularizer_l2 = weight_regularizer_l2
        self.bias_regularizer_l2 = bias_regularizer_l2

    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.dot(inputs, self.weights) + self.biases

    def backward(self, dvalues, learning_rate):
        self.dweights = np.dot(self.inputs.T, dvalues)
        self.dbiases = np.sum(dvalues, axis=0, keepdims=True)
        if self.weight_regularizer_l1 > 0:
            dL1 = np.ones_like(self.weights)
            dL1[self.weights < 0] = -1
            self.dweights += self.weight_regularizer_l1 * dL1
        if self.weight_regularizer_l2 > 0:
            self.dweights += 2 * self.weight_regularizer_l2 * self.weights
        if self.bias_regularizer_l2 > 0:
            self.dbiases += 2 * self.bias_regularizer_l2 * self.biases
        self.dinputs = np.dot(dvalues, self.weights.T)
        self.weights -= learning_rate * self.dweights
        self.biases -= learning_rate * self.dbiases

    def regularization_loss(self):
        loss = self.weight_regularizer_l1 * np.sum(np.abs(self.weights))
        loss += self.weight_regularizer_l2 * np.sum(self.weights * self.weights)
        loss += self.bias_regularizer_l2 * np.sum(self.biases * self.biases)
        return loss


class Activation_ReLU:
    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.maximum(0, inputs)

    def backward(self, dvalues):
        self.dinputs = dvalues.copy()
        self.dinputs[self.inputs <= 0] = 0


class Activation_Sigmoid:
    def forward(self, inputs):
        self.inputs = inputs
        self.output = 1 / (1 + np.exp(-inputs))

    def backward(self, dvalues):
        self.dinputs = dvalues * (1 - self.output) * self.output


class Activation_Softmax_Loss_CategoricalCrossentropy:
    def forward(self, inputs, y_true):
        exp_values = np.exp(inputs - np.max(inputs, axis=1, keepdims=True))
        self.output = exp_values / np.sum(exp_values, axis=1, keepdims=True)
        samples = len(self.output)
        correct_confidences = self.output[range(samples), y_true]
        return np.mean(-np.log(correct_confidences))

    def backward(self, dvalues, y_true):
        samples = len(dvalues)
        self.dinputs = dvalues.copy()
        self.dinputs[range(samples), y_true] -= 1
        self.dinputs = self.dinputs / samples


class Model:
    def __init__(self, p, l1, l2):
        self.dense1 = Layer_Dense(p["W1"], p["b1"], weight_regularizer_l1=l1, weight_regularizer_l2=l2, bias_regularizer_l2=l2)
        self.activation1 = Activation_ReLU()
        self.dense2 = Layer_Dense(p["W2"], p["b2"], weight_regularizer_l2=l2)
        self.activation2 = Activation_Sigmoid()
        self.dense3 = Layer_Dense(p["W3"], p["b3"], weight_regularizer_l1=l1)
        self.loss_activation = Activation_Softmax_Loss_CategoricalCrossentropy()
        self.layers = (self.dense1, self.dense2, self.dense3)

    def forward(self, X, y):
        self.dense1.forward(X)
        self.activation1.forward(self.dense1.output)
        self.dense2.forward(self.activation1.output)
        self.activation2.forward(self.dense2.output)
        self.dense3.forward(self.activation2.output)
        data_loss = self.loss_activation.forward(self.dense3.output, y)
        return data_loss + sum(layer.regularization_loss() for layer in self.layers)

    def train_step(self, X, y, learning_rate):
        loss = self.forward(X, y)
        self.loss_activation.backward(self.loss_activation.output, y)
        self.dense3.backward(self.loss_activation.dinputs, learning_rate)
        self.activation2.backward(self.dense3.dinputs)
        self.dense2.backward(self.activation2.dinputs, learning_rate)
        self.activation1.backward(self.dense2.dinputs)
        self.dense1.backward(self.activation1.dinputs, learning_rate)
        return loss


def problem(seed=0, dtype=np.float64):
    """(loss, grads, params): 4 -> 6 (ReLU) -> 6 (sigmoid) -> 3 softmax, 12 samples, l1 = l2 = 0.05, lr = 0.5."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, 4)).astype(dtype)
    y = rng.integers(0, 3, 12)

    def weights(n_in, n_out):
        # |w| >= 0.05 keeps every weight away from the kink of the L1 term.
        w = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
        return (np.sign(w) * (0.05 + np.abs(w))).astype(dtype)

    params = {"W1": weights(4, 6), "b1": (0.1 * rng.standard_normal((1, 6))).astype(dtype),
              "W2": weights(6, 6), "b2": (0.1 * rng.standard_normal((1, 6))).astype(dtype),
              "W3": weights(6, 3), "b3": (0.1 * rng.standard_normal((1, 3))).astype(dtype)}
    l1, l2 = 0.05, 0.05

    def loss(p):
        return Model(p, l1, l2).forward(X, y)

    def grads(p):
        model = Model(p, l1, l2)
        model.train_step(X, y, learning_rate=0.5)
        return {name: getattr(layer, "d" + kind) for (name, layer, kind) in (
            ("W1", model.dense1, "weights"), ("b1", model.dense1, "biases"),
            ("W2", model.dense2, "weights"), ("b2", model.dense2, "biases"),
            ("W3", model.dense3, "weights"), ("b3", model.dense3, "biases"))}

    return loss, grads, params
