"""Linked commitments (zkfl.circuits.linked, zkfl.prover.ezkl.linked), on real ezkl proofs:
the step's outputs and FedAvg's inputs are KZG points that link one proof to the other, and
the FedAvg proof for K updates is formed from their points alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from web3.exceptions import ContractLogicError

from tests.conftest import test_binding
from zkfl.circuits.registry import default_spec
from zkfl.contracts.federation import deploy
from zkfl.contracts.solc import compile_sources
from zkfl.field.ezkl_api import ezkl
from zkfl.field.g1 import g1_sum
from zkfl.field.quantize import Quantizer, felt_to_int, ints_to_felts
from zkfl.prover.ezkl.circuit import build_linked_step_circuit
from zkfl.prover.ezkl.linked import (
    LinkConstants,
    LinkedProof,
    build_linked_fedavg,
    kzg_point,
    prove_linked_fedavg,
    prove_linked_step,
)
from zkfl.prover.fedavg import fedavg


def _step(step, seed: int, model: np.ndarray) -> LinkedProof:  # type: ignore[no-untyped-def]
    rng, quantizer, spec = np.random.default_rng(seed), Quantizer(step.spec.scale), step.spec
    x = quantizer.to_int(rng.uniform(-3, 3, (spec.batch, spec.features)))
    y = quantizer.to_int(rng.integers(0, 2, spec.batch))
    return prove_linked_step(step, model, x, y, test_binding(seed))


def _violation(fedavg_circuit, tensors: list[list[int]], tmp_path: Path) -> int:  # type: ignore[no-untyped-def]
    """The circuit's violation output for these inputs (a witness, no proof)."""
    data = tmp_path / "input.json"
    data.write_text(json.dumps({"input_data": [ints_to_felts(t) for t in tensors]}))
    witness = ezkl.gen_witness(str(data), str(fedavg_circuit.compiled), str(tmp_path / "witness.json"),
                               str(fedavg_circuit.vk), str(fedavg_circuit.srs))
    return felt_to_int(witness["outputs"][0][0])


def _harness(w3, owner):  # type: ignore[no-untyped-def]
    """contracts/LinkedPoints.sol behind a test contract, on the session's anvil."""
    root = Path(__file__).resolve().parents[1]
    compiled = compile_sources({"LinkedPoints.sol": (root / "contracts" / "LinkedPoints.sol").read_text(),
                                "LinkedHarness.sol": (root / "tests" / "contracts" / "LinkedHarness.sol").read_text()})
    address, _ = deploy(w3, owner, compiled["LinkedHarness"])
    return w3.eth.contract(address=address, abi=compiled["LinkedHarness"].abi)


@pytest.mark.slow
def test_fedavg_of_any_number_of_updates_is_proven_from_their_points(tmp_path, w3, accounts) -> None:  # type: ignore[no-untyped-def]
    step = build_linked_step_circuit(default_spec("logreg", 30))
    model = Quantizer(step.spec.scale).to_int(np.random.default_rng(9).uniform(-0.5, 0.5, step.spec.param_count))
    proofs = [_step(step, seed, model) for seed in (1, 2, 3)]
    for proof in proofs:  # G, b, W, check: each point is the one its values commit to
        g, b, update, check = proof.outputs
        assert g == [int(v) for v in model] and check == [0]
        assert proof.points == [kzg_point(step, values) for values in (g, b, update, check)]
    assert len({p.points[2] for p in proofs}) == 3 and len({p.points[3] for p in proofs}) == 1

    fed = build_linked_fedavg(step, step.update_scale)
    assert fed.logrows == step.logrows
    updates = [p.outputs[2] for p in proofs]
    new_global = fedavg(updates, [step.spec.batch] * 3, step.update_scale, step.spec.scale)
    round_proof = prove_linked_fedavg(fed, updates, new_global)
    assert round_proof.instances == [0]
    constants = LinkConstants.of(step, fed)
    points = [p.points[2] for p in proofs]
    # The chain's sum and count from the three updates' points are the proof's first two points,
    # and the point of G' is the one a next round's step proof shows for its model.
    assert list(constants.fedavg_inputs(points)) == round_proof.points[:2]
    assert round_proof.points[2] == kzg_point(step, new_global)
    # Another set (one update left out, or one twice) does not match.
    assert list(constants.fedavg_inputs(points[:2])) != round_proof.points[:2]
    assert constants.fedavg_inputs([*points[:2], points[0]])[0] != round_proof.points[0]
    # One quantum off the rounded average is a violation; the average itself is none.
    total, count, _ = [[sum(c) for c in zip(*updates, strict=True)], [3], new_global]
    assert _violation(fed, [total, count, new_global], tmp_path) == 0
    off = [new_global[0] + 1, *new_global[1:]]
    assert _violation(fed, [total, count, off], tmp_path) > 0
    assert g1_sum([round_proof.points[0]]) == round_proof.points[0]  # the points are on the curve
    # The chain's library reads the same points from the proof bytes and forms the same sum and count.
    harness = _harness(w3, accounts[0])
    assert [tuple(p) for p in harness.functions.points(proofs[0].proof_bytes, 4).call()] == proofs[0].points
    assert [tuple(p) for p in harness.functions.points(round_proof.proof_bytes, 3).call()] == round_proof.points
    on_chain = harness.functions.fedavgInputs(
        (constants.sum_per_update, constants.sum_base, constants.count_per_update, constants.count_base),
        points).call()
    assert [tuple(p) for p in on_chain] == round_proof.points[:2]
    with pytest.raises(ContractLogicError):  # NoSuchPoint: past the proof's end
        harness.functions.points(round_proof.proof_bytes[:100], 2).call()


def test_bad_inputs_to_the_linked_circuits_are_named() -> None:
    """Refused before any witness, with what is wrong (no circuit is built or proven here)."""
    from dataclasses import replace as with_fields

    from zkfl.circuits.linked import linked_fedavg_inputs
    from zkfl.errors import ProofError
    from zkfl.prover.ezkl.circuit import CircuitArtifacts

    spec = default_spec("logreg", 30)
    step = CircuitArtifacts(spec, Path("/nonexistent"), linked=True)
    model, x, y = np.zeros(spec.param_count, dtype=np.int64), np.zeros((spec.batch, 29)), np.zeros(spec.batch)
    with pytest.raises(ProofError, match="batch must be 16 x 30 features"):
        prove_linked_step(step, model, x, y, test_binding(1))
    with pytest.raises(ProofError, match="not a linked step circuit"):
        prove_linked_step(with_fields(step, linked=False), model, x, y, test_binding(1))
    with pytest.raises(ValueError, match="at least one update"):
        linked_fedavg_inputs([], [0, 0])
    with pytest.raises(ValueError, match="different lengths"):
        linked_fedavg_inputs([[1, 2], [3]], [0, 0])
    with pytest.raises(ValueError, match="not below 2\\^55"):
        linked_fedavg_inputs([[2**54, 0], [2**54, 0]], [2**54, 0])
