"""A multi-layer perceptron with one or two ReLU hidden layers and a softmax output.

``theta = [W1, b1, W2, b2(, W3, b3)]``. The backward pass is written out: the output
residual ``p - Y``, then per layer ``dW = A^T D``, ``db = sum D``, and through a ReLU
``D_prev = (D W^T) * [Z > 0]``. All gradients use the weights at the start of the step.
"""

from __future__ import annotations

import numpy as np
import torch

from zkfl.circuits.layers import (
    FloatArray,
    StepModule,
    cross_entropy,
    input_check,
    keep_binding,
    pack,
    pack_np,
    softmax,
    softmax_np,
    unpack,
    unpack_np,
)
from zkfl.circuits.softmax import encode_labels
from zkfl.circuits.spec import ModelSpec

__all__ = ["MlpStep", "encode_labels", "float_step", "loss_and_accuracy", "predict"]


class MlpStep(StepModule):
    def forward(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                binding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check = input_check(self.spec, x, y)
        for _ in range(self.spec.local_steps):
            layers = unpack(self.spec, theta)
            activations, pre = [x], []
            for weights, bias in layers[:-1]:
                z = activations[-1] @ weights + bias
                pre.append(z)
                activations.append(torch.relu(z))
            weights, bias = layers[-1]
            delta = softmax(activations[-1] @ weights + bias) - y
            grads = []
            for index in range(len(layers) - 1, -1, -1):
                grads.append((activations[index].t() @ delta, delta.sum(dim=0, keepdim=True)))
                if index > 0:
                    delta = (delta @ layers[index][0].t()) * (pre[index - 1] > 0).to(delta.dtype)
            theta = theta - self.step_size * pack(grads[::-1])
        return keep_binding(theta, binding), check


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
