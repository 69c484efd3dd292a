"""Proven FedAvg on anvil: a global model is accepted only as the average of exactly
the round's accepted updates, and it becomes the next round's starting point.

Every proof here is a real ezkl proof of the FedAvg circuit (4 slots, logreg) verified
by its generated Solidity verifier inside ``publishGlobalModel``. Every step proof is made
for the one (task, wallet) that submits it; FedAvg proofs, which name no task, are shared
through the session's cache when their statement is the same.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import (
    AGGREGATION_SLOTS,
    STAND_IN_CID,
    advance_chain_time,
    aggregation_verifier_for,
    submit_step,
    task_params,
)
from zkfl.aggregator.fedavg import fedavg
from zkfl.circuits.aggregation import aggregation_layout
from zkfl.contracts.federation import Reason, Status
from zkfl.errors import ChainError
from zkfl.field.commit import commit
from zkfl.prover.ezkl.aggregation import prove_aggregation, signed, statement_problems
from zkfl.prover.ezkl.prove import verify_proof

SAMPLES = 16
STAKE, REWARD = 10**17, 10**18


def new_task(federation, accounts, verifier: str, initial, wallets, **kw) -> int:  # type: ignore[no-untyped-def]
    """A task posted by wallet 0, aggregated by wallet 1, joined by ``wallets`` (its deadline
    an hour after the chain's clock, which other tests may have moved on)."""
    now = int(federation.w3.eth.get_block("latest")["timestamp"])
    params = task_params(accounts[1].address, verifier, initial, now=now,
                         aggregation_verifier=aggregation_verifier_for(federation), **kw)
    task_id = federation.create_task(accounts[0], params, REWARD)
    for wallet in wallets:
        federation.join(wallet, task_id, STAKE)
    return task_id


def average(aggregation, updates: list[list[int]], weights: list[int]) -> list[int]:  # type: ignore[no-untyped-def]
    return fedavg(updates, weights, aggregation.update_scale, aggregation.artifacts.spec.scale)


@pytest.fixture()
def round_with_two_updates(federation, accounts, verifier_address, initial_model, prover):  # type: ignore[no-untyped-def]
    """Wallets 2 and 3 join a fresh task and are both accepted (so the round may close at once)."""
    task_id = new_task(federation, accounts, verifier_address, initial_model, accounts[2:4])
    step_a = prover.step(federation, task_id, accounts[2], 1, initial_model)
    step_b = prover.step(federation, task_id, accounts[3], 2, initial_model)
    assert submit_step(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted
    assert submit_step(federation, accounts[1], accounts[3], task_id, 0, step_b).accepted
    assert federation.accepted_updates(task_id, 0) == [step_a.proof.update_commitment, step_b.proof.update_commitment]
    return task_id, [list(step_a.proof.update), list(step_b.proof.update)]


def publish(federation, accounts, task_id: int, round_: int, model: list[int], proof) -> None:  # type: ignore[no-untyped-def]
    federation.publish_global_model(accounts[1], task_id, round_, commit(np.array(model, dtype=np.int64)),
                                    STAND_IN_CID, STAND_IN_CID, proof.proof_bytes, proof.instances)


@pytest.mark.slow
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
        proof = aggregation.prove(updates, weights, model)
        assert verify_proof(aggregation.artifacts, proof.proof)[0], name  # a valid proof ... of the wrong thing
        with pytest.raises(ChainError, match=reason):
            publish(federation, accounts, task_id, 0, model, proof)
    margin = signed(prove_aggregation(aggregation.artifacts, [a, b], [SAMPLES] * 2, off_by_one).instances[
        aggregation_layout(AGGREGATION_SLOTS)["margin"]])
    assert margin < 0  # one quantum off shows as a negative rounding margin

    honest = aggregation.prove([a, b], [SAMPLES, SAMPLES], honest_model)
    assert statement_problems(honest.instances, AGGREGATION_SLOTS, federation.accepted_updates(task_id, 0),
                              [SAMPLES, SAMPLES], commit(np.array(honest_model))) == []
    # A valid proof published under another commitment, and a tampered proof, are refused too.
    with pytest.raises(ChainError, match="proof is for another model"):
        federation.publish_global_model(accounts[1], task_id, 0, commit(np.array(off_by_one)), STAND_IN_CID,
                                        STAND_IN_CID, honest.proof_bytes, honest.instances)
    tampered = bytearray(honest.proof_bytes)
    tampered[100] ^= 1
    with pytest.raises(ChainError, match="aggregation proof does not verify"):
        federation.publish_global_model(accounts[1], task_id, 0, commit(np.array(honest_model)), STAND_IN_CID,
                                        STAND_IN_CID, bytes(tampered), honest.instances)
    assert federation.task(task_id).current_round == 0  # nothing got through
    publish(federation, accounts, task_id, 0, honest_model, honest)
    assert federation.round(task_id, 1).global_commitment == commit(np.array(honest_model))


@pytest.mark.slow
def test_absent_slots_carry_no_weight_whatever_they_hold(federation, accounts, aggregation,  # type: ignore[no-untyped-def]
                                                         verifier_address, initial_model, prover) -> None:
    """Slots past the accepted updates must have count 0; then their content is irrelevant:
    junk in slots 1 and 2 gives the same average, and the contract accepts it."""
    task_id = new_task(federation, accounts, verifier_address, initial_model, accounts[2:3])
    step = prover.step(federation, task_id, accounts[2], 1, initial_model)
    assert submit_step(federation, accounts[1], accounts[2], task_id, 0, step).accepted
    a = list(step.proof.update)
    rng = np.random.default_rng(3)
    junk = [[int(v) for v in rng.integers(-2**40, 2**40, len(a))] for _ in range(2)]
    model = average(aggregation, [a], [SAMPLES])
    proof = prove_aggregation(aggregation.artifacts, [a, *junk], [SAMPLES, 0, 0], model)
    publish(federation, accounts, task_id, 0, model, proof)
    assert federation.round(task_id, 1).global_commitment == commit(np.array(model))


@pytest.mark.slow
def test_rounds_chain_and_a_stale_aggregate_is_refused(federation, accounts, aggregation, verifier_address,  # type: ignore[no-untyped-def]
                                                       initial_model, prover) -> None:
    """Wallets 2 and 3 join; only wallet 2 submits. The aggregator may not close the round on
    it until the collection window has passed; then G1 is the average of wallet 2's update,
    and round 1 starts there. (A window of 10 minutes: proving takes longer than the shortest.)"""
    window = 600
    task_id = new_task(federation, accounts, verifier_address, initial_model, accounts[2:4], collection_window=window)
    step = prover.step(federation, task_id, accounts[2], 1, initial_model)
    assert submit_step(federation, accounts[1], accounts[2], task_id, 0, step).accepted
    a = list(step.proof.update)
    g1 = average(aggregation, [a], [SAMPLES])
    round0 = aggregation.prove([a], [SAMPLES], g1)
    with pytest.raises(ChainError, match="round is still collecting submissions"):
        publish(federation, accounts, task_id, 0, g1, round0)
    advance_chain_time(federation.w3, window)
    publish(federation, accounts, task_id, 0, g1, round0)
    # Round 1 starts where the proven aggregate ended: wallet 2's step from G1 is accepted ...
    step = prover.step(federation, task_id, accounts[2], 1, np.array(g1, dtype=np.int64))
    assert step.proof.global_commitment == federation.round(task_id, 1).global_commitment
    assert submit_step(federation, accounts[1], accounts[2], task_id, 1, step).accepted
    g2 = average(aggregation, [list(step.proof.update)], [SAMPLES])
    round1 = aggregation.prove([list(step.proof.update)], [SAMPLES], g2)
    with pytest.raises(ChainError, match="round is still collecting submissions"):  # wallet 3 is still silent
        publish(federation, accounts, task_id, 1, g2, round1)
    advance_chain_time(federation.w3, window)
    # ... and round 0's aggregate, replayed for round 1, is stale.
    with pytest.raises(ChainError, match="inputs are not the round's accepted updates"):
        publish(federation, accounts, task_id, 1, g1, round0)
    publish(federation, accounts, task_id, 1, g2, round1)
    assert federation.task(task_id).current_round == 2
    assert federation.round(task_id, 2).global_commitment == commit(np.array(g2))


@pytest.mark.slow
def test_joining_takes_no_slot_and_a_full_round_refuses_without_slashing(  # type: ignore[no-untyped-def]
        federation, accounts, verifier_address, initial_model, prover) -> None:
    """Slots are taken by accepted updates, not by joining: more wallets than slots may join,
    and once the round's slots are taken a further submission reverts (nobody is slashed;
    the wallet may leave with its stake). A one-slot task shows it with two proofs."""
    wallets = accounts[2:8]
    task_id = new_task(federation, accounts, verifier_address, initial_model, wallets, slots=1)
    task = federation.task(task_id)
    assert task.aggregation_slots == 1 and task.active_participants == len(wallets)
    first = prover.step(federation, task_id, wallets[0], 1, initial_model)
    assert submit_step(federation, accounts[1], wallets[0], task_id, 0, first).accepted
    late = prover.step(federation, task_id, wallets[1], 2, initial_model)
    with pytest.raises(ChainError, match="round is full"):
        submit_step(federation, accounts[1], wallets[1], task_id, 0, late)
    assert federation.submission_status(task_id, 0, wallets[1].address) == (Status.NONE, Reason.NONE)
    assert not federation.participant(task_id, wallets[1].address).slashed
    before = federation.w3.eth.get_balance(wallets[1].address)
    federation.leave(wallets[1], task_id)
    assert federation.w3.eth.get_balance(wallets[1].address) > before + STAKE * 99 // 100  # the stake, less gas
    assert federation.task(task_id).active_participants == len(wallets) - 1
