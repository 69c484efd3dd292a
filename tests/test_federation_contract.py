"""The Federation contract on anvil with real ezkl proofs and the generated verifier.

Every proof is made for the one (chain, Federation, task, wallet) that submits it
(``prover.step``); a proof used anywhere else is the attack under test. Tests that only
need different wallets in one task share the module's task (``shared_task``, one wallet
each), so each proof is made once. Publishing rounds averages one update, wallet seed 1's
from the zero model, so one FedAvg proof serves every test that publishes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import rlp
from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from multiformats import CID, multihash
from web3 import Web3
from web3.exceptions import ContractCustomError

from tests.conftest import (
    KNOWN_UPDATES,
    STAND_IN_CID,
    ProvenStep,
    advance_chain_time,
    aggregation_verifier_for,
    assert_gas_decides_no_verdict,
    deploy_aggregation_verifier,
    publish_aggregate,
    submit_step,
    task_params,
)
from zkfl.aggregator.fedavg import fedavg
from zkfl.contracts.chain import connect, decode_revert, send, start_anvil
from zkfl.contracts.federation import Federation, Reason, SignedUpdate, Status, decode_update, deploy, encode_update
from zkfl.contracts.solc import compile_contract
from zkfl.contracts.verifiers import deploy_verifier
from zkfl.errors import ChainError, ProofError, ZkflError
from zkfl.field import BASE_FIELD_MODULUS
from zkfl.field.binding import binding_commitment, binding_value
from zkfl.field.commit import commit
from zkfl.field.poseidon import poseidon_commit
from zkfl.field.quantize import FIELD_MODULUS
from zkfl.prover.ezkl.evm import verifier as ezkl_verifier
from zkfl.prover.ezkl.prove import proof_json, prove_step, verify_proof
from zkfl.prover.records import (
    BINDING_INDEX,
    CHECK_INDEX,
    FEATURES_INDEX,
    GLOBAL_INDEX,
    INPUTS_VALID,
    LABELS_INDEX,
    STEP_PUBLIC_LAYOUT,
    commits_to_data,
)
from zkfl.store import cid_of

STAKE = 10**17
REWARD = 10**18
YEAR = 365 * 24 * 3600
#: Tests that time a round use this window: long enough that a loaded machine finishes its
#: transactions inside it, short enough that moving anvil's clock past it disturbs no other task.
WINDOW = 120


# ---------------------------------------------------------------- helpers


def chain_now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def new_task(federation: Federation, accounts: list[LocalAccount], verifier: str, initial: np.ndarray,
             joiners: tuple[LocalAccount, ...] = (), reward: int = REWARD, expect_id: int | None = None,
             **kw: object) -> int:
    """A task by dev account 0, aggregated by dev account 1; ``joiners`` stake and join."""
    params = task_params(accounts[1].address, verifier, initial, now=chain_now(federation.w3),
                         aggregation_verifier=aggregation_verifier_for(federation), **kw)  # type: ignore[arg-type]
    task_id = federation.create_task(accounts[0], params, reward)
    assert expect_id is None or task_id == expect_id
    for wallet in joiners:
        federation.join(wallet, task_id, STAKE)
    return task_id


def task_numbered(federation: Federation, accounts: list[LocalAccount], verifier: str, initial: np.ndarray,
                  task_id: int) -> int:
    """A task with exactly this id (small filler tasks before it), so that a context differs
    from another only in what the test means it to."""
    while federation.task_count() < task_id - 1:
        new_task(federation, accounts, verifier, initial, reward=1)
    created = new_task(federation, accounts, verifier, initial)
    assert created == task_id
    return created


def next_task_id(federation: Federation) -> int:
    """The id the next task will get: proofs for a timed task are made before it exists, so
    that proving time (wall clock, which anvil's clock follows) does not eat its deadline or window."""
    return federation.task_count() + 1


def prepare_publish(aggregation, steps: list[ProvenStep]) -> None:  # type: ignore[no-untyped-def]
    """Make (and cache) the FedAvg proof ``publish_aggregate`` will need for these updates."""
    updates = [list(s.proof.update) for s in steps]
    samples = [16] * len(updates)
    aggregation.prove(updates, samples, fedavg(updates, samples, aggregation.update_scale,
                                               aggregation.artifacts.spec.scale))


def signed(federation: Federation, signer: LocalAccount, task_id: int, round_: int, step: ProvenStep, *,
           update: list[int] | None = None, commitment: int | None = None,
           proof: bytes | None = None) -> tuple:  # type: ignore[type-arg]
    """The arguments of a signed submission (for ``simulate_submit``/``submit_update``)."""
    values = list(step.proof.update if update is None else update)
    proof_bytes = step.proof.proof_bytes if proof is None else proof
    if commitment is None:
        commitment = commit(np.array(values, dtype=np.int64))
    signature = federation.sign_submission(signer, task_id, round_, commitment, values, step.proof.instances,
                                           proof_bytes)
    return (task_id, round_, signer.address, commitment, values, proof_bytes, step.proof.instances, signature)


def off_curve_proof(proof: bytes) -> bytes:
    """The proof with its first point's y one higher: off the curve (ezkl writes x then y, big-endian)."""
    y = (int.from_bytes(proof[32:64], "big") + 1) % BASE_FIELD_MODULUS
    return proof[:32] + y.to_bytes(32, "big") + proof[64:]


def step_verifier(w3: Web3, artifacts, address: str):  # type: ignore[no-untyped-def]
    return w3.eth.contract(address=Web3.to_checksum_address(address),
                           abi=compile_contract(artifacts.verifier_sol, "Halo2Verifier").abi)


def verifies_on_chain(verifier, proof: bytes, values: list[int]) -> bool:  # type: ignore[no-untyped-def]
    try:
        return verifier.functions.verifyProof(proof, values).call() is True
    except Exception:  # the generated verifier reverts on a bad proof
        return False


def create_address(sender: str, nonce: int) -> str:
    return Web3.to_checksum_address(Web3.keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:])


def data_commitment(public_values: list[int]) -> bytes:
    return bytes(Web3.keccak(encode(["uint256", "uint256"], [public_values[1], public_values[2]])))


# ---------------------------------------------------------------- shared set-up


@pytest.fixture(scope="module")
def shared_task(federation, accounts, verifier_address, initial_model) -> int:  # type: ignore[no-untyped-def]
    """One round-0 task, never published: each test here uses its own wallet(s) in it.
    Wallets: 2 P (honest), 3 tampered proof, 4 tampered update, 5 framed by the relayer,
    6 rules of the round, 7 thief. More slots than the FedAvg circuit's, since nothing
    is aggregated here."""
    return new_task(federation, accounts, verifier_address, initial_model, slots=8)


@dataclass(frozen=True)
class Accepted:
    task_id: int
    wallet: LocalAccount
    step: ProvenStep
    tx_hash: str


@pytest.fixture(scope="module")
def p_accepted(federation, accounts, shared_task, prover, initial_model) -> Accepted:  # type: ignore[no-untyped-def]
    """Participant P (wallet 2) joins the shared task and its honest update is accepted."""
    wallet = accounts[2]
    federation.join(wallet, shared_task, STAKE)
    step = prover.step(federation, shared_task, wallet, 1, initial_model)
    result = submit_step(federation, accounts[1], wallet, shared_task, 0, step)
    assert result.accepted, result.reason
    return Accepted(shared_task, wallet, step, result.tx_hash)


@dataclass(frozen=True)
class Target:
    federation: Federation
    task_id: int
    verifier: str


@pytest.fixture(scope="module")
def second_federation(federation, accounts) -> Federation:  # type: ignore[no-untyped-def]
    """Another Federation deployment on the same chain (not at the canonical address)."""
    return Federation.deploy(federation.w3, accounts[0], canonical=False)


@dataclass(frozen=True)
class OtherChain:
    federation: Federation  # at the session Federation's address
    verifier: str


@pytest.fixture(scope="module")
def other_chain(federation, accounts, artifacts, aggregation) -> Iterator[OtherChain]:  # type: ignore[no-untyped-def]
    """A second anvil with another chain id, where the Federation sits at the same address as
    the session's (both at the canonical CREATE2 address): only the chain id tells them apart."""
    w3 = federation.w3
    with start_anvil(chain_id=w3.eth.chain_id + 1) as process:
        other_w3 = connect(process.rpc_url)
        other = Federation.deploy(other_w3, accounts[0])
        assert other.address == federation.address and other_w3.eth.chain_id != w3.eth.chain_id
        verifier, _ = deploy_verifier(other_w3, accounts[0], ezkl_verifier(artifacts))
        deploy_aggregation_verifier(other_w3, accounts[0], aggregation)
        yield OtherChain(other, verifier)


