"""Competing consumers on the real RabbitMQ: 200 submissions from 20 simulated clients,
processed by one verifier worker and then by three. The final state is the same.

Both runs serve the same task from the same chain state: the task is posted and joined,
anvil's state is snapshotted, one worker runs it, the chain is reverted to the snapshot
and three workers run it again. So each honest client's proof is made once, for the one
(chain, Federation, task, wallet) it is bound to, and both runs get the same messages."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from tests.conftest import Prover
from zkfl.aggregator.service import Aggregator
from zkfl.aggregator.state import AggregatorState
from zkfl.circuits.spec import DEFAULT_SLOTS
from zkfl.contracts.chain import AnvilProcess, account_from_key, chain_key, dev_keys
from zkfl.contracts.federation import Federation, Reason, Status
from zkfl.field.commit import commit, commitment_hex
from zkfl.middleware.messages import UpdateSubmission
from zkfl.middleware.transport.base import task_key
from zkfl.middleware.transport.rabbitmq import RabbitMQTransport, dead_queue, submissions_queue
from zkfl.organisation import PostedTask, post_task
from zkfl.prover.records import StepProof

KEYS = dev_keys()
CLIENTS, CHEATERS, COPIES, GARBAGE = 20, 17, 5, 5  # 20 x (5 copies + 5 garbage) = 200 messages
HONEST = CLIENTS - CHEATERS  # three real proofs; a round's FedAvg has DEFAULT_SLOTS > HONEST slots, so
# every cheater finds a free slot and is judged (a full round refuses without judging)


def fund(w3: Web3, to: str, value: int) -> None:
    sender = account_from_key(KEYS[0])
    tx = {"to": to, "value": value, "gas": 21_000, "gasPrice": w3.eth.gas_price, "chainId": w3.eth.chain_id,
          "nonce": w3.eth.get_transaction_count(sender.address, "pending")}
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))


@pytest.fixture(scope="module")
def population(w3: Web3) -> tuple[list[LocalAccount], list[LocalAccount]]:
    """20 funded client wallets and 3 relayer wallets (one per worker)."""
    clients = [Account.create() for _ in range(CLIENTS)]
    relayers = [Account.create() for _ in range(3)]
    for account in clients + relayers:
        fund(w3, account.address, 10**18)
    return clients, relayers


def victim_of(index: int) -> int:
    """Cheater ``index`` replays the submission of this honest client."""
    return CHEATERS + index % HONEST


def messages(fed: Federation, task_id: int, clients: list[LocalAccount], proofs: dict[int, StepProof]) -> list[bytes]:
    """Five copies of each client's signed submission, and five garbage messages each.

    An honest client sends its own proof. A cheater copies an honest client's proof,
    public values and update and signs them as its own: the proof is bound to its
    victim's wallet, so the contract rejects it (binding mismatch) and slashes the cheater."""
    bodies = []
    for index, client in enumerate(clients):
        proof = proofs[victim_of(index) if index < CHEATERS else index]
        update = list(proof.update)
        commitment = commit(np.array(update, dtype=np.int64))
        signature = fed.sign_submission(client, task_id, 0, commitment, update, proof.instances, proof.proof_bytes)
        submission = UpdateSubmission(
            task_id=task_id, round=0, wallet=client.address, chain_id=fed.w3.eth.chain_id, federation=fed.address,
            backend="ezkl", num_samples=16, update_scale=proof.update_scale, update=update,
            update_commitment=commitment_hex(commitment), public_values=[commitment_hex(v) for v in proof.instances],
            proof="0x" + proof.proof_bytes.hex(), signature="0x" + signature.hex())
        body = submission.encode()
        bodies += [body] * COPIES  # re-sends of one signed submission: one effect
        data = asdict(submission)
        garbage = [b"{not json", json.dumps({**data, "schema_version": 7}).encode(),
                   json.dumps({**data, "update": [1, 2, 3]}).encode(),
                   body.replace(b'"update":[', b'"update":[NaN,', 1),
                   json.dumps({**data, "wallet": Account.create().address}).encode()]
        assert len(set(garbage)) == GARBAGE and body not in garbage
        bodies += garbage[:GARBAGE]
    random.Random(7).shuffle(bodies)
    return bodies


