"""No framing by settings: what the SDK checks before it joins and before it signs, on the
real anvil, ezkl and contracts. An honest participant is never slashed for a task's
settings, for a pinned-data task, or for a submission the contract would reject."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import post_logreg_task
from zkfl.aggregator.fedavg import fedavg
from zkfl.aggregator.service import Aggregator
from zkfl.artifacts import ModelArtifact, TaskPackage
from zkfl.audit import Check, audit_task
from zkfl.contracts.chain import AnvilProcess, account_from_key, dev_keys
from zkfl.contracts.federation import Federation, Status, TaskParams
from zkfl.datasets import load, shard
from zkfl.errors import ProofError, ZkflError
from zkfl.field.commit import commit
from zkfl.flower.client import prove_off_chain
from zkfl.flower.task import FlowerTask
from zkfl.middleware.client import Client
from zkfl.middleware.participation import Collected, SubmitPlan, collect, play
from zkfl.middleware.transport.inprocess import InProcessTransport
from zkfl.prover.ezkl.aggregation import prove_aggregation
from zkfl.prover.ezkl.keys import artifacts_from_package
from zkfl.store import open_store

KEYS = dev_keys()


@pytest.mark.slow
def test_pinned_data_task_accepts_honest_clients_with_many_batches(anvil: AnvilProcess, w3) -> None:  # type: ignore[no-untyped-def]
    """Each client holds several batches of data; a pinned task still accepts both of its rounds
    (before, the batch rotated and round 1 was rejected as "changed data", and slashed)."""
    posted = post_logreg_task(w3, rounds=2, pin_data=True)
    fed = Federation(w3, posted.federation)
    transport = InProcessTransport()
    aggregator = Aggregator(fed, posted.task_id, account_from_key(KEYS[1]), transport)
    clients = [Client(anvil.rpc_url, posted.task_id, KEYS[k], federation=posted.federation, transport=transport,
                      show_progress=False) for k in (2, 3)]
    data = [shard(load("breast_cancer"), i + 1, 2) for i in range(2)]
    assert all(len(x) >= 4 * clients[0].spec.batch for x, _ in data)  # many batches each
    for round_ in range(2):
        for client, (x, y) in zip(clients, data, strict=True):
            if round_ == 0:
                client.join()
            client.submit(client.train(x, y))
            delivery = transport.receive_submission(client.queue_key, timeout=5)
            assert delivery is not None
            aggregator.handle(delivery)
            assert fed.submission_status(posted.task_id, round_, client.address)[0] == Status.ACCEPTED
        assert aggregator.maybe_close_round()
    for client in clients:
        state = fed.participant(posted.task_id, client.address)
        assert not state.slashed and state.accepted_updates == 2
    assert audit_task(fed, posted.task_id).ok


@pytest.mark.slow
def test_a_data_committing_step_on_a_task_that_does_not_pin_data_never_sends_the_hash(  # type: ignore[no-untyped-def]
        anvil: AnvilProcess, w3) -> None:
    """An organisation reuses a pinned task's package (its step commits to each batch) for a task
    that does not pin data. The SDK refuses to join it; a wallet that joined by hand gets a proof
    it is refused to send, before the hash of its data leaves the machine; the audit flags the task."""
    pinned = post_logreg_task(w3, rounds=1, pin_data=True)
    fed = Federation(w3, pinned.federation)
    terms = fed.task(pinned.task_id)
    params = TaskParams(aggregator=terms.aggregator, verifier=terms.verifier,
                        aggregation_verifier=terms.aggregation_verifier, aggregation_slots=terms.aggregation_slots,
                        deadline=terms.deadline, rounds=1, samples_per_update=terms.samples_per_update,
                        min_stake=terms.min_stake, global_commitment=fed.round(pinned.task_id, 0).global_commitment,
                        update_values=terms.update_values, model_cid=pinned.initial_model_cid,
                        package_cid=pinned.package_cid, pin_data=False)
    task_id = fed.create_task(account_from_key(KEYS[0]), params, 10**18)
    client = Client(anvil.rpc_url, task_id, KEYS[6], federation=pinned.federation, show_progress=False)
    with pytest.raises(ZkflError, match="does not pin data"):
        client.join()
    assert not fed.participant(task_id, client.address).joined
    fed.join(account_from_key(KEYS[6]), task_id, terms.min_stake)  # past the SDK's check, by hand
    with pytest.raises(ProofError, match="commits to this batch"):
        client.train(*shard(load("breast_cancer"), 1, 3))
    failed = {finding.check for finding in audit_task(fed, task_id).failures}
    assert Check.DATA_COMMITMENT in failed
    # A package that misstates its step (the same circuit, its spec saying the data stays private) is
    # refused when the circuit is loaded, before any stake or proof.
    store = open_store()
    package = TaskPackage.get(store, pinned.package_cid)
    lying = replace(package, spec=replace(package.spec, commits_data=False)).put(store)
    lying_task = fed.create_task(account_from_key(KEYS[0]), replace(params, package_cid=lying), 10**18)
    client = Client(anvil.rpc_url, lying_task, KEYS[7], federation=pinned.federation, show_progress=False)
    with pytest.raises(ZkflError, match="spec says it keeps the data private"):
        client.join()
    assert not fed.participant(lying_task, client.address).joined
    # Off chain (a Flower run) there is no pin to keep: the node refuses to hand out such a proof.
    model = ModelArtifact.get(store, pinned.initial_model_cid).values
    with pytest.raises(ProofError, match="commits to the batch"):
        prove_off_chain(FlowerTask.off_chain(pinned.package_cid), 0, model, *shard(load("breast_cancer"), 1, 3),
                        KEYS[7])


def test_sdk_refuses_a_task_whose_terms_contradict_its_package(anvil: AnvilProcess, w3) -> None:  # type: ignore[no-untyped-def]
    """The organisation reuses a real package but sets other terms: a wrong sample count, or
    another circuit's verifier. The SDK refuses to join, with the reason, and nothing is staked."""
    posted = post_logreg_task(w3, rounds=1)
    fed = Federation(w3, posted.federation)
    good = fed.task(posted.task_id)
    round0 = fed.round(posted.task_id, 0)
    base = TaskParams(aggregator=good.aggregator, verifier=good.verifier,
                      aggregation_verifier=good.aggregation_verifier, aggregation_slots=good.aggregation_slots,
                      deadline=good.deadline, rounds=1, samples_per_update=good.samples_per_update,
                      min_stake=good.min_stake, global_commitment=round0.global_commitment,
                      update_values=good.update_values,
                      model_cid=posted.initial_model_cid, package_cid=posted.package_cid)
    cases = {
        "samples per update": replace(base, samples_per_update=good.samples_per_update + 1),
        "verifier": replace(base, verifier=good.aggregation_verifier),  # code, but not the package's verifier
        "pins data": replace(base, pin_data=True),  # a pin the package's data-private step cannot keep
    }
    for what, params in cases.items():
        task_id = fed.create_task(account_from_key(KEYS[0]), params, 10**18)
        client = Client(anvil.rpc_url, task_id, KEYS[4], federation=posted.federation, show_progress=False)
        balance = w3.eth.get_balance(client.address)
        with pytest.raises(ZkflError) as refused:
            client.join()
        assert what in str(refused.value)
        assert not fed.participant(task_id, client.address).joined
        assert w3.eth.get_balance(client.address) == balance  # no stake, not even gas spent
        if what == "pins data":
            failed = {finding.check for finding in audit_task(fed, task_id).failures}
            assert Check.DATA_COMMITMENT in failed