# ---------------------------------------------------------------- the honest path and its rules


@pytest.mark.slow
def test_honest_update_is_accepted(federation, accounts, p_accepted) -> None:  # type: ignore[no-untyped-def]
    task_id, wallet, step = p_accepted.task_id, p_accepted.wallet, p_accepted.step
    assert federation.submission_status(task_id, 0, wallet.address) == (Status.ACCEPTED, Reason.NONE)
    participant = federation.participant(task_id, wallet.address)
    assert participant.verified_samples == 16 and participant.stake == STAKE and not participant.slashed
    # The data commitment is in the event; storage keeps it only where the task pins data (this one does not).
    [event] = [e["args"] for e in federation.events("UpdateAccepted", task_id)
               if e["args"]["participant"] == wallet.address]
    assert event["dataCommitment"] == data_commitment(step.proof.instances)
    assert participant.data_commitment == b"\x00" * 32
    submission = federation.submission(task_id, 0, wallet.address)
    assert submission.update_commitment == step.proof.update_commitment
    assert submission.seal == Web3.keccak(step.proof.update_commitment.to_bytes(32, "big")
                                          + Web3.keccak(encode_update(step.proof.update)))
    assert submission.seals(step.proof.update_commitment, step.proof.update)
    assert not submission.seals(step.proof.update_commitment + 1, step.proof.update)
    assert step.proof.instances[3] == participant.binding
    assert step.proof.update_commitment in federation.accepted_updates(task_id, 0)
    # The update's values are on chain for anyone to aggregate, and they are the proof's output.
    published = federation.published_updates(task_id, 0)[wallet.address.lower()]
    assert published == step.proof.update and commit(np.array(published)) == step.proof.update_commitment


@pytest.mark.slow
def test_tampered_proof_is_rejected_and_slashed(federation, accounts, shared_task, prover,  # type: ignore[no-untyped-def]
                                               initial_model) -> None:
    wallet = accounts[3]
    federation.join(wallet, shared_task, STAKE)
    step = prover.step(federation, shared_task, wallet, 2, initial_model)
    assert federation.simulate_submit(*signed(federation, wallet, shared_task, 0, step))  # untampered: accepted
    proof = bytearray(step.proof.proof_bytes)
    proof[100] ^= 0x01
    pool = federation.task(shared_task).slashed_pool
    result = submit_step(federation, accounts[1], wallet, shared_task, 0, step, proof=bytes(proof))
    assert not result.accepted and result.reason == Reason.INVALID_PROOF
    assert federation.participant(shared_task, wallet.address).slashed
    assert federation.participant(shared_task, wallet.address).stake == 0
    assert federation.task(shared_task).slashed_pool == pool + STAKE


@pytest.mark.slow
def test_tampered_update_is_rejected(federation, accounts, shared_task, prover, initial_model) -> None:  # type: ignore[no-untyped-def]
    wallet = accounts[4]
    federation.join(wallet, shared_task, STAKE)
    step = prover.step(federation, shared_task, wallet, 3, initial_model)
    assert federation.simulate_submit(*signed(federation, wallet, shared_task, 0, step))
    update = list(step.proof.update)
    update[0] += 1  # one quantum
    result = submit_step(federation, accounts[1], wallet, shared_task, 0, step, update=update)
    assert not result.accepted and result.reason == Reason.UPDATE_MISMATCH
    assert federation.participant(shared_task, wallet.address).slashed
    [event] = [e for e in federation.events("UpdateRejected", shared_task)
               if e["args"]["participant"] == wallet.address]
    assert event["args"]["detail"] == "submitted update is not the proof's output"


@pytest.mark.slow
def test_relayer_cannot_frame_or_impersonate(federation, accounts, shared_task, prover, initial_model) -> None:  # type: ignore[no-untyped-def]
    honest, relayer = accounts[5], accounts[1]
    federation.join(honest, shared_task, STAKE)
    step = prover.step(federation, shared_task, honest, 4, initial_model)
    proof, values = step.proof.proof_bytes, step.proof.instances
    bad = [1] * len(step.proof.update)
    forged = federation.sign_submission(relayer, shared_task, 0, commit(np.array(bad)), bad, values, proof)
    with pytest.raises(ChainError, match="BadSignature"):
        federation.submit_update(relayer, shared_task, 0, honest.address, commit(np.array(bad)), bad, proof, values,
                                 forged)
    # A genuine signature cannot be reused for other update values, nor for another commitment.
    genuine = signed(federation, honest, shared_task, 0, step)
    _, _, _, commitment, update, _, _, signature = genuine
    with pytest.raises(ChainError, match="BadSignature"):
        federation.submit_update(relayer, shared_task, 0, honest.address, commitment, bad, proof, values, signature)
    with pytest.raises(ChainError, match="BadSignature"):
        federation.submit_update(relayer, shared_task, 0, honest.address, commit(np.array(bad)), update, proof,
                                 values, signature)
    assert federation.submission_status(shared_task, 0, honest.address) == (Status.NONE, Reason.NONE)
    assert not federation.participant(shared_task, honest.address).slashed
    # None of it used up the honest participant's turn.
    assert federation.submit_update(relayer, *genuine).accepted


@pytest.mark.slow
def test_rules_of_the_round(federation, accounts, shared_task, prover, initial_model) -> None:  # type: ignore[no-untyped-def]
    wallet = accounts[6]
    step = prover.step(federation, shared_task, wallet, 5, initial_model)
    with pytest.raises(ChainError, match="has not joined"):
        submit_step(federation, accounts[1], wallet, shared_task, 0, step)
    federation.join(wallet, shared_task, STAKE)
    with pytest.raises(ChainError, match="already joined"):
        federation.join(wallet, shared_task, STAKE)
    assert submit_step(federation, accounts[1], wallet, shared_task, 0, step).accepted
    with pytest.raises(ChainError, match="already submitted"):
        submit_step(federation, accounts[1], wallet, shared_task, 0, step)
    with pytest.raises(ChainError, match="cannot leave after submitting"):
        federation.leave(wallet, shared_task)
    with pytest.raises(ChainError, match="only the task's aggregator"):
        federation.publish_global_model(wallet, shared_task, 0, 1, STAND_IN_CID, STAND_IN_CID, b"", [])
    with pytest.raises(ChainError, match="still running"):
        federation.settle(accounts[0], shared_task)
    with pytest.raises(ChainError, match="not settled"):
        federation.withdraw(wallet, shared_task)


def test_verifier_without_code_is_refused(federation, accounts, initial_model, verifier_address) -> None:  # type: ignore[no-untyped-def]
    empty = Web3.to_checksum_address("0x" + "42" * 20)
    now = chain_now(federation.w3)
    with pytest.raises(ChainError, match="verifier has no code"):
        federation.create_task(accounts[0], task_params(accounts[1].address, empty, initial_model, now=now,
                                                        aggregation_verifier=aggregation_verifier_for(federation)),
                               REWARD)
    with pytest.raises(ChainError, match="aggregation verifier has no code"):
        federation.create_task(accounts[0], task_params(accounts[1].address, verifier_address, initial_model,
                                                        now=now, aggregation_verifier=empty), REWARD)


def test_task_limits_are_enforced_at_creation(federation, accounts, initial_model, verifier_address) -> None:  # type: ignore[no-untyped-def]
    """A deadline at most a year ahead (pool and stakes are never locked longer) and a
    collection window of 10 s to 7 days."""
    def create(**kw: object) -> int:
        params = task_params(accounts[1].address, verifier_address, initial_model, now=chain_now(federation.w3),
                             aggregation_verifier=aggregation_verifier_for(federation), **kw)  # type: ignore[arg-type]
        return federation.create_task(accounts[0], params, REWARD)

    with pytest.raises(ChainError, match="deadline is more than a year away"):
        create(deadline_in=YEAR + 3600)
    now = chain_now(federation.w3)
    assert federation.task(create(deadline_in=YEAR)).deadline == now + YEAR  # a year (from the last block) is fine
    with pytest.raises(ChainError, match="collection window must be 10 s to 7 days"):
        create(collection_window=9)
    with pytest.raises(ChainError, match="collection window must be 10 s to 7 days"):
        create(collection_window=7 * 24 * 3600 + 1)
    assert federation.task(create(collection_window=10)).collection_window == 10


