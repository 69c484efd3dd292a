"""The proven step is the float step, and its public values are the commitments."""

from __future__ import annotations

import numpy as np

from tests.conftest import ProvenStep
from zkfl.circuits.logreg import float_step
from zkfl.field.commit import commit
from zkfl.field.poseidon import poseidon_commit
from zkfl.field.quantize import Quantizer
from zkfl.prover.ezkl.circuit import CircuitArtifacts
from zkfl.prover.ezkl.prove import proof_json, verify_proof
from zkfl.prover.records import CHECK_INDEX, INPUTS_VALID, STEP_PUBLIC_LAYOUT, UPDATE_INDEX


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
    # The task does not pin data: the step commits to none (H(check) in their places; a pinned
    # task's step commits to X and y: test_changed_data_commitment_is_rejected_when_the_task_pins_data).
    assert proof.data_commitments == [INPUTS_VALID, INPUTS_VALID]
    assert proof.binding_commitment == commit(step_a.binding)
    assert proof.update_commitment == commit(np.array(proof.update, dtype=np.int64))
    # Six values, the contract's fixed layout; the last is the input check's commitment, H([0])
    # for a batch within the bounds (features within +-3, labels 0/1).
    assert len(proof.instances) == len(STEP_PUBLIC_LAYOUT) == 6
    assert proof.instances[CHECK_INDEX] == INPUTS_VALID == poseidon_commit([0]) and proof.inputs_valid


def test_off_chain_verification(artifacts: CircuitArtifacts, step_a: ProvenStep) -> None:
    assert verify_proof(artifacts, step_a.proof.proof) == (True, "")
    # Claim another update, or another input check: the proof binds both outputs.
    for index, claimed in ((UPDATE_INDEX, step_a.proof.instances[UPDATE_INDEX] ^ 1),
                           (CHECK_INDEX, poseidon_commit([1]))):
        values = list(step_a.proof.instances)
        values[index] = claimed
        ok, reason = verify_proof(artifacts, proof_json(step_a.proof.proof_bytes, values))
        assert not ok and "does not verify" in reason, STEP_PUBLIC_LAYOUT[index]