def queue_depths(url: str, key: str) -> tuple[int, int]:
    """(submissions waiting, dead letters) for a task, as the broker counts them."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        return tuple(int(channel.queue_declare(q, passive=True).method.message_count)  # type: ignore[return-value]
                     for q in (submissions_queue(key), dead_queue(key)))
    finally:
        connection.close()


def run_task(rabbitmq_url: str, workers: int, tmp: Path, fed: Federation, task_id: int, key: str,
             bodies: list[bytes], relayers: list[LocalAccount], clients: list[LocalAccount]) -> dict[str, object]:
    with RabbitMQTransport(rabbitmq_url) as producer:
        producer.purge(key)  # the queues are the task's: start them empty
        for body in bodies:
            producer.publish_submission(key, body)
    assert queue_depths(rabbitmq_url, key) == (len(bodies), 0)
    state_path = tmp / f"state-{workers}.sqlite"
    failures: list[BaseException] = []
    handled = [0] * workers

    def work(worker: int) -> None:
        try:
            with RabbitMQTransport(rabbitmq_url) as transport:
                aggregator = Aggregator(fed, task_id, account_from_key(KEYS[1]), transport,
                                        state=AggregatorState(state_path), relayer=relayers[worker])
                original = aggregator.admit  # every message taken passes here once, relayed alone or batched

                def counted(delivery):  # type: ignore[no-untyped-def]
                    handled[worker] += 1
                    return original(delivery)

                aggregator.admit = counted  # type: ignore[method-assign]
                aggregator.run()
                # The round is published once everyone is decided; drain what is left.
                while (delivery := transport.receive_submission(key, timeout=1.0)) is not None:
                    aggregator.handle(delivery)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads), "a worker did not finish"
    state = AggregatorState(state_path)
    decisions = state.decisions(0)
    return {
        "accepted": sorted(d.wallet for d in decisions if d.status == "accepted"),
        "rejected": sorted(d.wallet for d in decisions if d.status == "rejected"),
        "on_chain_accepted": fed.round(task_id, 0).accepted,
        "slashed": sorted(str(e["args"]["participant"]).lower() for e in fed.events("Slashed", task_id)),
        "refusals": len(state.refusals()),
        "published": fed.round(task_id, 1).global_commitment,
        "statuses": sorted(fed.submission_status(task_id, 0, c.address) for c in clients),
        "submit_events": len(fed.events("UpdateAccepted", task_id)) + len(fed.events("UpdateRejected", task_id)),
        "handled": handled,
        "left": queue_depths(rabbitmq_url, key),
        "seconds": time.monotonic() - start,
    }


@pytest.mark.slow
def test_one_worker_and_three_workers_reach_the_same_state(anvil: AnvilProcess, w3: Web3, rabbitmq_url: str,
                                                          tmp_path: Path, population, prover: Prover) -> None:  # type: ignore[no-untyped-def]
    clients, relayers = population
    posted: PostedTask = post_task(w3, account_from_key(KEYS[0]), model="logreg", dataset="breast_cancer",
                                   rounds=1, reward_wei=10**18, min_stake_wei=10**16, deadline_seconds=3600,
                                   aggregator=account_from_key(KEYS[1]).address, slots=DEFAULT_SLOTS,
                                   # Longer than proving and both runs take: the round closes because
                                   # everyone is decided, never because the window ran out.
                                   collection_window=1800)
    fed = Federation(w3, posted.federation)
    task_id = posted.task_id
    for client in clients:
        fed.join(client, task_id, 10**16)
    start = np.zeros(prover.artifacts.spec.param_count, dtype=np.int64)
    assert fed.round(task_id, 0).global_commitment == commit(start)
    # One real proof per honest client, bound to its wallet in this task.
    proofs = {i: prover.step(fed, task_id, clients[i], i + 1, start).proof for i in range(CHEATERS, CLIENTS)}
    bodies = messages(fed, task_id, clients, proofs)
    assert len(bodies) == CLIENTS * (COPIES + GARBAGE) == 200
    key = task_key(chain_key(w3), fed.address, task_id)

    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    one = run_task(rabbitmq_url, 1, tmp_path, fed, task_id, key, bodies, relayers, clients)
    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
    assert fed.task(task_id).current_round == 0 and fed.round(task_id, 0).accepted == 0  # the same task, afresh
    three = run_task(rabbitmq_url, 3, tmp_path, fed, task_id, key, bodies, relayers, clients)

    honest = sorted(c.address.lower() for c in clients[CHEATERS:])
    cheaters = sorted(c.address.lower() for c in clients[:CHEATERS])
    for result in (one, three):
        assert result["accepted"] == honest
        assert result["rejected"] == cheaters == result["slashed"]
        assert result["on_chain_accepted"] == HONEST
        assert result["refusals"] == CLIENTS * GARBAGE  # every garbage message, dead-lettered once
        assert result["statuses"] == sorted([(Status.ACCEPTED, Reason.NONE)] * HONEST
                                            + [(Status.REJECTED, Reason.BINDING_MISMATCH)] * CHEATERS)
        assert result["submit_events"] == CLIENTS  # one on-chain decision per client, however many copies
        assert sum(result["handled"]) == len(bodies)  # every message taken once, none lost
        assert result["left"] == (0, CLIENTS * GARBAGE)  # work queue empty; one dead letter per garbage message
    assert all(n > 0 for n in three["handled"]), three["handled"]  # the three workers really shared the queue
    # Same inputs, same FedAvg: the two runs publish the same global model.
    assert one["published"] == three["published"] != 0