def test_the_chain_records_whole_cids_and_only_well_formed_ones(federation, accounts, initial_model,  # type: ignore[no-untyped-def]
                                                               verifier_address) -> None:
    """A package over one chunk has a dag-pb CID: the chain keeps its codec, so the CID read
    back is the one posted. Anything but a CIDv1 raw or dag-pb sha2-256 is refused."""
    big = cid_of(b"x" * 300_000)  # two leaves under a dag-pb root: bafybei...
    assert big.startswith("bafybei") and STAND_IN_CID.startswith("bafkrei")
    params = task_params(accounts[1].address, verifier_address, initial_model, now=chain_now(federation.w3),
                         aggregation_verifier=aggregation_verifier_for(federation))
    task_id = federation.create_task(accounts[0], replace(params, package_cid=big), REWARD)
    assert federation.task(task_id).package_cid == big
    assert federation.round(task_id, 0).model_cid == STAND_IN_CID and federation.round(task_id, 1).model_cid is None
    assert federation.contract.functions.packageCid(task_id).call() == bytes(CID.decode(big))
    fields = list(replace(params, package_cid=big).as_tuple(0))
    sha512 = bytes(CID("base32", 1, "raw", multihash.digest(b"x", "sha2-512")))
    cbor = b"\x01\x71" + bytes(CID.decode(big))[2:]
    for bad in (bytes(CID.decode(big))[4:], sha512, cbor, b"\x12\x20" + b"\x00" * 32, b""):
        fields[-1] = bad  # past the SDK, straight to the contract
        with pytest.raises(ChainError, match="InvalidCid"):
            send(federation.w3, accounts[0], federation.contract.functions.createTask(tuple(fields)),
                 value=REWARD)


@pytest.mark.slow
def test_settlement_pays_verified_work_and_conserves_value(federation, accounts, verifier_address, initial_model,  # type: ignore[no-untyped-def]
                                                           prover, aggregation) -> None:
    w3 = federation.w3
    before = w3.eth.get_balance(federation.address)
    honest, cheat, silent = accounts[2], accounts[3], accounts[4]
    task_id = new_task(federation, accounts, verifier_address, initial_model, (honest, cheat, silent), rounds=1)
    step = prover.step(federation, task_id, honest, 1, initial_model)
    assert submit_step(federation, accounts[1], honest, task_id, 0, step).accepted
    result = submit_step(federation, accounts[1], cheat, task_id, 0, step)  # the cheat signs the honest work
    assert not result.accepted and result.reason == Reason.BINDING_MISMATCH
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    federation.settle(accounts[5], task_id)
    with pytest.raises(ChainError, match="already settled"):
        federation.settle(accounts[5], task_id)
    paid = {a.address: federation.withdraw(a, task_id) for a in (honest, cheat, silent)}
    with pytest.raises(ChainError, match="already withdrawn"):
        federation.withdraw(honest, task_id)
    # Accepted: reward pool + slashed stake + own stake. Slashed: nothing. Silent joiner: stake back only.
    assert paid == {honest.address: REWARD + STAKE + STAKE, cheat.address: 0, silent.address: STAKE}
    assert federation.contract.functions.reclaimable(task_id).call() == 0  # nothing left for the organisation
    assert w3.eth.get_balance(federation.address) == before  # everything deposited went back out


@pytest.mark.slow
def test_deadline_closes_the_task(federation, accounts, verifier_address, initial_model, prover) -> None:  # type: ignore[no-untyped-def]
    wallet = accounts[2]
    task_id = next_task_id(federation)
    step = prover.step(federation, task_id, wallet, 1, initial_model)
    new_task(federation, accounts, verifier_address, initial_model, (wallet,), deadline_in=60, expect_id=task_id)
    args = signed(federation, wallet, task_id, 0, step)
    assert federation.simulate_submit(*args)  # before the deadline this submission is accepted
    with pytest.raises(ChainError, match="task still running"):
        federation.settle(accounts[0], task_id)
    advance_chain_time(federation.w3, 120)  # deadlines are chain time, not wall time
    with pytest.raises(ChainError, match="task is closed"):
        federation.submit_update(accounts[1], *args)
    with pytest.raises(ChainError, match="task is closed"):
        federation.join(accounts[3], task_id, STAKE)
    federation.settle(accounts[0], task_id)
    assert federation.task(task_id).settled
    assert federation.submission_status(task_id, 0, wallet.address) == (Status.NONE, Reason.NONE)


@pytest.mark.slow
def test_changed_data_commitment_is_rejected_when_the_task_pins_data(federation, accounts, initial_model,  # type: ignore[no-untyped-def]
                                                                     pinned_prover, aggregation,
                                                                     verifier_address) -> None:
    """A task that pins data has a step that commits to the batch (``commits_data``). (The
    ``verifier_address`` fixture also deploys the FedAvg verifier the task names.)"""
    prover, wallet = pinned_prover, accounts[2]
    verifier, _ = deploy_verifier(federation.w3, accounts[0], ezkl_verifier(prover.artifacts))
    task_id = new_task(federation, accounts, verifier, initial_model, (wallet,), pin_data=True)
    first = prover.step(federation, task_id, wallet, 1, initial_model)
    assert first.proof.data_commitments == [commit(first.x), commit(first.y.reshape(-1))]
    assert submit_step(federation, accounts[1], wallet, task_id, 0, first).accepted
    assert federation.participant(task_id, wallet.address).data_commitment == data_commitment(first.proof.instances)
    next_model = publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    # The same data from the new model would be accepted ...
    same_data = prover.step(federation, task_id, wallet, 1, next_model)
    assert federation.simulate_submit(*signed(federation, wallet, task_id, 1, same_data))
    # ... other data than in round 0 is not (same wallet, binding and global model).
    other_data = prover.step(federation, task_id, wallet, 5, next_model)
    assert data_commitment(other_data.proof.instances) != data_commitment(first.proof.instances)
    result = submit_step(federation, accounts[1], wallet, task_id, 1, other_data)
    assert not result.accepted and result.reason == Reason.DATA_COMMITMENT_CHANGED
    assert federation.participant(task_id, wallet.address).slashed


def test_a_task_that_does_not_pin_data_gets_no_commitment_to_it(artifacts, step_a, step_b) -> None:  # type: ignore[no-untyped-def]
    """zkfl's default step keeps the batch private: its inputs are private (only G and b are hashed,
    as outputs), and where H(X) and H(y) would be its proofs carry H(check), H([0]) for any batch
    within bounds. So the chain holds no hash of anyone's data (which, for rows of a known dataset,
    would say whose rows they are); a task that pins data is the one exception."""
    assert not artifacts.spec.commits_data
    assert artifacts.settings_json()["run_args"]["input_visibility"] == "Private"
    assert not np.array_equal(step_a.x, step_b.x)
    for step in (step_a, step_b):
        values = step.proof.instances
        assert values[FEATURES_INDEX] == values[LABELS_INDEX] == values[CHECK_INDEX] == INPUTS_VALID
        assert not commits_to_data(values)
        assert values[GLOBAL_INDEX] == commit(step.global_model)  # G and b hashed as outputs: the same H
        assert values[BINDING_INDEX] == commit(step.binding)


def test_every_public_value_is_bound_by_the_proof(federation, artifacts, p_accepted, verifier_address) -> None:  # type: ignore[no-untyped-def]
    """Changing any of the six public values breaks verification, off chain and in the EVM verifier."""
    verifier = step_verifier(federation.w3, artifacts, verifier_address)
    proof_bytes, values = p_accepted.step.proof.proof_bytes, p_accepted.step.proof.instances
    assert len(values) == len(STEP_PUBLIC_LAYOUT) == federation.contract.functions.STEP_PUBLIC_VALUES().call() == 6
    assert verifies_on_chain(verifier, proof_bytes, values)
    assert verify_proof(artifacts, p_accepted.step.proof.proof)[0]
    for index, name in enumerate(STEP_PUBLIC_LAYOUT):
        changed = list(values)
        changed[index] = (changed[index] + 1) % FIELD_MODULUS
        ok, _ = verify_proof(artifacts, proof_json(p_accepted.step.proof.proof_bytes, changed))
        assert not ok, f"public value {index} ({name}) is not bound"
        assert not verifies_on_chain(verifier, proof_bytes, changed), f"{name} is not bound on chain"


