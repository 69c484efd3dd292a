"""`zkfl audit` re-checks tasks from the chain and the artifacts: an honest task passes.

A global model that is not the average of the accepted updates cannot reach the chain
any more (the contract verifies the FedAvg proof), so the dishonest aggregator here
tries that, is refused, and then cheats where no proof reaches: it publishes the
proven commitment but serves a model artifact one quantum off. The audit catches it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import STAND_IN_CID, post_logreg_task
from zkfl.aggregator.fedavg import fedavg
from zkfl.aggregator.service import Aggregator
from zkfl.artifacts import AggregationManifest, ManifestEntry, ModelArtifact, TaskPackage
from zkfl.audit import _emitted_by, audit_task
from zkfl.contracts.chain import AnvilProcess, account_from_key, dev_keys, send
from zkfl.contracts.federation import Federation, deploy
from zkfl.contracts.solc import compile_contract
from zkfl.datasets import load, shard
from zkfl.errors import ChainError
from zkfl.field.commit import commit
from zkfl.middleware.client import Client
from zkfl.middleware.transport.inprocess import InProcessTransport
from zkfl.prover.ezkl.aggregation import prove_aggregation
from zkfl.prover.ezkl.keys import artifacts_from_package
from zkfl.store import LocalStore

KEYS = dev_keys()
RELAY = Path(__file__).parent / "contracts" / "Relay.sol"


def relay_through_contract(w3, client: Client, bundle) -> str:  # type: ignore[no-untyped-def]
    """Submit ``bundle`` the way a smart-contract relayer would: the Federation is called by
    another contract, so the transaction's own input is not a ``submitUpdate`` call."""
    compiled = compile_contract(RELAY, "Relay")
    relay_address, _ = deploy(w3, account_from_key(KEYS[5]), compiled)
    relay = w3.eth.contract(address=relay_address, abi=compiled.abi)
    submission = client.build_submission(bundle)
    call = client.federation.submit_call(client.task_id, bundle.round, client.address, submission.update_commitment_int,
                                         bundle.update, bundle.proof_bytes, bundle.public_values,
                                         submission.signature_bytes)
    raw = bytearray(bytes.fromhex(call._encode_transaction_data().removeprefix("0x")))
    # A stray byte in the signature's ABI padding (its last 31 bytes end the calldata): the contract
    # never reads it, the strict ABI decoder refuses it, and the audit must still read the proof.
    raw[-1] = 0x01
    data = bytes(raw)
    # A multicall: another Federation call first, so the audit must pick the frame that emitted the event.
    other = client.federation.contract.functions.taskCount()._encode_transaction_data()
    send(w3, account_from_key(KEYS[5]), relay.functions.forwardAll(client.federation.address, [other, data]))
    return relay_address


def federation_round(anvil: AnvilProcess, w3, honest: bool):  # type: ignore[no-untyped-def]
    posted = post_logreg_task(w3)
    fed = Federation(w3, posted.federation)
    transport = InProcessTransport()
    aggregator = Aggregator(fed, posted.task_id, account_from_key(KEYS[1]), transport)
    clients = [Client(anvil.rpc_url, posted.task_id, KEYS[k], federation=posted.federation, transport=transport,
                      show_progress=False) for k in (2, 3, 4)]
    # Wallet 4 joins, leaves and joins again: its binding is the contract's, unchanged by that.
    clients[2].join()
    fed.leave(clients[2].account, posted.task_id)
    bundles, admitted = [], []
    for index, client in enumerate(clients):
        client.join()
        bundle = client.train(*shard(load("breast_cancer"), index + 1, 3))
        bundles.append(bundle)
        if index == 1:  # never sent to the aggregator: relayed on chain through a contract
            relay_through_contract(w3, client, bundle)
            continue
        client.submit(bundle)
        delivery = transport.receive_submission(client.queue_key, timeout=5)
        assert delivery is not None
        submission = aggregator.admit(delivery)
        assert submission is not None
        admitted.append((delivery, submission))
    # Both relayed in one submitUpdates transaction (ezkl's verifier cannot batch: one verification each).
    aggregator.relay_batch(admitted)
    assert fed.round(posted.task_id, 0).accepted == 3
    txs = {bytes(e["transactionHash"]) for e in fed.events("UpdateAccepted", posted.task_id)
           if e["args"]["participant"] != clients[1].address}
    assert len(txs) == 1  # one transaction decided both
    function, _ = fed.contract.decode_function_input(fed.w3.eth.get_transaction(txs.pop())["input"])
    assert function.fn_name == "submitUpdates"
    if honest:
        assert aggregator.maybe_close_round()
    else:
        # A dishonest aggregator: the right manifest, but the model is one quantum off the average.
        spec, store = clients[0].spec, LocalStore()
        by_commitment = {commit(np.array(b.update)): b.update for b in bundles}
        updates = [by_commitment[c] for c in fed.accepted_updates(posted.task_id, 0)]  # the chain's slot order
        average = fedavg(updates, [spec.batch] * 3, bundles[0].update_scale, spec.scale)
        off = list(average)
        off[0] += 1
        circuit = artifacts_from_package(TaskPackage.get(store, posted.package_cid), store, "aggregation")
        wrong = prove_aggregation(circuit, updates, [spec.batch] * 3, off)
        with pytest.raises(ChainError, match="model is not the rounded average"):
            fed.publish_global_model(account_from_key(KEYS[1]), posted.task_id, 0, commit(np.array(off)),
                                     STAND_IN_CID, STAND_IN_CID, wrong.proof_bytes, wrong.instances)
        proof = prove_aggregation(circuit, updates, [spec.batch] * 3, average)
        model_cid = ModelArtifact(spec.spec_hash(), spec.scale, off).put(store)
        entries = []
        order = fed.accepted_updates(posted.task_id, 0)
        for client, bundle in sorted(zip(clients, bundles, strict=True),
                                     key=lambda cb: order.index(commit(np.array(cb[1].update)))):
            update_cid = ModelArtifact(spec.spec_hash(), bundle.update_scale, bundle.update).put(store)
            entries.append(ManifestEntry(client.address.lower(), update_cid,
                                         "0x" + commit(np.array(bundle.update)).to_bytes(32, "big").hex(), spec.batch))
        manifest_cid = AggregationManifest(0, model_cid, entries).put(store)
        fed.publish_global_model(account_from_key(KEYS[1]), posted.task_id, 0, commit(np.array(average)),
                                 model_cid, manifest_cid, proof.proof_bytes,
                                 proof.instances)
    fed.settle(account_from_key(KEYS[0]), posted.task_id)
    for client in clients:
        fed.withdraw(client.account, posted.task_id)
    return fed, posted.task_id


