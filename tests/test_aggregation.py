"""Proven FedAvg on anvil: a global model is accepted only as the average of exactly
the round's accepted updates, and it becomes the next round's starting point.

Every proof here is a real ezkl proof of the FedAvg circuit (4 slots, logreg) verified
by its generated Solidity verifier inside ``publishGlobalModel``.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import AGGREGATION_SLOTS, prove
from tests.test_federation_contract import new_task, submit
from zkfl.aggregator.fedavg import fedavg
from zkfl.circuits.aggregation import aggregation_layout
from zkfl.errors import ChainError
from zkfl.prover.aggregation import prove_aggregation, signed, statement_problems
from zkfl.prover.commit import commit
from zkfl.prover.ezkl_backend import verify_proof

SAMPLES = 16


def average(aggregation, updates: list[list[int]], weights: list[int]) -> list[int]:  # type: ignore[no-untyped-def]
    return fedavg(updates, weights, aggregation.update_scale, aggregation.artifacts.spec.scale)


@pytest.fixture()
def round_with_two_updates(federation, accounts, verifier_address, initial_model, step_a, step_b):  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    assert submit(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted
    assert submit(federation, accounts[1], accounts[3], task_id, 0, step_b).accepted
    assert federation.accepted_updates(task_id, 0) == [step_a.proof.update_commitment, step_b.proof.update_commitment]
    return task_id, [list(step_a.proof.update), list(step_b.proof.update)]


def publish(federation, accounts, task_id: int, round_: int, model: list[int], proof) -> None:  # type: ignore[no-untyped-def]
    federation.publish_global_model(accounts[1], task_id, round_, commit(np.array(model, dtype=np.int64)),
                                    b"\x33" * 32, b"\x00" * 32, proof.proof_bytes, proof.instances)


def test_the_proof_states_fedavg_and_rejects_each_dishonest_aggregate(  # type: ignore[no-untyped-def]
        federation, accounts, aggregation, round_with_two_updates) -> None:
    task_id, (a, b) = round_with_two_updates
    rng = np.random.default_rng(7)
    never_accepted = [int(v) for v in rng.integers(-2**20, 2**20, len(a))]
    honest_model = average(aggregation, [a, b], [SAMPLES, SAMPLES])
    off_by_one = list(honest_model)
    off_by_one[3] += 1
    misweighted = average(aggregation, [a, b], [2 * SAMPLES, SAMPLES])
    cases = {
        "leaves out an accepted update": ([a], [SAMPLES], average(aggregation, [a], [SAMPLES]),
                                          "inputs are not the round's accepted updates"),
        "adds an update never accepted": ([a, b, never_accepted], [SAMPLES] * 3,
                                          average(aggregation, [a, b, never_accepted], [SAMPLES] * 3),
                                          "an absent slot carries weight"),
        "weights a client wrongly": ([a, b], [2 * SAMPLES, SAMPLES], misweighted,
                                     "weights are not the accepted updates' sample counts"),
        "is one quantum off": ([a, b], [SAMPLES, SAMPLES], off_by_one, "model is not the rounded average"),
    }
    for name, (updates, weights, model, reason) in cases.items():
        proof = prove_aggregation(aggregation.artifacts, updates, weights, model)
        assert verify_proof(aggregation.artifacts, proof.proof)[0], name  # a valid proof ... of the wrong thing
        with pytest.raises(ChainError, match=reason):
            publish(federation, accounts, task_id, 0, model, proof)
    margin = signed(prove_aggregation(aggregation.artifacts, [a, b], [SAMPLES] * 2, off_by_one).instances[
        aggregation_layout(AGGREGATION_SLOTS)["margin"]])
    assert margin < 0  # one quantum off shows as a negative rounding margin

    honest = prove_aggregation(aggregation.artifacts, [a, b], [SAMPLES, SAMPLES], honest_model)
    assert statement_problems(honest.instances, AGGREGATION_SLOTS, federation.accepted_updates(task_id, 0),
                              [SAMPLES, SAMPLES], commit(np.array(honest_model))) == []
    # A valid proof published under another commitment, and a tampered proof, are refused too.
    with pytest.raises(ChainError, match="proof is for another model"):
        federation.publish_global_model(accounts[1], task_id, 0, commit(np.array(off_by_one)), b"\x33" * 32,
                                        b"\x00" * 32, honest.proof_bytes, honest.instances)
    tampered = bytearray(honest.proof_bytes)
    tampered[100] ^= 1
    with pytest.raises(ChainError, match="aggregation proof does not verify"):
        federation.publish_global_model(accounts[1], task_id, 0, commit(np.array(honest_model)), b"\x33" * 32,
                                        b"\x00" * 32, bytes(tampered), honest.instances)
    assert federation.task(task_id).current_round == 0  # nothing got through
    publish(federation, accounts, task_id, 0, honest_model, honest)
    assert federation.round(task_id, 1).global_commitment == commit(np.array(honest_model))


def test_absent_slots_carry_no_weight_whatever_they_hold(federation, accounts, aggregation,  # type: ignore[no-untyped-def]
                                                         round_with_two_updates) -> None:
    """Slots past the accepted updates must have count 0; then their content is irrelevant:
    junk in slot 2 gives the same average, and the contract accepts it."""
    task_id, (a, b) = round_with_two_updates
    junk = [int(v) for v in np.random.default_rng(3).integers(-2**40, 2**40, len(a))]
    model = average(aggregation, [a, b], [SAMPLES, SAMPLES])
    proof = prove_aggregation(aggregation.artifacts, [a, b, junk], [SAMPLES, SAMPLES, 0], model)
    publish(federation, accounts, task_id, 0, model, proof)
    assert federation.round(task_id, 1).global_commitment == commit(np.array(model))


def test_rounds_chain_and_a_stale_aggregate_is_refused(federation, accounts, aggregation, artifacts, quantizer,  # type: ignore[no-untyped-def]
                                                       round_with_two_updates) -> None:
    task_id, (a, b) = round_with_two_updates
    g1 = average(aggregation, [a, b], [SAMPLES, SAMPLES])
    round0 = prove_aggregation(aggregation.artifacts, [a, b], [SAMPLES, SAMPLES], g1)
    publish(federation, accounts, task_id, 0, g1, round0)
    # Round 1 starts where the proven aggregate ended: a step from G1 is accepted ...
    step = prove(artifacts, quantizer, 1, np.array(g1, dtype=np.int64))
    assert step.proof.global_commitment == federation.round(task_id, 1).global_commitment
    assert submit(federation, accounts[1], accounts[2], task_id, 1, step).accepted
    # ... and round 0's aggregate, replayed for round 1, is stale.
    with pytest.raises(ChainError, match="inputs are not the round's accepted updates"):
        publish(federation, accounts, task_id, 1, g1, round0)
    g2 = average(aggregation, [list(step.proof.update)], [SAMPLES])
    publish(federation, accounts, task_id, 1, g2,
            prove_aggregation(aggregation.artifacts, [list(step.proof.update)], [SAMPLES], g2))
    assert federation.task(task_id).current_round == 2
    assert federation.round(task_id, 2).global_commitment == commit(np.array(g2))


def test_participants_are_capped_at_the_slots(federation, accounts, verifier_address, initial_model) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import test_binding

    task_id = new_task(federation, accounts, verifier_address, initial_model)  # wallets 2, 3, 4 joined
    federation.join(accounts[5], task_id, 10**17, commit(test_binding(9)))  # the fourth slot
    with pytest.raises(ChainError, match="task is full"):
        federation.join(accounts[6], task_id, 10**17, commit(test_binding(10)))
