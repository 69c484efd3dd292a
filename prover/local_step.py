"""One participant's proven training step, from floats to a proof: the part every client
front end shares (zkfl's own SDK, the Flower ClientApp). It knows no chain and no transport:
the caller brings the round's global model, its data and the binding it proves under."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from zkfl.circuits.registry import family
from zkfl.datasets import round_batch
from zkfl.errors import ZkflError
from zkfl.field.quantize import IntArray, Quantizer
from zkfl.prover.records import StepCircuit, StepProof
from zkfl.prover.registry import backend_of

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LocalStep:
    proof: StepProof
    loss: float  # of the global model on all of the client's data, before the step
    accuracy: float


def prove_local_step(circuit: StepCircuit, model: IntArray, x: FloatArray, y: FloatArray, batch_round: int,
                     binding: IntArray) -> LocalStep:
    """Quantize the round's batch, check it against the task's declared bounds, and prove one
    step from ``model`` (integers at the spec's scale) under ``binding``."""
    spec = circuit.spec
    quantizer = Quantizer(spec.scale)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    xb, yb = round_batch(x, y, batch_round, spec.batch)
    check_batch(circuit, xb, yb)
    fam = family(spec.family)
    loss, accuracy = fam.loss_and_accuracy(spec, quantizer.to_float(model), x, y)
    labels = fam.encode_labels(spec, yb)
    proof = backend_of(circuit).prove_step(circuit, model, quantizer.to_int(xb), quantizer.to_int(labels), binding)
    return LocalStep(proof, float(loss), float(accuracy))


def check_batch(circuit: StepCircuit, x: FloatArray, y: FloatArray) -> None:
    """Say up front, not after proving, when the data is outside the task's declared bounds."""
    spec = circuit.spec
    quantizer = Quantizer(spec.scale)
    bound = spec.feature_bound
    largest = float(np.abs(quantizer.to_float(quantizer.to_int(x))).max(initial=0.0))
    if largest > bound:
        raise ZkflError(f"a feature of magnitude {largest:g} is past the task's declared bound {bound:g}: "
                        "standardize and clip the data (the contract would reject the proof)")
    classes = 2 if spec.family == "logreg" else spec.classes
    if not np.isin(y, np.arange(classes)).all():
        raise ZkflError(f"labels must be class indices 0..{classes - 1}")
