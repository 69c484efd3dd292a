"""Crashes on the real parts: the aggregator SIGKILLed at its worst moments, on anvil
and RabbitMQ with real proofs, then restarted: nothing lost, nothing counted twice,
and the same global model as a clean run. The broker restarted, a connection cut
between publish and confirm. And participants who bypass the broker and submit
straight to the chain: adopted from the chain when honest, challenged and slashed
when the values they published are not their proof's output; neither freezes the round."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from web3 import Web3

from tests.conftest import Observed, wait_out_collection_window
from zkfl.aggregator.fedavg import fedavg
from zkfl.aggregator.service import Aggregator
from zkfl.aggregator.state import AggregatorState, default_path
from zkfl.artifacts import ModelArtifact, TaskPackage
from zkfl.contracts.chain import AnvilProcess, account_from_key, dev_keys, free_port
from zkfl.contracts.federation import Federation, Reason, Status
from zkfl.datasets import load, shard
from zkfl.field.commit import commit, commitment_hex
from zkfl.ipfs.config import IpfsConfig
from zkfl.ipfs.node import start_ipfs_node
from zkfl.ipfs.store import IpfsStore
from zkfl.middleware.bundle import UpdateBundle
from zkfl.middleware.client import Client
from zkfl.middleware.transport.base import DeadLetter, Delivery, Transport
from zkfl.middleware.transport.rabbitmq import RabbitMQTransport, dead_queue, submissions_queue
from zkfl.organisation import PostedTask, post_task
from zkfl.store import LocalStore

KEYS = dev_keys()


def serve_in_thread(aggregator: Aggregator) -> tuple[threading.Thread, list[BaseException]]:
    """Run the aggregator in a daemon thread; an exception it dies of lands in the list."""
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            aggregator.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread, failure


class Watched(Transport):
    """The aggregator's real RabbitMQ transport, passed through, recording every delivery it takes."""

    def __init__(self, inner: RabbitMQTransport) -> None:
        self.inner = inner
        self.deliveries: list[Observed] = []

    def publish_submission(self, task: str, body: bytes) -> None:
        self.inner.publish_submission(task, body)

    def receive_submission(self, task: str, timeout: float) -> Delivery | None:
        delivery = self.inner.receive_submission(task, timeout)
        if delivery is None:
            return None
        self.deliveries.append(Observed(delivery))
        return self.deliveries[-1]

    def publish_event(self, task: str, event: dict[str, object]) -> None:
        self.inner.publish_event(task, event)

    def dead_letters(self, task: str) -> list[DeadLetter]:
        return self.inner.dead_letters(task)

    def close(self) -> None:
        self.inner.close()


