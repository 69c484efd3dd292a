"""Multi-class softmax regression: ``theta = [W (F x C), b (C)]``, one-hot labels.

``p = softmax(clamp(XW + b, -8, 8))``; gradient of the cross-entropy ``X^T (p - Y)``.
The clamp bounds the input of exp's lookup table (see :data:`LOGIT_CLAMP`), so the
circuit never meets a logit it was not calibrated for; at +-8 it changes the loss
only for predictions already at 1 - 1e-7 confidence.
"""

from __future__ import annotations

import numpy as np
import torch

from zkfl.circuits.layers import (
    FloatArray,
    cross_entropy,
    keep_binding,
    pack,
    pack_np,
    softmax,
    softmax_np,
    unpack,
    unpack_np,
)
from zkfl.circuits.spec import ModelSpec


class SoftmaxStep(torch.nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.step_size = spec.learning_rate / spec.batch

    def forward(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, binding: torch.Tensor) -> torch.Tensor:
        for _ in range(self.spec.local_steps):
            [(weights, bias)] = unpack(self.spec, theta)
            residual = softmax(x @ weights + bias) - y  # [B, C]
            theta = theta - self.step_size * pack([(x.t() @ residual, residual.sum(dim=0, keepdim=True))])
        return keep_binding(theta, binding)


def encode_labels(spec: ModelSpec, y: FloatArray) -> FloatArray:
    return np.eye(spec.classes)[np.asarray(y, dtype=np.int64).ravel()]


def predict(spec: ModelSpec, theta: FloatArray, x: FloatArray) -> FloatArray:
    [(weights, bias)] = unpack_np(spec, theta)
    return softmax_np(x @ weights + bias)


def float_step(spec: ModelSpec, theta: FloatArray, x: FloatArray, labels: FloatArray) -> FloatArray:
    for _ in range(spec.local_steps):
        residual = predict(spec, theta, x) - labels
        theta = theta - (spec.learning_rate / spec.batch) * pack_np([(x.T @ residual, residual.sum(axis=0))])
    return theta


def loss_and_accuracy(spec: ModelSpec, theta: FloatArray, x: FloatArray, y: FloatArray) -> tuple[float, float]:
    p = predict(spec, theta, x)
    labels = np.asarray(y, dtype=np.int64).ravel()
    return cross_entropy(p, np.eye(spec.classes)[labels]), float(np.mean(p.argmax(axis=1) == labels))
