"""A multi-layer perceptron with one or two ReLU hidden layers and a softmax output.

``theta = [W1, b1, W2, b2(, W3, b3)]``. The backward pass is written out: the output
residual ``p - Y``, then per layer ``dW = A^T D``, ``db = sum D``, and through a ReLU
``D_prev = (D W^T) * [Z > 0]``. All gradients use the weights at the start of the step.
"""

from __future__ import annotations

import numpy as np

from zkfl.circuits.reference import FloatArray, cross_entropy, pack_np, softmax_np, unpack_np
from zkfl.circuits.softmax import encode_labels
from zkfl.circuits.spec import ModelSpec

__all__ = ["encode_labels", "float_step", "loss_and_accuracy", "predict"]


def _forward_np(
    spec: ModelSpec, theta: FloatArray, x: FloatArray
) -> tuple[list[FloatArray], list[FloatArray], FloatArray]:
    layers = unpack_np(spec, theta)
    activations, pre = [x], []
    for weights, bias in layers[:-1]:
        z = activations[-1] @ weights + bias
        pre.append(z)
        activations.append(np.maximum(z, 0.0))
    weights, bias = layers[-1]
    return activations, pre, softmax_np(activations[-1] @ weights + bias)


def predict(spec: ModelSpec, theta: FloatArray, x: FloatArray) -> FloatArray:
    return _forward_np(spec, theta, x)[2]


def float_step(spec: ModelSpec, theta: FloatArray, x: FloatArray, labels: FloatArray) -> FloatArray:
    for _ in range(spec.local_steps):
        layers = unpack_np(spec, theta)
        activations, pre, p = _forward_np(spec, theta, x)
        delta = p - labels
        grads = []
        for index in range(len(layers) - 1, -1, -1):
            grads.append((activations[index].T @ delta, delta.sum(axis=0)))
            if index > 0:
                delta = (delta @ layers[index][0].T) * (pre[index - 1] > 0)
        theta = theta - (spec.learning_rate / spec.batch) * pack_np(grads[::-1])
    return theta


def loss_and_accuracy(spec: ModelSpec, theta: FloatArray, x: FloatArray, y: FloatArray) -> tuple[float, float]:
    p = predict(spec, theta, x)
    labels = np.asarray(y, dtype=np.int64).ravel()
    return cross_entropy(p, np.eye(spec.classes)[labels]), float(np.mean(p.argmax(axis=1) == labels))
