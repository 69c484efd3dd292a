"""zkfl's circuits as torch modules, which ezkl compiles from their ONNX export.

Only the party that builds a circuit (the organisation, a benchmark) needs these, and torch
with them: everyone else fetches the compiled circuit by CID, so the rest of ``zkfl.circuits``
stays free of torch. The statements themselves are documented beside their data layouts
(``zkfl.circuits.layers``, ``zkfl.circuits.aggregation``).
"""

from __future__ import annotations

import torch

from zkfl.circuits.aggregation import BOUND_BITS
from zkfl.circuits.layers import GlmStep, StepModule, hard_sigmoid, input_check, keep_binding, pack, softmax, unpack
from zkfl.circuits.spec import ModelSpec


class LogRegStep(GlmStep):
    """Binary logistic regression with the hard sigmoid (``zkfl.circuits.logreg``)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec, hard_sigmoid)


class SoftmaxStep(GlmStep):
    """Multi-class softmax regression (``zkfl.circuits.softmax``)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec, softmax)


class MlpStep(StepModule):
    """A ReLU MLP with a softmax output, its backward pass written out (``zkfl.circuits.mlp``)."""

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


class DataPrivateStep(torch.nn.Module):
    """A step whose inputs are all private, its commitments made as outputs instead.

    ezkl gives every input one visibility, so hashing G and b as inputs would hash X and y too.
    Here the inputs are private and the six hashed outputs keep the step's public layout:
    ``[H(G), H(check), H(check), H(b), H(W), H(check)]``. G and b come out unchanged (plus zero
    times another input: ezkl refuses an output that is an input itself, or a constant), and
    H(check) stands where H(X) and H(y) were: H([0]) for every batch the contract accepts, so no
    hash of the data is public (the update W, public anyway, still depends on it).
    """

    def __init__(self, step: StepModule) -> None:
        super().__init__()
        self.step = step

    def forward(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                binding: torch.Tensor) -> tuple[torch.Tensor, ...]:
        theta_next, check = self.step(theta, x, y, binding)
        return (theta + 0.0 * binding[:, :1], check + 0.0 * binding[:, 1:2], check + 0.0 * binding[:, 2:3],
                binding + 0.0 * theta[:, :1], theta_next, check)


class LinkedStep(DataPrivateStep):
    """A data-private step whose outputs G, b, W, check are committed as KZG points
    (``zkfl.circuits.linked``): the inputs stay private, G and b come out unchanged (plus zero times
    another input, as in ``DataPrivateStep``) for their points to be compared with the chain's."""

    def forward(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                binding: torch.Tensor) -> tuple[torch.Tensor, ...]:
        theta_next, check = self.step(theta, x, y, binding)
        return theta + 0.0 * binding[:, :1], binding + 0.0 * theta[:, :1], theta_next, check


class LinkedFedAvg(torch.nn.Module):
    """G' = round(S / (K 2^shift)) for any K, from the sum's and the count's columns
    (``zkfl.circuits.linked``): one output, the violation, 0 exactly when the statement holds."""

    def __init__(self, shift: int) -> None:
        super().__init__()
        self.shift = shift

    def forward(self, total: torch.Tensor, count: torch.Tensor, new_global: torch.Tensor) -> torch.Tensor:
        denominator = count * float(2**self.shift)
        # 4r + sign(S) puts the tie on the side half-away rounding excludes (FedAvgCheck's rule).
        residual = 4.0 * (total - denominator * new_global) + torch.sign(total)
        margin = 2.0 * denominator - 1.0 - torch.max(torch.abs(residual))
        largest = torch.maximum(torch.max(torch.abs(total)), torch.max(torch.abs(new_global)))
        headroom = float(2**BOUND_BITS) - torch.maximum(largest, torch.abs(count).sum())
        return (torch.relu(-margin) + torch.relu(-headroom)).reshape(1)


class FedAvgCheck(torch.nn.Module):
    """The FedAvg statement over ``slots`` updates (``zkfl.circuits.aggregation``)."""

    def __init__(self, slots: int, shift: int) -> None:
        super().__init__()
        self.slots = slots
        self.shift = shift

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        updates = torch.stack(inputs[: self.slots], 0)  # [K, d]
        counts, new_global = inputs[self.slots], inputs[self.slots + 1]
        weighted = torch.matmul(counts.reshape(1, self.slots), updates).reshape(-1)  # S
        denominator = counts.sum() * float(2**self.shift)  # D
        # 4r + sign(S) puts the tie on the side half-away rounding excludes.
        residual = 4.0 * (weighted - denominator * new_global) + torch.sign(weighted)
        margin = 2.0 * denominator - 1.0 - torch.max(torch.abs(residual))
        largest = torch.maximum(torch.max(torch.abs(updates)), torch.max(torch.abs(new_global)))
        headroom = float(2**BOUND_BITS) - largest
        return counts * 1.0, margin.reshape(1), headroom.reshape(1)


STEP_MODULES: dict[str, type[StepModule]] = {"logreg": LogRegStep, "softmax": SoftmaxStep, "mlp": MlpStep}