def zkfl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zkfl.cli", *args], capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.mark.slow
def test_audit_passes_an_honest_task_and_catches_a_dishonest_aggregate(anvil: AnvilProcess, w3) -> None:  # type: ignore[no-untyped-def]
    fed, task_id = federation_round(anvil, w3, honest=True)
    report = audit_task(fed, task_id)
    assert report.ok, report.failures
    names = {f.check for f in report.findings}
    # Three accepted updates (one relayed through a contract, one from a wallet that left and rejoined),
    # each re-verified: no finding is a failure, and none is skipped.
    assert sum(f.check == "proof verifies off chain" for f in report.findings) == 3
    assert {"proof verifies off chain", "global model is the FedAvg of the accepted updates",
            "bound to the participant", "inputs within the task's bounds", "published update is the proof's output",
            "aggregation proof verifies off chain", "aggregation proof averages exactly the accepted updates",
            "manifest lists exactly the accepted updates", "payout follows the reward rule"} <= names
    result = zkfl("audit", "--rpc", anvil.rpc_url, "--federation", fed.address, "--task", str(task_id), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rounds"] == {"0": "ok"}

    fed, task_id = federation_round(anvil, w3, honest=False)
    report = audit_task(fed, task_id)
    assert not report.ok
    [failure] = report.failures
    assert failure.round == 0 and failure.check == "published model matches its commitment"
    result = zkfl("audit", "--rpc", anvil.rpc_url, "--federation", fed.address, "--task", str(task_id))
    assert result.returncode == 1
    assert "round 0: FAILED" in result.stdout
    assert "audit failed at round 0" in result.stderr and "published commitment" in result.stderr


def test_the_audit_takes_an_events_calldata_only_from_its_own_task_round_wallet_and_update() -> None:
    """A multicall may carry the same wallet's entries for two tasks (or rounds): the audit must
    read each accepted update's proof from the call that emitted it, not the first that names the wallet."""
    wallet = "0x00000000000000000000000000000000000000Ab"
    args = {"taskId": 2, "round": 0, "participant": wallet, "updateCommitment": 7}
    own = {"taskId": 2, "round": 0, "participant": wallet.lower(), "updateCommitment": 7, "proof": b""}
    assert _emitted_by(own, args)
    for name, other in (("taskId", 1), ("round", 1), ("participant", "0x" + "cd" * 20), ("updateCommitment", 8)):
        assert not _emitted_by({**own, name: other}, args), name
    # GlobalModelPublished names the round it opens, one past the publishing call's: only the task counts.
    assert _emitted_by({"taskId": 2, "round": 0}, {"taskId": 2, "round": 1, "globalCommitment": 5})
    assert not _emitted_by({"taskId": 1, "round": 0}, {"taskId": 2, "round": 1, "globalCommitment": 5})