def test_ezkl_proofs_verify_together_and_one_bad_proof_fails_the_batch(federation, artifacts, step_a, step_b,  # type: ignore[no-untyped-def]
                                                                      verifier_address) -> None:
    """verifyProofs pairs once for the whole batch. A proof that passes every check of ezkl's but
    the final pairing (a public value changed: the transcript, so the accumulated points, change)
    must fail the batch wherever it stands, first (weight 1) or later (a drawn weight)."""
    verifier = step_verifier(federation.w3, artifacts, verifier_address)
    a = (step_a.proof.proof_bytes, step_a.proof.instances)
    b = (step_b.proof.proof_bytes, step_b.proof.instances)
    bad = (b[0], [b[1][0], (b[1][1] + 1) % FIELD_MODULUS, *b[1][2:]])
    short = (b[0][:-32], b[1])

    def together(*items: tuple[bytes, list[int]]) -> bool:
        try:
            return verifier.functions.verifyProofs([p for p, _ in items], [v for _, v in items]).call() is True
        except Exception:  # a revert is not a verdict of "valid"
            return False

    assert together(a, b) and together(b, a) and together(a, a, b)
    assert verifies_on_chain(verifier, *a) and not verifies_on_chain(verifier, *bad)
    for items in ((a, bad), (bad, a), (a, b, bad), (bad, bad), (a, short), (short, a)):
        assert not together(*items), [len(v) for _, v in items]
    assert not together()
    # Gas decides no verdict: with too little, verifyProof reverts (the Federation reads that as
    # starvation and judges nobody), it never says false of a valid proof. The pairing has a fixed
    # price: a guard before it refuses to go on with less (the outside review's finding).
    # What ezkl's checks, then the pairing, need lies in this range.
    assert_gas_decides_no_verdict(verifier.functions.verifyProof(*a), range(400_000, 720_000, 8_000))
    # A point off the curve is refused by ezkl's own checks before any precompile: a verdict (false),
    # with gas to spare, never a call that burnt all its gas and so would read as starved.
    off_curve = (off_curve_proof(b[0]), b[1])
    assert verifier.functions.verifyProof(*off_curve).call({"gas": 3_000_000}) is False
    padded = (b[0] + bytes(300_000), b[1])  # refused by length before it is copied
    assert verifier.functions.verifyProof(*padded).call({"gas": 6_000_000}) is False
    assert not together(a, off_curve) and not together(off_curve, a)
    # ezkl's other checks pass for the bad proof: its deferred call returns the two points, and
    # only the pairing, the part a batch shares, refuses it.
    call = verifier.functions.verifyProofDeferred(*bad)._encode_transaction_data()
    assert len(federation.w3.eth.call({"to": verifier.address, "data": call})) == 128


@pytest.mark.slow
def test_ezkl_updates_relayed_in_one_transaction_are_verified_together_and_a_bad_proof_costs_only_its_own(  # type: ignore[no-untyped-def]
        federation, accounts, verifier_address, initial_model, prover) -> None:
    """Two honest updates in one submitUpdates pass as one batch (one pairing). A proof that fails
    only the pairing (its features' commitment changed, which every check but the proof's lets
    through) sinks the batch equation, as does one with a point off the curve: each proof is then
    verified alone, the honest one in their batch is accepted, and only the cheats are rejected
    and slashed (the off-curve one too: refused before any precompile, not reverted as starved)."""
    wallets = accounts[2:7]
    task_id = new_task(federation, accounts, verifier_address, initial_model, tuple(wallets), slots=8)
    steps = [prover.step(federation, task_id, wallet, seed, initial_model) for seed, wallet in enumerate(wallets, 1)]

    def entry(wallet: LocalAccount, step: ProvenStep, values: list[int] | None = None,
              proof: bytes | None = None) -> SignedUpdate:
        values = list(step.proof.instances) if values is None else values
        proof = step.proof.proof_bytes if proof is None else proof
        signature = federation.sign_submission(wallet, task_id, 0, step.proof.update_commitment, step.proof.update,
                                               values, proof)
        return SignedUpdate(wallet.address, step.proof.update_commitment, step.proof.update, proof, values, signature)

    def in_address_order(*items: SignedUpdate) -> list[SignedUpdate]:
        return sorted(items, key=lambda u: int(u.participant, 16))

    first = federation.submit_updates(accounts[1], task_id, 0, in_address_order(entry(wallets[0], steps[0]),
                                                                               entry(wallets[1], steps[1])))
    assert first.together and all(r.accepted for r in first.results.values()), first
    features_changed = list(steps[3].proof.instances)
    features_changed[1] = (features_changed[1] + 1) % FIELD_MODULUS
    mixed = federation.submit_updates(accounts[1], task_id, 0, in_address_order(
        entry(wallets[2], steps[2]), entry(wallets[3], steps[3], features_changed),
        entry(wallets[4], steps[4], proof=off_curve_proof(steps[4].proof.proof_bytes))))
    assert not mixed.together
    assert mixed.results[wallets[2].address.lower()].accepted
    for cheat in wallets[3:]:  # failing the pairing only, and a point off the curve: rejected, not reverted
        assert mixed.results[cheat.address.lower()].reason == Reason.INVALID_PROOF
        assert federation.participant(task_id, cheat.address).slashed
    assert not any(federation.participant(task_id, w.address).slashed for w in wallets[:3])
    print(f"two ezkl updates verified together: {first.gas_per_update} gas each")


def test_an_oversized_proof_is_rejected_and_slashed_not_reverted_as_starved(federation, accounts,  # type: ignore[no-untyped-def]
                                                                            verifier_address, initial_model) -> None:
    """A cheat pads an invalid proof to 550 KB. Copying it costs memory gas: had the verifier copied
    it before checking its length (to re-encode it for ezkl's checks), the copy alone would exhaust
    the task's verifyGas, the call would read as starved and revert, and the cheat would go
    unrecorded and unslashed, free to try again (the outside review's finding). The Federation,
    too, encodes the call before it measures the verifier's gas."""
    cheat = accounts[7]
    task_id = new_task(federation, accounts, verifier_address, initial_model, (cheat,), verify_gas=600_000)
    update = [0] * 31
    commitment = commit(np.array(update, dtype=np.int64))
    values = [federation.round(task_id, 0).global_commitment, 1, 2, federation.binding_of(task_id, cheat.address),
              commitment, INPUTS_VALID]
    proof = bytes(550_000)
    signature = federation.sign_submission(cheat, task_id, 0, commitment, update, values, proof)
    result = federation.submit_update(accounts[1], task_id, 0, cheat.address, commitment, update, proof, values,
                                      signature, gas=15_000_000)
    assert not result.accepted and result.reason == Reason.INVALID_PROOF
    assert federation.participant(task_id, cheat.address).slashed


@pytest.mark.slow
def test_a_relayer_cannot_starve_the_verifier_to_slash_an_honest_client(federation, accounts, initial_model,  # type: ignore[no-untyped-def]
                                                                          prover) -> None:
    """A verifier far costlier than the contract's own bookkeeping: with too little gas the
    verifier call starves while the outer call could still record a slash. It must revert."""
    from pathlib import Path

    from zkfl.contracts.federation import deploy
    from zkfl.contracts.verifiers import adapter_contract

    hungry = compile_contract(Path(__file__).parent / "contracts" / "TestContracts.sol", "GasHungryVerifier")
    direct, _ = deploy(federation.w3, accounts[0], hungry, 8_000_000)
    reusable, _ = deploy(federation.w3, accounts[0], hungry, 8_000_000)
    adapter, _ = deploy(federation.w3, accounts[0], adapter_contract(), reusable, [b"\x01" * 32])
    honest, thief, relayer = accounts[2], accounts[3], accounts[1]
    for verifier in (direct, adapter):
        # The task gives its verifier more than it burns: only the relayer's gas limit could starve it.
        task_id = new_task(federation, accounts, verifier, initial_model, (honest, thief), verify_gas=9_000_000)
        step = prover.step(federation, task_id, honest, 1, initial_model)
        args = signed(federation, honest, task_id, 0, step)
        call = federation.submit_call(*args)
        with pytest.raises(ContractCustomError) as refused:
            call.call({"from": relayer.address, "gas": 7_000_000})
        assert decode_revert(call, refused.value) == "VerifierOutOfGas"
        with pytest.raises(ChainError, match="reverted"):
            federation.submit_update(relayer, *args, gas=7_000_000)  # verifier starves; bookkeeping would fit
        assert federation.submission_status(task_id, 0, honest.address) == (Status.NONE, Reason.NONE)
        assert not federation.participant(task_id, honest.address).slashed
        # Control: the same gas records a rejection and a slash (here a copied proof's).
        copied = federation.submit_update(relayer, *signed(federation, thief, task_id, 0, step), gas=7_000_000)
        assert copied.reason == Reason.BINDING_MISMATCH and federation.participant(task_id, thief.address).slashed
        assert federation.submit_update(relayer, *args, gas=12_000_000).accepted


# ---------------------------------------------------------------- binding: a proof counts only where it was made


