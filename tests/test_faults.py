"""Crashes on the real parts: the aggregator SIGKILLed at its worst moments, on anvil
and RabbitMQ with real proofs, then restarted: nothing lost, nothing counted twice,
and the same global model as a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
from web3 import Web3

from tests.conftest import post_logreg_task
from zkfl.aggregator.fedavg import fedavg
from zkfl.aggregator.state import AggregatorState, default_path
from zkfl.contracts.chain import AnvilProcess, account_from_key, dev_keys
from zkfl.contracts.federation import Federation, Status
from zkfl.datasets import load, shard
from zkfl.middleware.client import Client
from zkfl.prover.commit import commit, commitment_hex

KEYS = dev_keys()


def start_aggregator(rpc: str, task_id: int, broker: str, **pauses: float) -> subprocess.Popen[bytes]:
    env = os.environ.copy()
    for name, seconds in pauses.items():
        env[f"ZKFL_TEST_PAUSE_{name.upper()}"] = str(seconds)
    return subprocess.Popen([sys.executable, "-m", "zkfl.cli", "aggregator", "run", "--rpc", rpc, "--task",
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


def trained_clients(anvil: AnvilProcess, w3: Web3, broker: str, keys: tuple[int, ...]):  # type: ignore[no-untyped-def]
    """A fresh one-round task, and clients (dev keys ``keys``) that joined and trained on it."""
    posted = post_logreg_task(w3)
    data = load("breast_cancer")
    clients = [Client(anvil.rpc_url, posted.task_id, KEYS[k], broker, federation=posted.federation,
                      show_progress=False) for k in keys]
    bundles = []
    for index, client in enumerate(clients):
        client.join()
        bundles.append(client.train(*shard(data, index + 1, 2)))
    return posted, Federation(w3, posted.federation), clients, bundles


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


def test_broker_restart_mid_round_processes_every_submission_once(anvil: AnvilProcess, w3: Web3,
                                                                   rabbitmq_url: str) -> None:
    import threading

    from zkfl.aggregator.service import Aggregator
    from zkfl.middleware.transport.rabbitmq import RabbitMQTransport

    posted, fed, clients, bundles = trained_clients(anvil, w3, rabbitmq_url, (5, 6))
    transport = RabbitMQTransport(rabbitmq_url)
    aggregator = Aggregator(fed, posted.task_id, account_from_key(KEYS[1]), transport)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            aggregator.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    clients[0].submit(bundles[0])
    deadline = time.monotonic() + 120
    while fed.submission_status(posted.task_id, 0, clients[0].address)[0] != Status.ACCEPTED:
        assert time.monotonic() < deadline and not failure, failure
        time.sleep(0.2)
    restart_broker()  # both the aggregator's and the client's connections die here
    clients[1].submit(bundles[1])  # reconnects, publishes, waits for the confirm
    clients[0].submit(bundles[0])  # a re-send of an already decided submission: no second effect
    thread.join(timeout=180)
    assert not failure, failure
    assert not thread.is_alive(), "the aggregator did not finish the round"
    assert fed.round(posted.task_id, 0).accepted == 2
    assert fed.task(posted.task_id).current_round == 1
    decisions = aggregator.state.decisions(0)
    assert sorted(d.wallet for d in decisions) == sorted(c.address.lower() for c in clients)
    assert aggregator.state.refusals(0) == []
    transport.close()


def test_connection_dropped_between_publish_and_confirm_then_retried_has_one_effect(
        anvil: AnvilProcess, w3: Web3, rabbitmq_url: str) -> None:
    import socket
    import threading

    import pika

    from zkfl.aggregator.service import Aggregator
    from zkfl.middleware.transport.rabbitmq import SUBMISSION_KEY, RabbitMQTransport, exchange_name

    posted, fed, [client], [bundle] = trained_clients(anvil, w3, rabbitmq_url, (4,))
    body = client.build_submission(bundle).encode()
    RabbitMQTransport(rabbitmq_url)._declare(client.queue_key)  # the topology exists, as in any live task

    # The first attempt: published, then the TCP connection is cut before a confirm could
    # come back. The client cannot know whether the broker has the message.
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    channel.basic_publish(exchange_name(client.queue_key), SUBMISSION_KEY, body,
                          properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent))
    raw = connection._impl._transport._sock  # pika's socket: cut it as a network failure would
    raw.shutdown(socket.SHUT_RDWR)
    raw.close()
    # So it retries, this time with a confirm.
    client.submit(bundle)

    transport = RabbitMQTransport(rabbitmq_url)
    aggregator = Aggregator(fed, posted.task_id, account_from_key(KEYS[1]), transport)
    thread = threading.Thread(target=aggregator.run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    while (delivery := transport.receive_submission(client.queue_key, timeout=1.0)) is not None:
        aggregator.handle(delivery)  # whatever copies remain
    transport.close()
    assert fed.round(posted.task_id, 0).accepted == 1
    assert [d.wallet for d in aggregator.state.decisions(0)] == [client.address.lower()]
    assert aggregator.state.refusals(0) == []
    assert fed.task(posted.task_id).current_round == 1
