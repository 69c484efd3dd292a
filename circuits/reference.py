"""The float reference of each step: what the proven, fixed-point step is compared with
(numpy only, so the parties that never build a circuit never import torch)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from zkfl.circuits.spec import ModelSpec

FloatArray = npt.NDArray[np.float64]

#: Logits are clamped to +-LOGIT_CLAMP before softmax, so exp's lookup table covers
#: every input the federation can reach: z - max(z) stays in [-2*LOGIT_CLAMP, 0].
LOGIT_CLAMP = 8.0


def unpack_np(spec: ModelSpec, theta: FloatArray) -> list[tuple[FloatArray, FloatArray]]:
    layers, offset = [], 0
    sizes = spec.layer_sizes
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        weights = theta[offset : offset + fan_in * fan_out].reshape(fan_in, fan_out)
        offset += fan_in * fan_out
        layers.append((weights, theta[offset : offset + fan_out]))
        offset += fan_out
    return layers


def pack_np(grads: list[tuple[FloatArray, FloatArray]]) -> FloatArray:
    return np.concatenate([t.ravel() for w, b in grads for t in (w, b)])


def hard_sigmoid_np(z: FloatArray) -> FloatArray:
    return np.clip(0.25 * z + 0.5, 0.0, 1.0)


def softmax_np(z: FloatArray) -> FloatArray:
    clamped = np.clip(z, -LOGIT_CLAMP, LOGIT_CLAMP)
    e = np.exp(clamped - clamped.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(p: FloatArray, onehot: FloatArray) -> float:
    return float(-np.mean(np.sum(onehot * np.log(np.clip(p, 1e-6, 1.0)), axis=1)))


def glm_float_step(spec: ModelSpec, theta: FloatArray, x: FloatArray, labels: FloatArray,
                   predict: Callable[[ModelSpec, FloatArray, FloatArray], FloatArray]) -> FloatArray:
    """The GLM step in float64: the reference the proven step is compared with."""
    for _ in range(spec.local_steps):
        residual = predict(spec, theta, x) - labels
        theta = theta - (spec.learning_rate / spec.batch) * pack_np([(x.T @ residual, residual.sum(axis=0))])
    return theta
