"""The Federation contract on anvil with real ezkl proofs and the generated verifier."""

from __future__ import annotations

import time

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from tests.conftest import (
    ProvenStep,
    aggregation_verifier_for,
    prove,
    publish_aggregate,
    task_params,
    test_binding,
)
from zkfl.contracts.federation import Federation, Reason, Status
from zkfl.errors import ChainError
from zkfl.prover.binding import binding_value
from zkfl.prover.commit import commit
from zkfl.prover.ezkl_backend import proof_with_instances, verify_proof
from zkfl.prover.quantize import FIELD_MODULUS

STAKE = 10**17
REWARD = 10**18


def new_task(federation: Federation, accounts: list[LocalAccount], verifier: str, initial, **kw) -> int:  # type: ignore[no-untyped-def]
    org, aggregator = accounts[0], accounts[1]
    params = task_params(aggregator.address, verifier, initial,
                         aggregation_verifier=aggregation_verifier_for(federation), **kw)
    task_id = federation.create_task(org, params, REWARD)
    # Test wallets 2, 3, 4 register the fixed bindings their fixture proofs carry.
    for seed, participant in enumerate(accounts[2:5], start=1):
        federation.join(participant, task_id, STAKE, commit(test_binding(seed)))
    return task_id


def submit(federation: Federation, relayer: LocalAccount, signer: LocalAccount, task_id: int, round_: int,
           step: ProvenStep, update_commitment: int | None = None, proof: bytes | None = None):  # type: ignore[no-untyped-def]
    proof_bytes = step.proof.proof_bytes if proof is None else proof
    commitment = step.proof.update_commitment if update_commitment is None else update_commitment
    signature = federation.sign_submission(signer, task_id, round_, commitment, step.proof.instances, proof_bytes)
    return federation.submit_update(relayer, task_id, round_, signer.address, commitment, proof_bytes,
                                    step.proof.instances, signature)


def test_honest_update_is_accepted(federation, accounts, verifier_address, initial_model, step_a) -> None:  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    result = submit(federation, accounts[1], accounts[2], task_id, 0, step_a)
    assert result.accepted and result.reason == Reason.NONE
    assert federation.submission_status(task_id, 0, accounts[2].address) == (Status.ACCEPTED, Reason.NONE)
    assert federation.participant(task_id, accounts[2].address).verified_samples == 16


def test_tampered_proof_is_rejected_and_slashed(federation, accounts, verifier_address, initial_model, step_a) -> None:  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    proof = bytearray(step_a.proof.proof_bytes)
    proof[100] ^= 0x01
    result = submit(federation, accounts[1], accounts[2], task_id, 0, step_a, proof=bytes(proof))
    assert not result.accepted and result.reason == Reason.INVALID_PROOF
    assert federation.participant(task_id, accounts[2].address).slashed
    assert federation.task(task_id).slashed_pool == STAKE


def test_tampered_update_is_rejected(federation, accounts, verifier_address, initial_model, step_a) -> None:  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    update = list(step_a.proof.update)
    update[0] += 1  # one quantum
    result = submit(federation, accounts[1], accounts[2], task_id, 0, step_a, update_commitment=commit(update))
    assert not result.accepted and result.reason == Reason.UPDATE_MISMATCH
    events = federation.events("UpdateRejected", task_id)
    assert events[0]["args"]["detail"] == "submitted update is not the proof's output"


