"""Shared pieces of the step modules (torch): unpacking theta, the links, the binding."""

from __future__ import annotations

from collections.abc import Callable

import torch

from zkfl.circuits.reference import LOGIT_CLAMP
from zkfl.circuits.spec import ModelSpec


def unpack(spec: ModelSpec, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """theta [1, P] -> [(W [in, out], b [1, out]), ...]."""
    layers, offset = [], 0
    sizes = spec.layer_sizes
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        weights = theta[:, offset : offset + fan_in * fan_out].reshape(fan_in, fan_out)
        offset += fan_in * fan_out
        bias = theta[:, offset : offset + fan_out]
        offset += fan_out
        layers.append((weights, bias))
    return layers


def pack(grads: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    return torch.cat([t for w, b in grads for t in (w.reshape(1, -1), b)], dim=1)


def hard_sigmoid(z: torch.Tensor) -> torch.Tensor:
    return torch.clamp(0.25 * z + 0.5, 0.0, 1.0)


def softmax(z: torch.Tensor) -> torch.Tensor:
    return torch.softmax(torch.clamp(z, -LOGIT_CLAMP, LOGIT_CLAMP), dim=1)


def input_check(spec: ModelSpec, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[1, 1], exactly 0 when every |feature| <= the spec's bound and every label is 0 or 1
    (each row one-hot for multi-class), else positive. All of it is exact integer arithmetic
    in the circuit (no product of two inputs, so no rounding), and the contract accepts a
    proof only if this output's commitment is H([0]). So a batch outside the task's declared
    bounds can be proven, but never accepted: one update's influence is bounded."""
    over = torch.relu(torch.abs(x) - spec.feature_bound).sum()
    not_binary = torch.abs(torch.abs(2.0 * y - 1.0) - 1.0).sum()  # 0 iff y is 0 or 1
    violation = over + not_binary
    if spec.label_width > 1:
        violation = violation + torch.abs(y.sum(dim=1) - 1.0).sum()
    return violation.reshape(1, 1)


def keep_binding(theta: torch.Tensor, binding: torch.Tensor) -> torch.Tensor:
    """The binding only needs to be an input (its hash is public); adding zero times it
    keeps it in the exported graph without changing the step."""
    return theta + 0.0 * binding.sum(dim=1, keepdim=True)


class StepModule(torch.nn.Module):
    """A training step as a module: ``forward(theta, x, y, binding) -> (theta', input check)``."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        # lr/B is applied after the products: the small factor stays out of fixed point.
        self.step_size = spec.learning_rate / spec.batch


class GlmStep(StepModule):
    """A generalised linear model's SGD step: ``p = link(XW + b)``, gradient ``X^T (p - Y)``."""

    def __init__(self, spec: ModelSpec, link: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__(spec)
        self.link = link

    def forward(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                binding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check = input_check(self.spec, x, y)
        for _ in range(self.spec.local_steps):
            [(weights, bias)] = unpack(self.spec, theta)
            residual = self.link(x @ weights + bias) - y  # [B, outputs]
            theta = theta - self.step_size * pack([(x.t() @ residual, residual.sum(dim=0, keepdim=True))])
        return keep_binding(theta, binding), check