def test_the_contract_derives_each_binding(federation, accounts, verifier_address, initial_model,  # type: ignore[no-untyped-def]
                                           second_federation, other_chain) -> None:
    """Nobody chooses a binding: join takes none, and the contract's H(b) is the one the
    SDK computes for (chain id, Federation, task, wallet), different if any of them differs."""
    [join] = [f for f in federation.contract.abi if f.get("type") == "function" and f["name"] == "join"]
    assert [i["name"] for i in join["inputs"]] == ["taskId", "stake"]
    wallet = accounts[8]
    chain_id = federation.w3.eth.chain_id
    task_id = new_task(federation, accounts, verifier_address, initial_model, (wallet,))
    expected = binding_value(chain_id, federation.address, task_id, wallet.address)
    chunks = federation.contract.functions.bindingChunks(task_id, wallet.address).call()
    assert [int(c) for c in chunks] == [int(c) for c in expected]
    stored = federation.participant(task_id, wallet.address).binding
    assert stored == federation.binding_of(task_id, wallet.address) == binding_commitment(expected)
    # Vary one part of the context at a time.
    other_chain_binding = int(other_chain.federation.contract.functions.bindingOf(task_id, wallet.address).call())
    variants = {
        "task": federation.binding_of(task_id + 1, wallet.address),
        "wallet": federation.binding_of(task_id, accounts[9].address),
        "deployment": second_federation.binding_of(task_id, wallet.address),
        "chain": other_chain_binding,
    }
    assert other_chain.federation.address == federation.address
    assert variants["chain"] == binding_commitment(
        binding_value(other_chain.federation.w3.eth.chain_id, federation.address, task_id, wallet.address))
    assert len({stored, *variants.values()}) == 5, variants


def copied_submission(federation: Federation, tx_hash: str) -> dict:  # type: ignore[type-arg]
    """What an outsider reads off P's submitUpdate transaction."""
    fn, args = federation.contract.decode_function_input(federation.w3.eth.get_transaction(tx_hash)["input"])
    assert fn.fn_name == "submitUpdate"
    return args


@pytest.mark.parametrize("where", ["another task", "another deployment", "another chain", "another wallet"])
def test_a_copied_proof_is_rejected_everywhere_else(where, federation, accounts, verifier_address, initial_model,  # type: ignore[no-untyped-def]
                                                     artifacts, p_accepted, second_federation, request) -> None:
    """P's accepted proof, public values and update, copied off P's transaction and signed by
    a thief: in a task of the same Federation with the same initial model, in the task with
    P's task id on another deployment, in the task with P's task id on the same Federation
    address on another chain, and from another wallet in P's own task. Every other check
    would pass (same round-0 model, the proof verifies there): only the binding stops it."""
    thief = accounts[7]
    if where == "another task":
        target = Target(federation, new_task(federation, accounts, verifier_address, initial_model),
                        verifier_address)
    elif where == "another deployment":
        target = Target(second_federation, task_numbered(second_federation, accounts, verifier_address,
                                                         initial_model, p_accepted.task_id), verifier_address)
    elif where == "another chain":
        chain = request.getfixturevalue("other_chain")
        target = Target(chain.federation, task_numbered(chain.federation, accounts, chain.verifier, initial_model,
                                                        p_accepted.task_id), chain.verifier)
    else:
        target = Target(federation, p_accepted.task_id, verifier_address)
    fed, task_id = target.federation, target.task_id
    fed.join(thief, task_id, STAKE)
    copied = copied_submission(federation, p_accepted.tx_hash)
    values, proof = list(copied["publicValues"]), bytes(copied["proof"])
    update = decode_update(bytes(copied["update"]))
    assert values[0] == fed.round(task_id, 0).global_commitment  # the same round-0 model
    assert verifies_on_chain(step_verifier(fed.w3, artifacts, target.verifier), proof, values)
    assert values[3] == federation.participant(p_accepted.task_id, p_accepted.wallet.address).binding
    assert values[3] != fed.participant(task_id, thief.address).binding
    pool = fed.task(task_id).slashed_pool
    signature = fed.sign_submission(thief, task_id, 0, copied["updateCommitment"], update, values, proof)
    result = fed.submit_update(thief, task_id, 0, thief.address, copied["updateCommitment"], update, proof, values,
                               signature)
    assert not result.accepted and result.reason == Reason.BINDING_MISMATCH
    assert fed.participant(task_id, thief.address).slashed
    assert fed.task(task_id).slashed_pool == pool + STAKE
    assert fed.participant(task_id, thief.address).verified_samples == 0
    # P is untouched.
    p = federation.participant(p_accepted.task_id, p_accepted.wallet.address)
    assert not p.slashed and p.stake == STAKE and p.verified_samples == 16
    assert federation.submission_status(p_accepted.task_id, 0, p_accepted.wallet.address) == (Status.ACCEPTED,
                                                                                              Reason.NONE)


@pytest.mark.slow
def test_proofs_from_an_earlier_round_are_stale(federation, accounts, verifier_address, initial_model, prover,  # type: ignore[no-untyped-def]
                                                aggregation) -> None:
    """P replays its own accepted round-0 proof in round 1, and Q sends a round-1 update proven
    from the round-0 model: both start from a model that is no longer the global one."""
    p, q = accounts[2], accounts[3]
    task_id = new_task(federation, accounts, verifier_address, initial_model, (p, q))
    p_step = prover.step(federation, task_id, p, 1, initial_model)
    q_step = prover.step(federation, task_id, q, 2, initial_model)
    assert submit_step(federation, accounts[1], p, task_id, 0, p_step).accepted
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    assert federation.task(task_id).current_round == 1
    assert federation.round(task_id, 1).global_commitment != p_step.proof.global_commitment
    for wallet, step in ((p, p_step), (q, q_step)):
        result = submit_step(federation, accounts[1], wallet, task_id, 1, step)
        assert not result.accepted and result.reason == Reason.STALE_GLOBAL_MODEL
        assert federation.participant(task_id, wallet.address).slashed
    # Each wallet's slot holds its round-1 decision now; round 0's is read from the events.
    assert federation.submission_status(task_id, 0, p.address) == (Status.ACCEPTED, Reason.NONE)
    assert federation.submission_status(task_id, 0, q.address) == (Status.NONE, Reason.NONE)


# ---------------------------------------------------------------- bounded inputs