def test_proof_against_stale_global_model_is_rejected(federation, accounts, verifier_address, initial_model,
                                                      step_a, step_b, aggregation) -> None:  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    assert submit(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    # Client B proved from the round-0 model; round 1 starts from the new one.
    result = submit(federation, accounts[1], accounts[3], task_id, 1, step_b)
    assert not result.accepted and result.reason == Reason.STALE_GLOBAL_MODEL


def test_relayer_cannot_frame_or_impersonate(federation, accounts, verifier_address, initial_model, step_a) -> None:  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    honest, relayer = accounts[2], accounts[1]
    bad = commit([1] * 31)
    forged = federation.sign_submission(relayer, task_id, 0, bad, step_a.proof.instances, step_a.proof.proof_bytes)
    with pytest.raises(ChainError, match="BadSignature"):
        federation.submit_update(relayer, task_id, 0, honest.address, bad, step_a.proof.proof_bytes,
                                 step_a.proof.instances, forged)
    # A genuine signature cannot be reused for another update either.
    genuine = federation.sign_submission(honest, task_id, 0, step_a.proof.update_commitment,
                                         step_a.proof.instances, step_a.proof.proof_bytes)
    with pytest.raises(ChainError, match="BadSignature"):
        federation.submit_update(relayer, task_id, 0, honest.address, bad, step_a.proof.proof_bytes,
                                 step_a.proof.instances, genuine)
    assert not federation.participant(task_id, honest.address).slashed


def test_rules_of_the_round(federation, accounts, verifier_address, initial_model, step_a) -> None:  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    stranger = accounts[7]
    with pytest.raises(ChainError, match="has not joined"):
        submit(federation, accounts[1], stranger, task_id, 0, step_a)
    assert submit(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted
    with pytest.raises(ChainError, match="already submitted"):
        submit(federation, accounts[1], accounts[2], task_id, 0, step_a)
    with pytest.raises(ChainError, match="only the task's aggregator"):
        federation.publish_global_model(accounts[2], task_id, 0, 1, b"\x00" * 32, b"\x00" * 32, b"", [])
    with pytest.raises(ChainError, match="still running"):
        federation.settle(accounts[0], task_id)
    with pytest.raises(ChainError, match="not settled"):
        federation.withdraw(accounts[2], task_id)


def test_verifier_without_code_is_refused(federation, accounts, initial_model, verifier_address) -> None:  # type: ignore[no-untyped-def]
    empty = Web3.to_checksum_address("0x" + "42" * 20)
    with pytest.raises(ChainError, match="verifier has no code"):
        federation.create_task(accounts[0], task_params(accounts[1].address, empty, initial_model,
                                                        aggregation_verifier=aggregation_verifier_for(federation)),
                               REWARD)
    with pytest.raises(ChainError, match="aggregation verifier has no code"):
        federation.create_task(accounts[0], task_params(accounts[1].address, verifier_address, initial_model,
                                                        aggregation_verifier=empty), REWARD)


def test_settlement_pays_verified_work_and_conserves_value(federation, accounts, verifier_address, initial_model,
                                                           step_a, step_b, aggregation) -> None:  # type: ignore[no-untyped-def]
    w3 = federation.w3
    before = w3.eth.get_balance(federation.address)
    task_id = new_task(federation, accounts, verifier_address, initial_model, rounds=1)
    assert submit(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted
    bad = list(step_b.proof.update)
    bad[3] -= 1
    assert not submit(federation, accounts[1], accounts[3], task_id, 0, step_b, update_commitment=commit(bad)).accepted
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    federation.settle(accounts[5], task_id)
    with pytest.raises(ChainError, match="already settled"):
        federation.settle(accounts[5], task_id)
    paid = {a.address: federation.withdraw(a, task_id) for a in (accounts[2], accounts[4])}
    with pytest.raises(ChainError, match="already withdrawn"):
        federation.withdraw(accounts[2], task_id)
    # Accepted: reward pool + slashed stake + own stake. Silent joiner: stake back only.
    assert paid[accounts[2].address] == REWARD + STAKE + STAKE
    assert paid[accounts[4].address] == STAKE
    deposited = REWARD + 3 * STAKE
    left = w3.eth.get_balance(federation.address) - before
    assert sum(paid.values()) + left == deposited
    assert left == 0


def test_deadline_closes_the_task(federation, accounts, verifier_address, initial_model, step_a, w3) -> None:  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model, deadline_in=60)
    w3.provider.make_request("evm_increaseTime", [120])
    w3.provider.make_request("evm_mine", [])
    with pytest.raises(ChainError, match="task is closed"):
        submit(federation, accounts[1], accounts[2], task_id, 0, step_a)
    federation.settle(accounts[0], task_id)
    assert federation.task(task_id).settled
    time.sleep(0)  # deadlines are chain time, not wall time


def test_proof_copied_by_another_wallet_is_rejected(federation, accounts, verifier_address, initial_model,
                                                    step_a) -> None:  # type: ignore[no-untyped-def]
    """Wallet 3 takes wallet 2's proof and update off the broker and signs them itself."""
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    result = submit(federation, accounts[1], accounts[3], task_id, 0, step_a)
    assert not result.accepted and result.reason == Reason.BINDING_MISMATCH
    # The owner can still submit its own work.
    assert submit(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted


def test_binding_commitments_are_owned_by_one_wallet(federation, accounts, verifier_address, initial_model) -> None:  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    with pytest.raises(ChainError, match="binding already taken"):
        federation.join(accounts[6], task_id, STAKE, commit(test_binding(1)))


def test_proof_replayed_in_a_later_round_is_rejected(federation, accounts, verifier_address, initial_model,
                                                      step_a, aggregation) -> None:  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    assert submit(federation, accounts[1], accounts[2], task_id, 0, step_a).accepted
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    result = submit(federation, accounts[1], accounts[2], task_id, 1, step_a)
    assert not result.accepted and result.reason == Reason.STALE_GLOBAL_MODEL


def test_proof_sent_to_another_task_is_rejected(federation, accounts, verifier_address, initial_model, artifacts,
                                                quantizer) -> None:  # type: ignore[no-untyped-def]
    """Real bindings (derived from the wallet's signature) differ per task."""
    org, aggregator, wallet = accounts[0], accounts[1], accounts[5]
    params = task_params(aggregator.address, verifier_address, initial_model,
                         aggregation_verifier=aggregation_verifier_for(federation))
    first = federation.create_task(org, params, REWARD)
    second = federation.create_task(org, params, REWARD)  # same circuit, same initial model
    federation.join(wallet, first, STAKE)
    federation.join(wallet, second, STAKE)
    binding = binding_value(wallet, federation.w3.eth.chain_id, federation.address, first)
    step = prove(artifacts, quantizer, 7, initial_model, binding)
    result = submit(federation, aggregator, wallet, second, 0, step)
    assert not result.accepted and result.reason == Reason.BINDING_MISMATCH
    assert submit(federation, aggregator, wallet, first, 0, step).accepted


def test_changed_data_commitment_is_rejected_when_the_task_pins_data(federation, accounts, verifier_address,
                                                                     initial_model, artifacts, quantizer,
                                                                     step_a, aggregation) -> None:  # type: ignore[no-untyped-def]
    org, aggregator, wallet = accounts[0], accounts[1], accounts[2]
    task_id = federation.create_task(org, task_params(aggregator.address, verifier_address, initial_model,
                                                      pin_data=True,
                                                      aggregation_verifier=aggregation_verifier_for(federation)),
                                     REWARD)
    federation.join(wallet, task_id, STAKE, commit(test_binding(1)))
    assert submit(federation, aggregator, wallet, task_id, 0, step_a).accepted
    next_model = publish_aggregate(federation, aggregation, aggregator, task_id, 0)
    # The same data again is fine ...
    assert federation.contract.functions.getSubmission(task_id, 0, wallet.address).call()[0] == 1
    # Same wallet and binding, right global model, but other data than in round 0.
    other_data = prove(artifacts, quantizer, 5, next_model, test_binding(1))
    result = submit(federation, aggregator, wallet, task_id, 1, other_data)
    assert not result.accepted and result.reason == Reason.DATA_COMMITMENT_CHANGED


def test_every_public_value_is_bound_by_the_proof(artifacts, step_a, verifier_address, w3) -> None:  # type: ignore[no-untyped-def]
    """Changing any public value breaks verification, off chain and in the EVM verifier."""
    from zkfl.contracts.solc import compile_contract

    verifier = w3.eth.contract(address=verifier_address, abi=compile_contract(artifacts.verifier_sol,
                                                                               "Halo2Verifier").abi)
    proof_bytes, values = step_a.proof.proof_bytes, step_a.proof.instances
    assert verifier.functions.verifyProof(proof_bytes, values).call() is True
    for index in range(len(values)):
        changed = list(values)
        changed[index] = (changed[index] + 1) % FIELD_MODULUS
        ok, _ = verify_proof(artifacts, proof_with_instances(step_a.proof.proof, changed))
        assert not ok, f"public value {index} is not bound"
        try:
            on_chain = verifier.functions.verifyProof(proof_bytes, changed).call()
        except Exception:  # the generated verifier reverts on a bad proof
            on_chain = False
        assert on_chain is False, f"public value {index} is not bound on chain"


def test_a_relayer_cannot_starve_the_verifier_to_slash_an_honest_client(federation, accounts, initial_model,  # type: ignore[no-untyped-def]
                                                                          step_a) -> None:
    """A verifier far costlier than the contract's own bookkeeping: with too little gas the
    verifier call starves while the outer call could still record a slash. It must revert."""
    from pathlib import Path

    from zkfl.contracts.federation import adapter_contract, deploy
    from zkfl.contracts.solc import compile_contract

    hungry = compile_contract(Path(__file__).parent / "contracts" / "TestContracts.sol", "GasHungryVerifier")
    direct, _ = deploy(federation.w3, accounts[0], hungry, 8_000_000)
    reusable, _ = deploy(federation.w3, accounts[0], hungry, 8_000_000)
    adapter, _ = deploy(federation.w3, accounts[0], adapter_contract(), reusable, [b"\x01" * 32])
    for verifier in (direct, adapter):
        task_id = new_task(federation, accounts, verifier, initial_model)
        honest = accounts[2]
        signature = federation.sign_submission(honest, task_id, 0, step_a.proof.update_commitment,
                                               step_a.proof.instances, step_a.proof.proof_bytes)
        args = (accounts[1], task_id, 0, honest.address, step_a.proof.update_commitment, step_a.proof.proof_bytes,
                step_a.proof.instances, signature)
        with pytest.raises(ChainError):
            federation.submit_update(*args, gas=7_000_000)  # verifier starves; bookkeeping would fit
        assert federation.submission_status(task_id, 0, honest.address) == (Status.NONE, Reason.NONE)
        assert not federation.participant(task_id, honest.address).slashed
        assert federation.submit_update(*args, gas=12_000_000).accepted