def ready_messages(broker: str, queue: str) -> int:
    """Messages waiting in a queue, as the broker counts them (from a connection of its own)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(broker))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def start_aggregator(rpc: str, task_id: int, broker: str, **pauses: float) -> subprocess.Popen[bytes]:
    env = os.environ.copy()
    for name, seconds in pauses.items():
        env[f"ZKFL_TEST_PAUSE_{name.upper()}"] = str(seconds)
    # The pausing subclass when asked to hold at a crash point; the real command line otherwise.
    entry = [str(Path(__file__).with_name("pausing_aggregator.py"))] if pauses else ["-m", "zkfl.cli"]
    return subprocess.Popen([sys.executable, *entry, "aggregator", "run", "--rpc", rpc, "--task",
                             str(task_id), "--key", KEYS[1], "--broker", broker],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"aggregator exited before {what}: {process.stderr.read().decode()[-800:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def post_one_round_task(w3: Web3) -> PostedTask:
    """A one-round logreg task on breast_cancer, posted by dev account 0 with dev account 1
    as its aggregator, whose collection window (30 min) is longer than these tests: its
    round closes because every participant was decided, never because the window ran out
    while proofs were made on a loaded machine."""
    return post_task(w3, account_from_key(KEYS[0]), model="logreg", dataset="breast_cancer", rounds=1,
                     reward_wei=10**18, min_stake_wei=10**17, deadline_seconds=3600,
                     aggregator=account_from_key(KEYS[1]).address, collection_window=1800)


def trained_clients(anvil: AnvilProcess, w3: Web3, broker: str, keys: tuple[int, ...]):  # type: ignore[no-untyped-def]
    """A fresh one-round task, and clients (dev keys ``keys``) that joined and trained on it."""
    posted = post_one_round_task(w3)
    data = load("breast_cancer")
    clients = [Client(anvil.rpc_url, posted.task_id, KEYS[k], broker, federation=posted.federation,
                      show_progress=False) for k in keys]
    bundles = []
    for index, client in enumerate(clients):
        client.join()
        bundles.append(client.train(*shard(data, index + 1, 2)))
    return posted, Federation(w3, posted.federation), clients, bundles


@pytest.mark.slow
def test_aggregator_survives_sigkill_mid_relay_and_mid_aggregation(anvil: AnvilProcess, w3: Web3,
                                                                    rabbitmq_url: str) -> None:
    posted, fed, clients, bundles = trained_clients(anvil, w3, rabbitmq_url, (7, 8))
    state_path = default_path(clients[0].queue_key)

    # 1. Killed right after relaying the first submission: accepted on chain, not yet
    #    stored nor acked.
    aggregator = start_aggregator(anvil.rpc_url, posted.task_id, rabbitmq_url, after_relay=60)
    clients[0].submit(bundles[0])
    first = clients[0].address
    wait_for(lambda: fed.submission_status(posted.task_id, 0, first)[0] == Status.ACCEPTED, "the first relay",
             aggregator)
    aggregator.send_signal(signal.SIGKILL)
    aggregator.wait()
    assert AggregatorState(state_path).decisions(0) == []  # the crash hit before the store

    # 2. Restarted: it adopts the redelivered first submission, relays the second, and is
    #    killed in the middle of aggregating.
    clients[1].submit(bundles[1])
    aggregator = start_aggregator(anvil.rpc_url, posted.task_id, rabbitmq_url, before_publish=60)
    state = AggregatorState(state_path)
    wait_for(lambda: (state.round_state(0) or {}).get("state") == "aggregating", "aggregation", aggregator)
    aggregator.send_signal(signal.SIGKILL)
    aggregator.wait()
    assert fed.task(posted.task_id).current_round == 0  # nothing published yet

    # 3. Restarted again: it publishes, and what it publishes is the clean FedAvg.
    aggregator = start_aggregator(anvil.rpc_url, posted.task_id, rabbitmq_url)
    assert aggregator.wait(timeout=240) == 0, aggregator.stderr.read().decode()[-800:]
    spec = clients[0].spec
    expected = fedavg([b.update for b in bundles], [spec.batch, spec.batch], bundles[0].update_scale, spec.scale)
    published = fed.round(posted.task_id, 1).global_commitment
    assert published == commit(np.array(expected, dtype=np.int64))
    decisions = state.decisions(0)
    assert sorted(d.wallet for d in decisions) == sorted(c.address.lower() for c in clients)
    assert all(d.status == "accepted" for d in decisions)
    assert fed.round(posted.task_id, 0).accepted == 2
    assert (state.round_state(0) or {})["global_commitment"] == commitment_hex(published)


def restart_broker() -> None:
    """Stop and start the RabbitMQ application (its quorum queues survive on disk)."""
    for action in ("stop_app", "start_app"):
        subprocess.run(["rabbitmqctl", "-q", action], check=True, capture_output=True, timeout=120)
    subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, capture_output=True, timeout=120)


@pytest.mark.slow
def test_broker_restart_mid_round_processes_every_submission_once(anvil: AnvilProcess, w3: Web3,
                                                                   rabbitmq_url: str) -> None:

    from zkfl.middleware.transport.rabbitmq import RabbitMQTransport

    posted, fed, clients, bundles = trained_clients(anvil, w3, rabbitmq_url, (5, 6))
    transport = RabbitMQTransport(rabbitmq_url)
    aggregator = Aggregator(fed, posted.task_id, account_from_key(KEYS[1]), transport)
    thread, failure = serve_in_thread(aggregator)
    first = clients[0].submit(bundles[0])
    deadline = time.monotonic() + 120
    while fed.submission_status(posted.task_id, 0, clients[0].address)[0] != Status.ACCEPTED:
        assert time.monotonic() < deadline and not failure, failure
        time.sleep(0.2)
    restart_broker()  # both the aggregator's and the client's connections die here
    clients[1].submit(bundles[1])  # reconnects, publishes, waits for the confirm
    # A re-send of the already decided submission, byte for byte (as a client that lost its
    # confirm sends it again; its SDK's dry run would now refuse a fresh one): no second effect.
    clients[0].transport.publish_submission(clients[0].queue_key, first.encode())
    thread.join(timeout=180)
    assert not failure, failure
    assert not thread.is_alive(), "the aggregator did not finish the round"
    assert fed.round(posted.task_id, 0).accepted == 2
    assert fed.task(posted.task_id).current_round == 1
    decisions = aggregator.state.decisions(0)
    assert sorted(d.wallet for d in decisions) == sorted(c.address.lower() for c in clients)
    assert aggregator.state.refusals(0) == []
    transport.close()


@pytest.mark.slow
def test_connection_dropped_between_publish_and_confirm_then_retried_has_one_effect(
        anvil: AnvilProcess, w3: Web3, rabbitmq_url: str) -> None:
    import socket

    import pika

    from zkfl.middleware.transport.rabbitmq import SUBMISSION_KEY, exchange_name

    posted, fed, [client], [bundle] = trained_clients(anvil, w3, rabbitmq_url, (4,))
    key = client.queue_key
    body = client.build_submission(bundle).encode()
    with RabbitMQTransport(rabbitmq_url) as declarer:
        declarer._declare(key)  # the topology exists, as in any live task
    assert ready_messages(rabbitmq_url, submissions_queue(key)) == 0

    # The first attempt: published on a channel without confirms, and the TCP connection
    # cut once the broker has the message, before any confirm could come back. The client
    # cannot know that the broker has it.
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    channel.basic_publish(exchange_name(key), SUBMISSION_KEY, body,
                          properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent))
    deadline = time.monotonic() + 30
    while ready_messages(rabbitmq_url, submissions_queue(key)) == 0:
        assert time.monotonic() < deadline, "the first publish never reached the broker"
        time.sleep(0.05)
    raw = connection._impl._transport._sock  # pika's socket: cut it as a network failure would
    raw.shutdown(socket.SHUT_RDWR)
    raw.close()
    # So it retries, this time with a confirm: the same signed message, byte for byte.
    sent = client.submit(bundle)
    assert sent.encode() == body
    assert ready_messages(rabbitmq_url, submissions_queue(key)) == 2  # the duplicate is on the broker

    aggregator_account = account_from_key(KEYS[1])
    nonce_before = w3.eth.get_transaction_count(aggregator_account.address)
    transport = Watched(RabbitMQTransport(rabbitmq_url))
    aggregator = Aggregator(fed, posted.task_id, aggregator_account, transport)
    thread = threading.Thread(target=aggregator.run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the aggregator did not finish the round"
    while (delivery := transport.receive_submission(key, timeout=1.0)) is not None:
        aggregator.handle(delivery)  # whatever copies remain
    transport.close()  # anything it held unacked would go back to the queue

    # Both copies were delivered, once each, and both acked: nothing left, nothing dead-lettered.
    assert [d.body for d in transport.deliveries] == [body, body]
    assert [d.outcome for d in transport.deliveries] == ["ack", "ack"]
    assert ready_messages(rabbitmq_url, submissions_queue(key)) == 0
    assert ready_messages(rabbitmq_url, dead_queue(key)) == 0
    # One effect on chain: one submitUpdate (the aggregator sent two transactions in all:
    # that relay and the round's publication), one acceptance, one decision stored.
    assert w3.eth.get_transaction_count(aggregator_account.address) - nonce_before == 2
    accepted = fed.events("UpdateAccepted", posted.task_id)
    assert [str(e["args"]["participant"]) for e in accepted] == [client.address]
    assert fed.events("UpdateRejected", posted.task_id) == []
    assert fed.round(posted.task_id, 0).accepted == 1
    [decision] = aggregator.state.decisions(0)
    assert decision.wallet == client.address.lower() and decision.status == "accepted"
    assert decision.gas is not None  # relayed by this aggregator (the copy was adopted, not relayed again)
    assert aggregator.state.refusals(0) == []
    assert fed.task(posted.task_id).current_round == 1


def submit_directly(fed: Federation, client: Client, bundle: UpdateBundle, values: list[int]):  # type: ignore[no-untyped-def]
    """What a participant can do without the broker or the SDK's checks: sign its proof with
    ``values`` as the update it publishes, and call submitUpdate itself. The commitment is
    its proof's output, so the contract accepts it whatever ``values`` are."""
    commitment = commit(np.array(bundle.update, dtype=np.int64))
    signature = fed.sign_submission(client.account, bundle.task_id, bundle.round, commitment, values,
                                    bundle.public_values, bundle.proof_bytes)
    return fed.submit_update(client.account, bundle.task_id, bundle.round, client.address, commitment, values,
                             bundle.proof_bytes, bundle.public_values, signature)


