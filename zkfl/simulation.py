"""The proven federation against float FedAvg, on the same splits, batches and rounds.

The proven side runs the compiled circuit (ezkl's witness: exactly the update a proof
of the same inputs attests) and the integer FedAvg of the aggregator; the float side
runs the same step in float64 and a float weighted average. No chain, no broker: this
isolates what fixed point costs in accuracy. The demo proves every step for real.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from zkfl.circuits.registry import default_spec, family, initial_parameters
from zkfl.datasets import load, round_batch, shard
from zkfl.field.binding import binding_chunks
from zkfl.field.quantize import Quantizer
from zkfl.prover.ezkl.circuit import build_circuit
from zkfl.prover.ezkl.prove import witness_step
from zkfl.prover.fedavg import fedavg


@dataclass
class FederationComparison:
    model: str
    dataset: str
    clients: int
    rounds: int
    batch: int
    local_steps: int
    proven_accuracy: list[float] = field(default_factory=list)
    float_accuracy: list[float] = field(default_factory=list)
    proven_loss: list[float] = field(default_factory=list)
    float_loss: list[float] = field(default_factory=list)
    max_weight_gap: float = 0.0  # largest |proven - float| over weights, final round
    seconds: float = 0.0

    @property
    def gap_points(self) -> float:
        """Final accuracy gap, in percentage points (float minus proven)."""
        return 100.0 * (self.float_accuracy[-1] - self.proven_accuracy[-1])


def compare(model: str, dataset: str, clients: int = 4, rounds: int = 10, local_steps: int = 1,
            batch: int | None = None) -> FederationComparison:
    start = time.perf_counter()
    data = load(dataset)
    spec = default_spec(model, data.features, data.classes, local_steps=local_steps, batch=batch)
    fam = family(model)
    quantizer = Quantizer(spec.scale)
    artifacts = build_circuit(spec)
    shards = [shard(data, i + 1, clients) for i in range(clients)]
    result = FederationComparison(model, dataset, clients, rounds, spec.batch, local_steps)
    proven = quantizer.to_int(initial_parameters(spec))
    floating = quantizer.to_float(proven)  # both start from the same (quantized) model
    for round_ in range(rounds):
        updates, float_updates = [], []
        for index, (x, y) in enumerate(shards):
            xb, yb = round_batch(x, y, round_, spec.batch)
            labels = fam.encode_labels(spec, yb)
            x_q, labels_q = quantizer.to_int(xb), quantizer.to_int(labels)
            updates.append(witness_step(artifacts, proven, x_q, labels_q, binding_chunks(bytes([index + 1]) * 32)))
            float_updates.append(fam.float_step(spec, floating, xb, labels))
        proven = np.array(fedavg(updates, [spec.batch] * clients, artifacts.update_scale, spec.scale), dtype=np.int64)
        floating = np.mean(float_updates, axis=0)
        for theta, accuracies, losses in ((quantizer.to_float(proven), result.proven_accuracy, result.proven_loss),
                                          (floating, result.float_accuracy, result.float_loss)):
            loss, accuracy = fam.loss_and_accuracy(spec, theta, data.x_test, data.y_test)
            accuracies.append(accuracy)
            losses.append(loss)
    result.max_weight_gap = float(np.max(np.abs(quantizer.to_float(proven) - floating)))
    result.seconds = time.perf_counter() - start
    return result