@pytest.mark.slow
def test_sdk_never_sends_a_submission_the_contract_would_reject(anvil: AnvilProcess, w3) -> None:  # type: ignore[no-untyped-def]
    """A bundle that is not its proof's output (a prover bug, a corrupted file) is refused by the
    dry run with the failing check named; nothing reaches the broker, and the stake is whole."""
    posted = post_logreg_task(w3, rounds=1)
    fed = Federation(w3, posted.federation)
    transport = InProcessTransport()
    client = Client(anvil.rpc_url, posted.task_id, KEYS[5], federation=posted.federation, transport=transport,
                    show_progress=False)
    client.join()
    bundle = client.train(*shard(load("breast_cancer"), 1, 3))
    bundle.update[0] += 1
    with pytest.raises(ZkflError, match="would reject this submission.*update is not the proof's output"):
        client.submit(bundle)
    assert transport.receive_submission(client.queue_key, timeout=0.5) is None
    assert fed.submission_status(posted.task_id, 0, client.address)[0] == Status.NONE
    assert not fed.participant(posted.task_id, client.address).slashed
    # A batch past the task's declared bound is named before any proof is made.
    x, y = shard(load("breast_cancer"), 1, 3)
    x = np.array(x)
    x[0, 0] = client.spec.feature_bound + 1.0
    with pytest.raises(ZkflError, match="past the task's declared bound"):
        client.train(x, y)


