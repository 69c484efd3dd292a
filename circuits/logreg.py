"""Binary logistic regression: ``theta = [w (F x 1), bias]``, labels ``y`` in {0, 1}.

The link is the hard sigmoid ``clamp(z/4 + 1/2, 0, 1)``, the piecewise-linear
approximation of the logistic function that agrees with it to first order at 0. It
needs no lookup table: ezkl proves the clamp with range checks, so the circuit works
for any weights the federation reaches, where a sigmoid lookup table only covers the
range seen at calibration (and a batch outside it makes proving hang). The float
baseline uses the same link, so float and proven training optimise the same model.

Gradient of the cross-entropy through this link, as usual for a GLM: ``X^T (p - y)``.
The learning rate is divided by the batch size *after* the products, which keeps the
small factor out of the fixed-point products (less rounding error).
"""

from __future__ import annotations

import numpy as np
import torch

from zkfl.circuits.layers import (
    FloatArray,
    hard_sigmoid,
    hard_sigmoid_np,
    keep_binding,
    pack,
    pack_np,
    unpack,
    unpack_np,
)
from zkfl.circuits.spec import ModelSpec


class LogRegStep(torch.nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.step_size = spec.learning_rate / spec.batch

    def forward(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, binding: torch.Tensor) -> torch.Tensor:
        for _ in range(self.spec.local_steps):
            [(weights, bias)] = unpack(self.spec, theta)
            residual = hard_sigmoid(x @ weights + bias) - y  # [B, 1]
            theta = theta - self.step_size * pack([(x.t() @ residual, residual.sum(dim=0, keepdim=True))])
        return keep_binding(theta, binding)


def encode_labels(spec: ModelSpec, y: FloatArray) -> FloatArray:
    return np.asarray(y, dtype=np.float64).reshape(-1, 1)


def predict(spec: ModelSpec, theta: FloatArray, x: FloatArray) -> FloatArray:
    [(weights, bias)] = unpack_np(spec, theta)
    return hard_sigmoid_np(x @ weights + bias)


def float_step(spec: ModelSpec, theta: FloatArray, x: FloatArray, labels: FloatArray) -> FloatArray:
    """The same step in float64: the reference the proven step is compared with."""
    for _ in range(spec.local_steps):
        residual = predict(spec, theta, x) - labels
        theta = theta - (spec.learning_rate / spec.batch) * pack_np([(x.T @ residual, residual.sum(axis=0))])
    return theta


def loss_and_accuracy(spec: ModelSpec, theta: FloatArray, x: FloatArray, y: FloatArray) -> tuple[float, float]:
    p = np.clip(predict(spec, theta, x).ravel(), 1e-6, 1 - 1e-6)
    labels = np.asarray(y).ravel()
    loss = float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    return loss, float(np.mean((p >= 0.5) == (labels >= 0.5)))
