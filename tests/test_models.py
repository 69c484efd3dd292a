"""Every model family's circuit computes its float step, and the proven federation
reaches the accuracy of float FedAvg."""

from __future__ import annotations

import numpy as np
import pytest

from zkfl.circuits.cache import build_circuit
from zkfl.circuits.registry import default_spec, family, initial_parameters
from zkfl.datasets import load
from zkfl.prover.binding import binding_chunks
from zkfl.prover.ezkl_backend import witness_step
from zkfl.prover.quantize import Quantizer
from zkfl.simulation import compare


@pytest.mark.parametrize(
    ("model", "dataset", "local_steps", "hidden"),
    [
        ("logreg", "breast_cancer", 2, None),
        ("softmax", "digits", 1, None),
        ("mlp", "digits", 1, (16,)),
        ("mlp", "digits", 1, (12, 8)),
    ],
)
def test_circuit_step_matches_float_step_on_random_inputs(model: str, dataset: str, local_steps: int,
                                                           hidden: tuple[int, ...] | None) -> None:
    data = load(dataset)
    spec = default_spec(model, data.features, data.classes, local_steps=local_steps, hidden=hidden)
    artifacts = build_circuit(spec)
    fam, q = family(model), Quantizer(spec.scale)
    rng = np.random.default_rng(3)
    for trial in range(2):
        theta = q.to_int(initial_parameters(spec, seed=trial) + rng.normal(0, 0.2, spec.param_count))
        x = q.to_int(rng.uniform(-3, 3, (spec.batch, spec.features)))
        classes = rng.integers(0, data.classes, spec.batch).astype(np.float64)
        labels = q.to_int(fam.encode_labels(spec, classes))
        proven = np.array(witness_step(artifacts, theta, x, labels, binding_chunks(b"\x07" * 32)), dtype=np.float64)
        proven /= 2.0**artifacts.update_scale
        expected = fam.float_step(spec, q.to_float(theta), q.to_float(x), q.to_float(labels))
        moved = np.max(np.abs(expected - q.to_float(theta)))
        # Fixed point at 2**-12: a few quanta per weight and step, far below the update itself.
        assert np.max(np.abs(proven - expected)) <= 4 * local_steps * q.unit
        assert moved > 20 * q.unit


def test_proven_federation_matches_float_fedavg() -> None:
    result = compare("logreg", "breast_cancer", clients=4, rounds=4)
    assert abs(result.gap_points) <= 1.0
    assert result.proven_accuracy[-1] > 0.9