@pytest.mark.slow
def test_updates_sent_straight_to_the_chain_are_adopted_or_challenged_and_never_freeze_the_round(
        anvil: AnvilProcess, w3: Web3, rabbitmq_url: str) -> None:


    posted, fed, [honest, cheat], [honest_bundle, cheat_bundle] = trained_clients(anvil, w3, rabbitmq_url, (2, 9))
    task_id = posted.task_id
    # (a) Honest values, never sent to the broker. (b) Values that are not the proof's
    # output (nobody could aggregate them): also accepted by the contract, which only
    # publishes them in UpdateData.
    bogus = [cheat_bundle.update[0] + 1, *cheat_bundle.update[1:]]
    assert submit_directly(fed, honest, honest_bundle, honest_bundle.update).accepted
    assert submit_directly(fed, cheat, cheat_bundle, bogus).accepted
    assert fed.published_updates(task_id, 0) == {honest.address.lower(): honest_bundle.update,
                                                 cheat.address.lower(): bogus}
    stake = fed.participant(task_id, cheat.address).stake
    assert stake == fed.task(task_id).min_stake > 0

    aggregator_account = account_from_key(KEYS[1])
    transport = Watched(RabbitMQTransport(rabbitmq_url))
    aggregator = Aggregator(fed, task_id, aggregator_account, transport)
    thread, failure = serve_in_thread(aggregator)
    thread.join(timeout=240)  # far less than the task's 30 min collection window
    transport.close()
    assert not failure, failure
    assert not thread.is_alive(), "the round froze: the aggregator did not publish it"
    assert transport.deliveries == []  # nothing came over the broker: all of it was taken from the chain

    # Neither froze the round: it was published without waiting out the collection window.
    task = fed.task(task_id)
    assert task.current_round == 1
    [published] = fed.events("GlobalModelPublished", task_id)
    published_at = int(w3.eth.get_block(published["blockNumber"])["timestamp"])
    assert published_at < fed.round(task_id, 0).opened_at + task.collection_window

    # (a) The honest update was adopted from the chain, and the round includes it.
    assert fed.submission_status(task_id, 0, honest.address) == (Status.ACCEPTED, Reason.NONE)
    [adopted] = aggregator.state.accepted(0)
    assert adopted.wallet == honest.address.lower() and adopted.update_values == honest_bundle.update
    assert adopted.gas is None  # taken from the chain, not relayed by the aggregator
    assert [r.accepted for r in aggregator.history] == [[honest.address]]
    assert fed.accepted_updates(task_id, 0) == [commit(np.array(honest_bundle.update, dtype=np.int64))]
    spec = honest.spec
    alone = fedavg([honest_bundle.update], [spec.batch], honest_bundle.update_scale, spec.scale)
    assert fed.round(task_id, 1).global_commitment == commit(np.array(alone, dtype=np.int64))
    assert not fed.participant(task_id, honest.address).slashed

    # (b) The bogus one was challenged on chain by the aggregator: out of the round, and slashed.
    assert fed.submission_status(task_id, 0, cheat.address) == (Status.REJECTED, Reason.UPDATE_UNAVAILABLE)
    [rejected] = fed.events("UpdateRejected", task_id)
    assert str(rejected["args"]["participant"]) == cheat.address
    assert Reason(int(rejected["args"]["reason"])) == Reason.UPDATE_UNAVAILABLE
    assert w3.eth.get_transaction(rejected["transactionHash"])["from"] == aggregator_account.address
    [slashed] = fed.events("Slashed", task_id)
    assert str(slashed["args"]["participant"]) == cheat.address and int(slashed["args"]["amount"]) == stake
    punished = fed.participant(task_id, cheat.address)
    assert punished.slashed and punished.stake == 0 and punished.accepted_updates == 0
    assert (fed.round(task_id, 0).accepted, fed.round(task_id, 0).rejected) == (1, 1)
    assert task.slashed_pool == stake and task.active_participants == 1


