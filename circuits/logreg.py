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

from zkfl.circuits.reference import FloatArray, glm_float_step, hard_sigmoid_np, unpack_np
from zkfl.circuits.spec import ModelSpec


def encode_labels(spec: ModelSpec, y: FloatArray) -> FloatArray:
    return np.asarray(y, dtype=np.float64).reshape(-1, 1)


def predict(spec: ModelSpec, theta: FloatArray, x: FloatArray) -> FloatArray:
    [(weights, bias)] = unpack_np(spec, theta)
    return hard_sigmoid_np(x @ weights + bias)


def float_step(spec: ModelSpec, theta: FloatArray, x: FloatArray, labels: FloatArray) -> FloatArray:
    return glm_float_step(spec, theta, x, labels, predict)


def loss_and_accuracy(spec: ModelSpec, theta: FloatArray, x: FloatArray, y: FloatArray) -> tuple[float, float]:
    p = np.clip(predict(spec, theta, x).ravel(), 1e-6, 1 - 1e-6)
    labels = np.asarray(y).ravel()
    loss = float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    return loss, float(np.mean((p >= 0.5) == (labels >= 0.5)))
