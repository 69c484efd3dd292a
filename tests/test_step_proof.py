"""The proven step is the float step, and its public values are the commitments."""

from __future__ import annotations

import numpy as np

from tests.conftest import ProvenStep
from zkfl.circuits.cache import CircuitArtifacts
from zkfl.circuits.logreg import float_step
from zkfl.prover.commit import commit
from zkfl.prover.ezkl_backend import proof_with_instances, verify_proof
from zkfl.prover.quantize import Quantizer


def test_proven_step_matches_float_step(artifacts: CircuitArtifacts, quantizer: Quantizer, step_a: ProvenStep) -> None:
    spec = artifacts.spec
    expected = float_step(spec, quantizer.to_float(step_a.global_model), quantizer.to_float(step_a.x),
                          quantizer.to_float(step_a.y).reshape(-1, 1))
    proven = np.array(step_a.proof.update, dtype=np.float64) / 2.0**step_a.proof.update_scale
    # ezkl rescales the clamp's input back to the model scale: at most a couple of quanta
    # (2**-12 each) of difference, measured at about half a quantum.
    assert np.max(np.abs(proven - expected)) <= 2 * quantizer.unit
    assert np.max(np.abs(expected - quantizer.to_float(step_a.global_model))) > 1e-3  # it did move


def test_public_values_are_the_commitments(step_a: ProvenStep) -> None:
    proof = step_a.proof
    assert proof.global_commitment == commit(step_a.global_model)
    assert proof.data_commitments == [commit(step_a.x), commit(step_a.y.reshape(-1))]
    assert proof.binding_commitment == commit(step_a.binding)
    assert proof.update_commitment == commit(np.array(proof.update, dtype=np.int64))


def test_off_chain_verification(artifacts: CircuitArtifacts, step_a: ProvenStep) -> None:
    assert verify_proof(artifacts, step_a.proof.proof) == (True, "")
    values = list(step_a.proof.instances)
    values[-1] ^= 1  # claim another update
    ok, reason = verify_proof(artifacts, proof_with_instances(step_a.proof.proof, values))
    assert not ok and "does not verify" in reason
