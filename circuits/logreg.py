"""One SGD step of binary logistic regression, written out as a torch module.

The forward pass *is* the training step: ``(theta, X, y, b) -> theta'`` where
``theta = [w_1..w_F, bias]`` and ``b`` is the participant's binding value (see
:mod:`zkfl.prover.binding`). The backward pass is written by hand so the exported ONNX
graph is a plain sequence of matrix products that ezkl can prove.

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
import numpy.typing as npt
import torch
from zkfl.circuits.spec import ModelSpec


class LogRegStep(torch.nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.features = spec.features
        self.step_size = spec.learning_rate / spec.batch

    def forward(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, binding: torch.Tensor) -> torch.Tensor:
        weights = theta[:, : self.features]  # [1, F]
        bias = theta[:, self.features :]  # [1, 1]
        logits = x @ weights.t() + bias  # [B, 1]
        residual = torch.clamp(0.25 * logits + 0.5, 0.0, 1.0) - y  # [B, 1]
        grad = torch.cat([residual.t() @ x, residual.sum(dim=0, keepdim=True)], dim=1)
        # The binding only needs to be an input (its hash is public); this keeps it in
        # the exported graph without changing the step.
        return theta - self.step_size * grad + 0.0 * binding.sum(dim=1, keepdim=True)


def predict_proba(theta: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    features = x.shape[1]
    logits = x @ theta[:features] + theta[features]
    return np.clip(0.25 * logits + 0.5, 0.0, 1.0)


def float_step(
    spec: ModelSpec, theta: npt.NDArray[np.float64], x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The same step in float64: the reference the proven step is compared with."""
    residual = predict_proba(theta, x) - y.ravel()
    grad = np.concatenate([residual @ x, [residual.sum()]])
    return theta - (spec.learning_rate / spec.batch) * grad


def loss_and_accuracy(
    theta: npt.NDArray[np.float64], x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> tuple[float, float]:
    p = np.clip(predict_proba(theta, x), 1e-6, 1 - 1e-6)
    labels = y.ravel()
    loss = float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    accuracy = float(np.mean((p >= 0.5) == (labels >= 0.5)))
    return loss, accuracy