@pytest.mark.slow
def test_an_ipfs_node_down_at_publication_holds_the_round_until_it_is_back(anvil: AnvilProcess, w3: Web3,
                                                                           rabbitmq_url: str,
                                                                           tmp_path: Path) -> None:
    """The aggregator's own IPFS node is down when the round closes: nothing crashes, nothing
    is published without its model being on IPFS, and the round is published once the node
    answers again."""
    posted, fed, clients, bundles = trained_clients(anvil, w3, rabbitmq_url, (5, 6))
    port = free_port()
    with start_ipfs_node(tmp_path / "node", port=port) as node:
        config = IpfsConfig(api=node.api_url, retries=2, timeout=5.0)
        seeding = IpfsStore(config, LocalStore(tmp_path / "organisation"))
        package = TaskPackage.get(LocalStore(), posted.package_cid)  # what the organisation pinned
        for cid in (posted.package_cid, posted.initial_model_cid, *package.artifacts.values()):
            seeding.put(LocalStore().get(cid))
        aggregator = Aggregator(fed, posted.task_id, account_from_key(KEYS[1]), RabbitMQTransport(rabbitmq_url),
                                IpfsStore(config, LocalStore(tmp_path / "aggregator")))
    aggregator.store_retry_seconds = 1.0
    thread, failure = serve_in_thread(aggregator)  # its node is down from here on
    for client, bundle in zip(clients, bundles, strict=True):
        client.submit(bundle)
    deadline = time.monotonic() + 240
    while fed.round(posted.task_id, 0).accepted < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert fed.round(posted.task_id, 0).accepted == 2
    time.sleep(20)  # several publication attempts, each refused by the store
    assert thread.is_alive() and not failure and fed.task(posted.task_id).current_round == 0
    with start_ipfs_node(tmp_path / "node", port=port) as node:  # back, same repo and port
        thread.join(timeout=240)
        assert not thread.is_alive() and not failure, failure
        model_cid = fed.round(posted.task_id, 1).model_cid
        assert model_cid is not None
        reader = IpfsStore(IpfsConfig(gateways=(node.gateway_url,)), LocalStore(tmp_path / "auditor"))
        assert commit(ModelArtifact.get(reader, model_cid).array()) == fed.round(posted.task_id, 1).global_commitment