def batch(quantizer, seed: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    return quantizer.to_int(rng.uniform(-3, 3, (16, 30))), quantizer.to_int(rng.integers(0, 2, 16))


def out_of_bounds_batch(case: str, quantizer) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    one = 1 << quantizer.scale
    x, y = batch(quantizer, 40)
    alternate = np.arange(16) % 2 == 0
    if case == "labels 2 and -1":
        y = np.where(alternate, 2 * one, -one)
    elif case == "labels 16000.5 and -15999.5, x0 = 4":  # |label| past the quantizer's range: built as integers
        x[:, 0] = 4 * one
        y = np.where(alternate, int(16000.5 * one), int(-15999.5 * one))
    elif case == "a feature of 1000":
        x[0, 0] = 1000 * one
    elif case == "a feature of 4 + 2^-12":
        x[0, 0] = 4 * one + 1
    elif case == "a feature of exactly 4":
        x[0, 0] = -4 * one
        x[1, 0] = 4 * one
    return x.astype(np.int64), y.astype(np.int64)


@pytest.fixture(scope="module")
def bounds_task(federation, accounts, verifier_address, initial_model) -> int:  # type: ignore[no-untyped-def]
    return new_task(federation, accounts, verifier_address, initial_model)


BOUNDS_CASES = [  # (case, its wallet, what happens)
    ("labels 2 and -1", 2, "rejected"),
    ("labels 16000.5 and -15999.5, x0 = 4", 3, "unprovable"),
    ("a feature of 1000", 4, "rejected"),
    ("a feature of 4 + 2^-12", 5, "rejected"),
    ("a feature of exactly 4", 6, "accepted"),  # the control at the bound
]


@pytest.mark.slow
@pytest.mark.parametrize(("case", "wallet_index", "outcome"), BOUNDS_CASES, ids=[c[0] for c in BOUNDS_CASES])
def test_inputs_outside_the_bounds_never_count(case, wallet_index, outcome, federation, accounts, bounds_task,  # type: ignore[no-untyped-def]
                                                artifacts, quantizer, initial_model, verifier_address) -> None:
    """Labels other than 0/1 and features past the task's bound (4.0) either cannot be proven
    or are proven with a non-zero input check, which the contract rejects and slashes."""
    assert artifacts.spec.feature_bound == 4.0 and artifacts.spec.scale == 12
    wallet = accounts[wallet_index]
    federation.join(wallet, bounds_task, STAKE)
    x, y = out_of_bounds_batch(case, quantizer)
    binding = binding_value(federation.w3.eth.chain_id, federation.address, bounds_task, wallet.address)
    if outcome == "unprovable":
        # The SDK's quantizer cannot even encode such labels; built by hand, they still cannot be proven.
        with pytest.raises(ZkflError, match="out of fixed-point range"):
            quantizer.to_int(quantizer.to_float(y))
        # Witness generation itself fails (the check's range decomposition cannot hold them).
        with pytest.raises(ProofError, match="witness cannot be generated"):
            prove_step(artifacts, initial_model, x, y, binding)
        return
    step = ProvenStep(initial_model, x, y, binding, prove_step(artifacts, initial_model, x, y, binding))
    assert step.proof.inputs_valid == (outcome == "accepted")
    # The proof itself is valid: what decides is the circuit's verdict on its inputs.
    assert verifies_on_chain(step_verifier(federation.w3, artifacts, verifier_address), step.proof.proof_bytes,
                             step.proof.instances)
    pool = federation.task(bounds_task).slashed_pool
    result = submit_step(federation, accounts[1], wallet, bounds_task, 0, step)
    if outcome == "accepted":
        assert result.accepted and result.reason == Reason.NONE
        return
    assert not result.accepted and result.reason == Reason.INPUTS_OUT_OF_BOUNDS
    assert federation.participant(bounds_task, wallet.address).slashed
    assert federation.task(bounds_task).slashed_pool == pool + STAKE
    assert step.proof.update_commitment not in federation.accepted_updates(bounds_task, 0)


def test_inputs_valid_is_the_commitment_to_zero(federation) -> None:  # type: ignore[no-untyped-def]
    on_chain = int(federation.contract.functions.INPUTS_VALID().call())
    assert on_chain == poseidon_commit([0]) == INPUTS_VALID == commit(np.array([0]))
    assert on_chain != poseidon_commit([1])


# ---------------------------------------------------------------- withholding and the collection window


@pytest.mark.slow
def test_a_withheld_update_is_challenged_and_the_round_goes_on(federation, accounts, verifier_address, initial_model,  # type: ignore[no-untyped-def]
                                                               prover, aggregation) -> None:
    """W submits directly with a valid proof and its true commitment, but publishes values
    that are not the proof's output. It is accepted, and nobody can aggregate it; anyone's
    challenge with the published bytes removes it, slashes W, and the round publishes."""
    honest, withholder, outsider = accounts[2], accounts[3], accounts[9]
    task_id = next_task_id(federation)
    honest_step = prover.step(federation, task_id, honest, 1, initial_model)
    step = prover.step(federation, task_id, withholder, 2, initial_model)
    prepare_publish(aggregation, [honest_step])
    new_task(federation, accounts, verifier_address, initial_model, (honest, withholder), expect_id=task_id,
             collection_window=WINDOW)
    assert submit_step(federation, accounts[1], honest, task_id, 0, honest_step).accepted
    true_values, commitment = list(step.proof.update), step.proof.update_commitment
    bogus = [0] * len(true_values)
    result = federation.submit_update(withholder, *signed(federation, withholder, task_id, 0, step, update=bogus,
                                                          commitment=commitment))
    assert result.accepted
    assert federation.accepted_updates(task_id, 0) == [honest_step.proof.update_commitment, commitment]
    published = federation.published_updates(task_id, 0)
    assert published[withholder.address.lower()] == bogus and commit(np.array(bogus)) != commitment
    # The aggregator cannot leave it out: a FedAvg of the other accepted update is refused.
    others = [honest_step.proof.update]
    model = fedavg(others, [16], aggregation.update_scale, aggregation.artifacts.spec.scale)
    without = aggregation.prove(others, [16], model)
    with pytest.raises(ChainError, match="inputs are not the round's accepted updates"):
        federation.publish_global_model(accounts[1], task_id, 0, commit(np.array(model)), STAND_IN_CID, STAND_IN_CID,
                                        without.proof_bytes, without.instances)
    # Challenges that show nothing revert and slash nobody.
    with pytest.raises(ChainError, match="the published values are the proof's output"):
        federation.challenge_update(outsider, task_id, 0, honest.address, honest_step.proof.update)
    with pytest.raises(ChainError, match="these are not the published values"):
        federation.challenge_update(outsider, task_id, 0, withholder.address, true_values)
    with pytest.raises(ChainError, match="these are not the published values"):
        federation.challenge_update(outsider, task_id, 0, withholder.address, [1] + bogus[1:])
    assert federation.round(task_id, 0).accepted == 2
    assert not any(federation.participant(task_id, w.address).slashed for w in (honest, withholder))
    # The challenge with the published bytes.
    federation.challenge_update(outsider, task_id, 0, withholder.address, bogus)
    assert federation.submission_status(task_id, 0, withholder.address) == (Status.REJECTED,
                                                                            Reason.UPDATE_UNAVAILABLE)
    state = federation.participant(task_id, withholder.address)
    assert state.slashed and state.stake == 0 and state.verified_samples == 0 and state.accepted_updates == 0
    task = federation.task(task_id)
    assert task.slashed_pool == STAKE and task.contributors == 1 and task.verified_samples == 16
    assert federation.accepted_updates(task_id, 0) == [honest_step.proof.update_commitment]
    assert (federation.round(task_id, 0).accepted, federation.round(task_id, 0).rejected) == (1, 1)
    with pytest.raises(ChainError, match="no accepted update to challenge"):
        federation.challenge_update(outsider, task_id, 0, withholder.address, bogus)
    # Every active participant is now accepted: the round publishes at once (within its
    # collection window), without W.
    federation.publish_global_model(accounts[1], task_id, 0, commit(np.array(model)), STAND_IN_CID, STAND_IN_CID,
                                    without.proof_bytes, without.instances)
    assert chain_now(federation.w3) < federation.round(task_id, 0).opened_at + WINDOW
    assert federation.task(task_id).current_round == 1
    assert federation.round(task_id, 1).global_commitment == commit(np.array(model))


@pytest.mark.slow
def test_the_aggregator_waits_out_the_collection_window(federation, accounts, verifier_address, initial_model,  # type: ignore[no-untyped-def]
                                                        prover, aggregation) -> None:
    """With an active participant not yet accepted the round stays open for its window (that
    a round where every active participant is accepted closes at once is shown by the
    withholding test above)."""
    early, late = accounts[2], accounts[3]
    task_id = next_task_id(federation)
    step = prover.step(federation, task_id, early, 1, initial_model)
    prepare_publish(aggregation, [step])
    new_task(federation, accounts, verifier_address, initial_model, (early, late), expect_id=task_id,
             collection_window=WINDOW)
    assert federation.task(task_id).collection_window == WINDOW
    assert submit_step(federation, accounts[1], early, task_id, 0, step).accepted
    with pytest.raises(ChainError, match="round is still collecting submissions"):
        publish_aggregate(federation, aggregation, accounts[1], task_id, 0, wait=False)
    opened = federation.round(task_id, 0).opened_at
    advance_chain_time(federation.w3, max(0, opened + WINDOW - 30 - chain_now(federation.w3)))
    with pytest.raises(ChainError, match="round is still collecting submissions"):  # 30 s before the end
        publish_aggregate(federation, aggregation, accounts[1], task_id, 0, wait=False)
    advance_chain_time(federation.w3, opened + WINDOW - chain_now(federation.w3))
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0, wait=False)
    assert federation.task(task_id).current_round == 1
    assert federation.round(task_id, 0).accepted == 1  # published without the late participant


# ---------------------------------------------------------------- known contract bugs (reproducers)


def accepted_with_published(federation: Federation, accounts: list[LocalAccount], initial_model: np.ndarray,
                            published: list[int], claimed: int | None = None) -> tuple[int, LocalAccount]:
    """A participant accepted with a claimed commitment and these published values, on a task
    whose verifier accepts any proof (the bug is in the contract's own bookkeeping, not in
    what the proof shows; a real proof behaves the same, see the withholding test)."""
    wallet = accounts[8]
    task_id = permissive_task(federation, accounts, initial_model, (wallet,))
    claimed = commit(np.ones(len(initial_model), dtype=np.int64)) if claimed is None else claimed
    assert federation.submit_update(wallet, *permissive_submission(federation, task_id, wallet, published,
                                                                   claimed)).accepted
    return task_id, wallet


def test_an_update_holding_int64_min_can_be_challenged(federation, accounts, initial_model,  # type: ignore[no-untyped-def]
                                                       verifier_address) -> None:
    published = [-(2**63)] + [0] * (len(initial_model) - 1)
    task_id, wallet = accepted_with_published(federation, accounts, initial_model, published)
    federation.challenge_update(accounts[9], task_id, 0, wallet.address, published)
    assert federation.submission_status(task_id, 0, wallet.address) == (Status.REJECTED, Reason.UPDATE_UNAVAILABLE)


