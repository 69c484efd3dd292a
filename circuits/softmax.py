"""Multi-class softmax regression: ``theta = [W (F x C), b (C)]``, one-hot labels.

``p = softmax(clamp(XW + b, -8, 8))``; gradient of the cross-entropy ``X^T (p - Y)``.
The clamp bounds the input of exp's lookup table (see :data:`LOGIT_CLAMP`), so the
circuit never meets a logit it was not calibrated for; at +-8 it changes the loss
only for predictions already at 1 - 1e-7 confidence.
"""

from __future__ import annotations

import numpy as np

from zkfl.circuits.reference import FloatArray, cross_entropy, glm_float_step, softmax_np, unpack_np
from zkfl.circuits.spec import ModelSpec


def encode_labels(spec: ModelSpec, y: FloatArray) -> FloatArray:
    return np.eye(spec.classes)[np.asarray(y, dtype=np.int64).ravel()]


def predict(spec: ModelSpec, theta: FloatArray, x: FloatArray) -> FloatArray:
    [(weights, bias)] = unpack_np(spec, theta)
    return softmax_np(x @ weights + bias)


def float_step(spec: ModelSpec, theta: FloatArray, x: FloatArray, labels: FloatArray) -> FloatArray:
    return glm_float_step(spec, theta, x, labels, predict)


def loss_and_accuracy(spec: ModelSpec, theta: FloatArray, x: FloatArray, y: FloatArray) -> tuple[float, float]:
    p = predict(spec, theta, x)
    labels = np.asarray(y, dtype=np.int64).ravel()
    return cross_entropy(p, np.eye(spec.classes)[labels]), float(np.mean(p.argmax(axis=1) == labels))