def test_a_round_the_participant_cannot_submit_to_is_said_and_left(anvil: AnvilProcess, w3) -> None:  # type: ignore[no-untyped-def]
    """`zkfl client run`'s loop: a round whose submission the contract would refuse (here a batch
    past the task's bound, named before any proof) is reported with its reason and left, the loop
    goes on and ends (here at its round timeout) without a crash; nothing was sent, the stake is
    whole, and a task still running is not settled."""
    posted = post_logreg_task(w3, rounds=1)
    fed = Federation(w3, posted.federation)
    client = Client(anvil.rpc_url, posted.task_id, KEYS[4], federation=posted.federation,
                    transport=InProcessTransport(), show_progress=False)
    client.join()
    x, y = shard(load("breast_cancer"), 1, 3)
    x = np.array(x)
    x[0, 0] = client.spec.feature_bound + 1.0
    said: list[str] = []
    assert play(client, x, y, SubmitPlan(), round_timeout=2, say=said.append) == []
    assert any(line.startswith("round 0: not submitted:") and "past the task's declared bound" in line
               for line in said), said
    assert said[-2:] == ["no new round opened within 2 s: stopping",
                         f"task {posted.task_id} ended for {client.address}: 0 accepted update(s), 0 verified samples"]
    assert fed.submission_status(posted.task_id, 0, client.address)[0] == Status.NONE
    state = fed.participant(posted.task_id, client.address)
    assert state.joined and not state.slashed and state.stake == fed.task(posted.task_id).min_stake
    assert collect(client, say=said.append) == Collected(False, 0, 0, withdrawn=False)
    assert "cannot be settled yet" in said[-1] and not fed.task(posted.task_id).settled


@pytest.mark.slow
def test_a_withheld_global_model_is_rebuilt_from_the_chain(anvil: AnvilProcess, w3) -> None:  # type: ignore[no-untyped-def]
    """A dishonest aggregator publishes round 0's proven commitment with the digest of another
    artifact (here the initial model): the model under that CID is not the committed one, and no
    artifact anywhere is. The SDK rebuilds G1 from the accepted updates' values on chain, checks
    it against the commitment, and trains on it."""
    posted = post_logreg_task(w3, rounds=2)
    fed = Federation(w3, posted.federation)
    client = Client(anvil.rpc_url, posted.task_id, KEYS[6], federation=posted.federation,
                    transport=InProcessTransport(), show_progress=False)
    client.join()
    data = shard(load("breast_cancer"), 1, 2)
    bundle = client.train(*data)
    submission = client.build_submission(bundle)
    assert fed.submit_update(account_from_key(KEYS[1]), posted.task_id, 0, client.address,
                             submission.update_commitment_int, bundle.update, bundle.proof_bytes,
                             bundle.public_values, submission.signature_bytes).accepted
    spec = client.spec
    model = fedavg([bundle.update], [spec.batch], bundle.update_scale, spec.scale)
    circuit = artifacts_from_package(client.package, client.store, "aggregation")
    proof = prove_aggregation(circuit, [bundle.update], [spec.batch], model)
    fed.publish_global_model(account_from_key(KEYS[1]), posted.task_id, 0, commit(np.array(model)),
                             posted.initial_model_cid, posted.initial_model_cid, proof.proof_bytes, proof.instances)
    served = ModelArtifact.get(client.store, posted.initial_model_cid)
    assert commit(served.array()) != fed.round(posted.task_id, 1).global_commitment  # the CID on chain lies
    rebuilt = client.global_model(1)
    assert rebuilt.values == model
    assert client.train(*data).public_values[0] == fed.round(posted.task_id, 1).global_commitment


@pytest.mark.slow
def test_a_censored_participant_falls_back_to_the_chain(anvil: AnvilProcess, w3) -> None:  # type: ignore[no-untyped-def]
    """The aggregator never relays this wallet's submission (nothing consumes the broker here):
    after `fallback_after` seconds with no decision on chain, the SDK sends it to the contract
    itself, and it is accepted, its values published for the aggregator to take from the chain."""
    posted = post_logreg_task(w3, rounds=1)
    fed = Federation(w3, posted.federation)
    client = Client(anvil.rpc_url, posted.task_id, KEYS[7], federation=posted.federation,
                    transport=InProcessTransport(), show_progress=False)
    client.join()
    bundle = client.train(*shard(load("breast_cancer"), 2, 3))
    client.submit(bundle, fallback_after=2.0)
    assert fed.submission_status(posted.task_id, 0, client.address)[0] == Status.ACCEPTED
    assert fed.published_updates(posted.task_id, 0)[client.address.lower()] == bundle.update
    with pytest.raises(ZkflError, match="already submitted this round"):  # refused before anything is sent
        client.submit_on_chain(bundle)