def test_an_update_of_another_length_is_refused_and_every_update_can_be_challenged(  # type: ignore[no-untyped-def]
        federation, accounts, initial_model, verifier_address) -> None:
    """The task fixes how many values an update has (its model's parameters, at most 12,000, so
    that the bytes fit a transaction), so no update of another size gets in; and a full-size
    update is challenged well inside a block."""
    with pytest.raises(ChainError, match="update must be the model's int64 values"):
        accepted_with_published(federation, accounts, initial_model, [1] * 5_000)
    with pytest.raises(ChainError, match="an update has 1 to 12000 values"):
        federation.create_task(accounts[0], task_params(accounts[1].address, verifier_address, initial_model,
                                                        aggregation_verifier=aggregation_verifier_for(federation),
                                                        update_values=12_001), REWARD)
    published = [7] * len(initial_model)
    task_id, wallet = accepted_with_published(federation, accounts, initial_model, published)
    tx = federation.challenge_update(accounts[9], task_id, 0, wallet.address, published)
    assert federation.submission_status(task_id, 0, wallet.address) == (Status.REJECTED, Reason.UPDATE_UNAVAILABLE)
    assert int(federation.w3.eth.get_transaction_receipt(tx)["gasUsed"]) < 31 * 9_000 + 200_000


def permissive_task(federation: Federation, accounts: list[LocalAccount], initial: np.ndarray,
                    joiners: tuple[LocalAccount, ...], **kw: object) -> int:
    """A task whose verifier accepts any proof (``GasHungryVerifier`` burning nothing): what the
    contract's own bookkeeping does is all that is tested."""
    compiled = compile_contract(Path(__file__).parent / "contracts" / "TestContracts.sol", "GasHungryVerifier")
    verifier, _ = deploy(federation.w3, accounts[0], compiled, 0)
    return new_task(federation, accounts, verifier, initial, joiners, **kw)


def permissive_submission(federation: Federation, task_id: int, wallet: LocalAccount, published: list[int],
                          claimed: int, round_: int = 0) -> tuple:  # type: ignore[type-arg]
    """A signed submission for a task whose verifier accepts any proof: what the contract's own
    bookkeeping does is all that is tested."""
    values = [federation.round(task_id, round_).global_commitment, 1, 2,
              federation.binding_of(task_id, wallet.address), claimed, INPUTS_VALID]
    proof = b"\x01" * 32
    signature = federation.sign_submission(wallet, task_id, round_, claimed, published, values, proof)
    return task_id, round_, wallet.address, claimed, published, proof, values, signature


def test_a_challenge_is_spread_over_several_calls(federation, accounts, initial_model) -> None:  # type: ignore[no-untyped-def]
    """EIP-7825 caps a transaction at 2^24 gas, about 2,000 hashed values: a challenge hashes at
    most `count` values a call and keeps the sponge on chain between calls. Until the last call
    nothing is decided; the last one rejects a mismatch, and reverts (slashing nobody) on a match."""
    published = [(-1) ** i * (i + 5) for i in range(len(initial_model))]
    task_id, wallet = accepted_with_published(federation, accounts, initial_model, published)
    challenger = accounts[9]
    sent = federation.w3.eth.get_transaction_count(challenger.address)
    federation.challenge_update(challenger, task_id, 0, wallet.address, published, per_call=10)
    assert federation.w3.eth.get_transaction_count(challenger.address) - sent == 4  # 31 values, 10 a call
    assert federation.submission_status(task_id, 0, wallet.address) == (Status.REJECTED, Reason.UPDATE_UNAVAILABLE)
    # The same over several calls for an update that is its commitment's: the last call reverts.
    honest = [3] * len(initial_model)
    task_id, wallet = accepted_with_published(federation, accounts, initial_model, honest,
                                              claimed=commit(np.array(honest, dtype=np.int64)))
    with pytest.raises(ChainError, match="the published values are the proof's output"):
        federation.challenge_update(accounts[9], task_id, 0, wallet.address, honest, per_call=10)
    assert federation.submission_status(task_id, 0, wallet.address)[0] == Status.ACCEPTED
    assert not federation.participant(task_id, wallet.address).slashed


def test_a_challenge_mined_after_another_acceptance_is_sent_again(federation, accounts,  # type: ignore[no-untyped-def]
                                                                    initial_model, verifier_address) -> None:
    """The call that completes a challenge names the accepted set as it stands when it is built. An
    acceptance mined first in the same block makes that set stale and the challenge reverts, changing
    nothing; the SDK builds it again on a fresh read instead of failing (an aggregator used to die here)."""
    from threading import Thread

    cheat, late, challenger = accounts[7], accounts[8], accounts[9]
    task_id = permissive_task(federation, accounts, initial_model, (cheat, late))
    bogus = [7] * len(initial_model)
    assert federation.submit_update(cheat, *permissive_submission(
        federation, task_id, cheat, bogus, commit(np.ones(len(initial_model), dtype=np.int64)))).accepted
    honest = [3] * len(initial_model)
    late_call = federation.submit_call(*permissive_submission(
        federation, task_id, late, honest, commit(np.array(honest, dtype=np.int64))))
    late_gas = int(late_call.estimate_gas({"from": late.address}) * 1.2) + 20_000
    w3, sent = federation.w3, federation.w3.eth.get_transaction_count(challenger.address)
    failures: list[BaseException] = []

    def challenge() -> None:
        try:
            federation.challenge_update(challenger, task_id, 0, cheat.address, bogus)
        except BaseException as exc:
            failures.append(exc)

    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        thread = Thread(target=challenge)
        thread.start()
        while w3.eth.get_transaction_count(challenger.address, "pending") == sent:  # the challenge waits unmined
            thread.join(0.05)
        # The late acceptance pays more, so it is mined first, ahead of the challenge, in one block.
        tip = {"from": late.address, "nonce": w3.eth.get_transaction_count(late.address, "pending"),
               "maxPriorityFeePerGas": 100 * 10**9, "maxFeePerGas": 300 * 10**9, "gas": late_gas}
        w3.eth.send_raw_transaction(late.sign_transaction(late_call.build_transaction(tip)).raw_transaction)
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    thread.join(120)
    assert not failures, failures
    assert w3.eth.get_transaction_count(challenger.address) - sent == 2  # one reverted, one that took
    assert federation.submission_status(task_id, 0, cheat.address) == (Status.REJECTED, Reason.UPDATE_UNAVAILABLE)
    assert federation.submission_status(task_id, 0, late.address)[0] == Status.ACCEPTED
    assert federation.accepted_updates(task_id, 0) == [commit(np.array(honest, dtype=np.int64))]


@pytest.mark.slow
def test_a_wallet_s_latest_decision_is_what_a_challenge_reads_and_earlier_ones_stay_readable(  # type: ignore[no-untyped-def]
        federation, accounts, initial_model, aggregation) -> None:
    """The chain keeps one decision a wallet (its latest, with its seal) instead of a slot a round.
    A challenge in round 1 reads round 1's decision only: a wallet whose latest decision is round 0's
    has nothing to challenge there, and round 0's values and commitment are not round 1's seal. Round
    0's decisions are still read, from their events, after round 1 overwrote the slot, as is a
    round a wallet skipped before deciding a later one."""
    p, q, late, challenger = accounts[7], accounts[8], accounts[6], accounts[9]
    task_id = permissive_task(federation, accounts, initial_model, (p, q, late))
    first = [3] * len(initial_model)
    honest = commit(np.array(first, dtype=np.int64))
    KNOWN_UPDATES[honest] = first
    for wallet in (p, q):
        submission = permissive_submission(federation, task_id, wallet, first, honest)
        assert federation.submit_update(wallet, *submission).accepted
    publish_aggregate(federation, aggregation, accounts[1], task_id, 0)
    bogus = [7] * len(initial_model)
    assert federation.submit_update(p, *permissive_submission(
        federation, task_id, p, bogus, commit(np.ones(len(initial_model), dtype=np.int64)), round_=1)).accepted
    with pytest.raises(ChainError, match="already submitted this round"):
        federation.submit_update(p, *permissive_submission(federation, task_id, p, first, honest, round_=1))
    assert federation.submit_update(late, *permissive_submission(federation, task_id, late, first, honest,
                                                                 round_=1)).accepted  # its first, in round 1
    accepted = federation.accepted_updates(task_id, 1)
    for wallet, values, commitment, why in (
            (q, first, honest, "no accepted update to challenge"),  # q's latest decision is round 0's
            (p, first, honest, "these are not the published values and commitment")):  # round 0's seal is gone
        call = federation.contract.functions.challengeUpdate(task_id, 1, wallet.address, encode_update(values),
                                                             commitment, len(values), accepted)
        assert why in refusal(call, challenger.address)
    with pytest.raises(ChainError, match="round is not open"):
        federation.challenge_update(challenger, task_id, 0, q.address, bogus)
    federation.challenge_update(challenger, task_id, 1, p.address, bogus)
    assert federation.submission_status(task_id, 1, p.address) == (Status.REJECTED, Reason.UPDATE_UNAVAILABLE)
    assert federation.participant(task_id, p.address).slashed and not federation.participant(task_id, q.address).slashed
    for wallet in (p, q):  # round 0 as decided, read from the events now that the slot holds round 1 (or nothing)
        assert federation.submission_status(task_id, 0, wallet.address) == (Status.ACCEPTED, Reason.NONE)
    assert federation.submission_status(task_id, 1, q.address) == (Status.NONE, Reason.NONE)
    assert federation.submission_status(task_id, 0, late.address) == (Status.NONE, Reason.NONE)
    earlier = federation.submission(task_id, 0, p.address)  # its seal rebuilt from the events
    assert earlier.update_commitment == honest and earlier.seals(honest, first) and not earlier.seals(honest, bogus)