@pytest.mark.slow
def test_a_submission_waiting_for_its_batch_is_relayed_before_its_round_closes(anvil: AnvilProcess, w3: Web3,
                                                                              rabbitmq_url: str) -> None:
    """The aggregator holds admitted submissions up to batch_wait seconds to relay them together.
    The collection window may end meanwhile; a submission that arrived in time must not miss its
    round for that (it would be refused once the round closed): waiting ones are relayed first."""
    posted, fed, clients, bundles = trained_clients(anvil, w3, rabbitmq_url, (2, 3))
    transport = RabbitMQTransport(rabbitmq_url)
    aggregator = Aggregator(fed, posted.task_id, account_from_key(KEYS[1]), transport, batch_size=10,
                            batch_wait=4.0)
    clients[0].submit(bundles[0])
    delivery = transport.receive_submission(clients[0].queue_key, timeout=30)
    assert delivery is not None
    aggregator.handle(delivery)  # accepted on its own: the round could close on it alone
    wait_out_collection_window(fed, posted.task_id, 0)
    clients[1].submit(bundles[1])  # in time: the round is still open on chain
    thread, failure = serve_in_thread(aggregator)
    thread.join(timeout=180)
    assert not failure, failure
    assert not thread.is_alive(), "the aggregator did not finish the round"
    assert fed.round(posted.task_id, 0).accepted == 2
    assert fed.task(posted.task_id).current_round == 1
    assert aggregator.state.refusals(0) == []
    transport.close()


@pytest.mark.slow
def test_an_aggregator_whose_clock_runs_ahead_waits_for_the_chain_s_window(anvil: AnvilProcess, w3: Web3,
                                                                          rabbitmq_url: str) -> None:
    """Its machine's clock says the collection window has passed; the chain's says not. The contract
    refuses the early publication: the aggregator neither dies nor proves again and again. It goes
    back to collecting, lets the chain's clock decide, and publishes once the window has passed."""
    posted, fed, clients, bundles = trained_clients(anvil, w3, rabbitmq_url, (5, 6))
    transport = RabbitMQTransport(rabbitmq_url)
    aggregator = Aggregator(fed, posted.task_id, account_from_key(KEYS[1]), transport)
    # An hour ahead of the chain's clock (which earlier tests may have moved ahead of the wall's).
    ahead = max(0.0, int(w3.eth.get_block("latest")["timestamp"]) - time.time()) + 3600
    aggregator.clock = lambda: time.time() + ahead
    clients[0].submit(bundles[0])
    delivery = transport.receive_submission(clients[0].queue_key, timeout=30)
    assert delivery is not None
    aggregator.handle(delivery)  # one of two participants accepted: the round closes only after its window
    assert not aggregator.maybe_close_round()  # proved, refused by the contract, collecting again
    saved = aggregator.state.round_state(0)
    assert saved is not None and saved["state"] == "collecting"
    assert fed.task(posted.task_id).current_round == 0
    assert not aggregator.maybe_close_round()  # the chain's clock decides now: nothing sent
    assert fed.task(posted.task_id).current_round == 0
    wait_out_collection_window(fed, posted.task_id, 0)
    assert aggregator.maybe_close_round()
    assert fed.task(posted.task_id).current_round == 1 and fed.round(posted.task_id, 0).accepted == 1
    transport.close()