def refusal(call, sender: str) -> str:  # type: ignore[no-untyped-def]
    """Why the contract refuses ``call`` from ``sender`` (it must refuse)."""
    from web3.exceptions import ContractLogicError

    with pytest.raises((ContractLogicError, ContractCustomError)) as refused:
        call.call({"from": sender})
    return decode_revert(call, refused.value)


def test_a_challenge_takes_out_exactly_its_update_from_the_accepted_set_as_it_stands(  # type: ignore[no-untyped-def]
        federation, accounts, initial_model, verifier_address) -> None:
    """The contract keeps a round's accepted set as one hash chain, and a challenge names the set:
    a set with one left out, one added, two swapped or from before the last acceptance is refused,
    as is the challenged update under another commitment; the one that is right takes out only
    the challenged update, and the others keep their slots in order."""
    first, cheat, last, challenger = accounts[5], accounts[6], accounts[7], accounts[9]
    task_id = permissive_task(federation, accounts, initial_model, (first, cheat, last))
    honest = [3] * len(initial_model)
    good = commit(np.array(honest, dtype=np.int64))
    bogus, claimed = [0] * len(initial_model), commit(np.ones(len(initial_model), dtype=np.int64))
    submit = federation.submit_update
    assert submit(accounts[1], *permissive_submission(federation, task_id, first, honest, good)).accepted
    assert federation.submit_update(accounts[1], *permissive_submission(federation, task_id, cheat, bogus,
                                                                        claimed)).accepted
    before_last = federation.accepted_updates(task_id, 0)
    assert submit(accounts[1], *permissive_submission(federation, task_id, last, honest, good)).accepted
    accepted = federation.accepted_updates(task_id, 0)
    assert accepted == [good, claimed, good] and before_last == [good, claimed]
    data = encode_update(bogus)

    def challenge(commitment: int, named: list[int]):  # type: ignore[no-untyped-def]
        return federation.contract.functions.challengeUpdate(task_id, 0, cheat.address, data, commitment, 100, named)

    for named in (before_last, [good, claimed], [claimed, good, good], [good, claimed, good, good], []):
        assert "not the round's accepted set as it stands" in refusal(challenge(claimed, named), challenger.address)
    assert "not the published values and commitment" in refusal(challenge(good, accepted), challenger.address)
    # An honest update cannot be taken out, with any set.
    honest_call = federation.contract.functions.challengeUpdate(task_id, 0, first.address, encode_update(honest), good,
                                                                100, accepted)
    assert "the published values are the proof's output" in refusal(honest_call, challenger.address)
    send(federation.w3, challenger, challenge(claimed, accepted))
    assert federation.accepted_updates(task_id, 0) == [good, good]
    assert federation.submission_status(task_id, 0, cheat.address) == (Status.REJECTED, Reason.UPDATE_UNAVAILABLE)
    assert [federation.participant(task_id, w.address).slashed for w in (first, cheat, last)] == [False, True, False]


def test_a_challenge_between_two_equal_commitments_leaves_the_set_readable(  # type: ignore[no-untyped-def]
        federation, accounts, initial_model, verifier_address) -> None:
    """Two wallets may be accepted with one commitment, one of them publishing other values. The
    contract takes out the first entry equal to the challenged commitment, whoever's it is; the
    set read back from the events must be the contract's (else every reader of the round, the
    aggregator's publication first, fails on the digest and the round is frozen)."""
    twin, other, cheat = accounts[5], accounts[6], accounts[7]
    task_id = permissive_task(federation, accounts, initial_model, (twin, other, cheat))
    values, others = [3] * len(initial_model), [4] * len(initial_model)
    same, different = commit(np.array(values, dtype=np.int64)), commit(np.array(others, dtype=np.int64))
    for wallet, published, claimed in ((twin, values, same), (other, others, different),
                                       (cheat, [0] * len(values), same)):
        assert federation.submit_update(accounts[1], *permissive_submission(federation, task_id, wallet, published,
                                                                            claimed)).accepted
    assert federation.accepted_updates(task_id, 0) == [same, different, same]
    federation.challenge_update(accounts[9], task_id, 0, cheat.address, [0] * len(values))
    assert federation.accepted_updates(task_id, 0) == [different, same]  # the contract's order, checked on chain
    assert [federation.participant(task_id, w.address).slashed for w in (twin, other, cheat)] == [False, False, True]


def test_the_extension_runs_only_on_the_federation_s_storage(federation, accounts, initial_model,  # type: ignore[no-untyped-def]
                                                            verifier_address) -> None:
    """The Federation's cold paths run by DELEGATECALL on its storage; called directly, the
    extension acts on its own empty storage, and the Federation is untouched."""
    from zkfl.contracts.solc import federation_extension_contract

    extension = federation.w3.eth.contract(address=federation.contract.functions.extension().call(),
                                           abi=federation_extension_contract().abi)
    assert extension.functions.poseidon().call() == federation.contract.functions.poseidon().call()
    task_id = new_task(federation, accounts, verifier_address, initial_model, (accounts[2],))
    tasks, balance = federation.task_count(), federation.w3.eth.get_balance(federation.address)
    assert "UnknownTask" in refusal(extension.functions.settle(task_id), accounts[0].address)
    # The task's organisation holds no role there either.
    assert "AccessControlUnauthorizedAccount" in refusal(extension.functions.cancel(task_id), accounts[0].address)
    assert federation.task_count() == tasks and not federation.task(task_id).settled
    assert federation.w3.eth.get_balance(federation.address) == balance


def test_a_full_round_still_waits_out_its_window(federation, accounts, initial_model) -> None:  # type: ignore[no-untyped-def]
    """The aggregator cannot fill the slots with its own update and publish at once: a full round
    waits out the window unless every participant was accepted, and nobody is slashed for
    finding it full. After the window, a round that still has room takes late updates."""
    permissive = compile_contract(Path(__file__).parent / "contracts" / "TestContracts.sol", "GasHungryVerifier")
    verifier, _ = deploy(federation.w3, accounts[0], permissive, 0)
    sybil, honest, late = accounts[7], accounts[8], accounts[9]
    task_id = new_task(federation, accounts, verifier, initial_model, (sybil, honest, late), slots=1,
                       collection_window=120)
    update = [1] * len(initial_model)
    claimed = commit(np.array(update, dtype=np.int64))
    assert federation.submit_update(accounts[1], *permissive_submission(federation, task_id, sybil, update,
                                                                        claimed)).accepted
    with pytest.raises(ChainError, match="round is full"):
        federation.submit_update(accounts[1], *permissive_submission(federation, task_id, honest, update, claimed))
    with pytest.raises(ChainError, match="still collecting"):
        federation.publish_global_model(accounts[1], task_id, 0, 1, STAND_IN_CID, STAND_IN_CID, b"", [0] * 12)
    assert not federation.participant(task_id, honest.address).slashed
    task_id = new_task(federation, accounts, verifier, initial_model, (sybil, late), collection_window=10)
    assert federation.submit_update(accounts[1], *permissive_submission(federation, task_id, sybil, update,
                                                                        claimed)).accepted
    advance_chain_time(federation.w3, 11)
    assert federation.submit_update(accounts[1], *permissive_submission(federation, task_id, late, update,
                                                                        claimed)).accepted
    assert federation.accepted_updates(task_id, 0) == [claimed, claimed]
