"""Bad input reaches the aggregator through the real RabbitMQ: each kind is refused with
one clear reason, moved to the task's dead-letter queue (its reason in the
``x-zkfl-reason`` header) and recorded, and the good messages around it are still
processed. Then random mutations of valid messages: no crash, no loss, and the real
submission they were made from is accepted exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

import pika
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from tests.conftest import BROKER_URL, Observed, post_logreg_task
from zkfl.aggregator.service import Aggregator
from zkfl.aggregator.state import AggregatorState
from zkfl.artifacts import ModelArtifact
from zkfl.contracts.chain import account_from_key, dev_keys
from zkfl.contracts.federation import Federation, Status
from zkfl.datasets import load, shard
from zkfl.middleware.bundle import UpdateBundle
from zkfl.middleware.client import Client
from zkfl.middleware.messages import MAX_MESSAGE_BYTES, UpdateSubmission
from zkfl.middleware.transport.rabbitmq import REASON_HEADER, RabbitMQTransport, dead_queue, submissions_queue

KEYS = dev_keys()


class BrokerView:
    """A separate connection that looks at the task's queues the way an operator would."""

    def __init__(self, url: str, key: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.key = key

    def ready(self, queue: str) -> int:
        return int(self.channel.queue_declare(queue, passive=True).method.message_count)

    def take_dead(self) -> list[tuple[bytes, pika.BasicProperties]]:
        """Consume the dead-letter queue: every message with its properties, oldest first."""
        letters = []
        while True:
            method, props, body = self.channel.basic_get(dead_queue(self.key), auto_ack=False)
            if method is None:
                return letters
            letters.append((bytes(body), props))
            self.channel.basic_ack(method.delivery_tag)

    def close(self) -> None:
        self.connection.close()


@dataclass
class Scene:
    rpc: str
    fed: Federation
    task_id: int
    key: str
    aggregator: Aggregator
    producer: RabbitMQTransport
    view: BrokerView
    clients: list[Client]
    bundles: list[UpdateBundle]
    submissions: list[UpdateSubmission]

    def publish(self, *bodies: bytes) -> None:
        for body in bodies:
            self.producer.publish_submission(self.key, body)  # returns on the broker's confirm

    def consume(self, count: int) -> list[Observed]:
        """Let the aggregator take and handle exactly ``count`` messages from the broker."""
        handled = []
        for _ in range(count):
            delivery = self.aggregator.transport.receive_submission(self.key, timeout=30)
            assert delivery is not None, f"the broker delivered {len(handled)} of {count} messages"
            observed = Observed(delivery)
            self.aggregator.handle(observed)  # must not raise
            handled.append(observed)
        return handled

    def assert_nothing_left_unsettled(self) -> None:
        """No message is left in the work queue, nor held unacked by the aggregator: its
        connection is closed (the broker would requeue what it held) and the queue is empty."""
        self.aggregator.transport.close()
        self.aggregator.transport = RabbitMQTransport(self.producer.url)
        assert self.view.ready(submissions_queue(self.key)) == 0

    def accepted_events(self, wallet: str) -> int:
        return sum(1 for e in self.fed.events("UpdateAccepted", self.task_id)
                   if str(e["args"]["participant"]).lower() == wallet.lower())


@pytest.fixture(scope="module")
def scene(anvil, w3, tmp_path_factory) -> Iterator[Scene]:  # type: ignore[no-untyped-def]
    RabbitMQTransport(BROKER_URL).close()  # the real broker: absent, the tests fail (never skip)
    posted = post_logreg_task(w3)
    fed = Federation(w3, posted.federation)
    clients = [Client(anvil.rpc_url, posted.task_id, KEYS[k], BROKER_URL, federation=posted.federation,
                      show_progress=False) for k in (3, 4, 5)]
    data = load("breast_cancer")
    bundles, submissions = [], []
    for index, client in enumerate(clients):
        client.join()
        bundles.append(client.train(*shard(data, index + 1, 3)))
        submissions.append(client.build_submission(bundles[-1]))
    state = AggregatorState(tmp_path_factory.mktemp("agg") / "state.sqlite")
    aggregator = Aggregator(fed, posted.task_id, account_from_key(KEYS[1]), RabbitMQTransport(BROKER_URL),
                            state=state)
    key = aggregator.queue_key
    assert key == clients[0].queue_key
    producer = RabbitMQTransport(BROKER_URL)
    producer._declare(key)  # the task's topology, as the first client or the aggregator declares it
    view = BrokerView(BROKER_URL, key)
    yield Scene(anvil.rpc_url, fed, posted.task_id, key, aggregator, producer, view, clients, bundles, submissions)
    for transport in (aggregator.transport, producer):
        transport.close()
    view.close()


def body_of(s: UpdateSubmission, **changes: object) -> bytes:
    data = asdict(s)
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.slow
def test_each_bad_input_is_dead_lettered_with_its_reason(scene: Scene) -> None:
    good_a, good_b, _ = scene.submissions
    stranger = Web3.to_checksum_address("0x" + "77" * 20)
    altered = [good_a.update[0] + 1, *good_a.update[1:]]
    # Expected reason (a part of it) -> the bad message. Every one is made from A's real
    # submission, and reaches the aggregator before A's own.
    bad = {
        "malformed JSON": b'{"task_id": 1, "round":',
        "unsupported schema version": body_of(good_a, schema_version=99),
        "update has 3 values, the model has 31": body_of(good_a, update=[1, 2, 3]),
        "NaN or infinite": body_of(good_a).replace(b'"update": [', b'"update": [NaN, ', 1),
        "truncated or padded proof": body_of(good_a, proof=good_a.proof[: 2 + 2 * (len(good_a.proof_bytes) // 2)]),
        "not task": body_of(good_a, task_id=good_a.task_id + 1000),
        "unknown wallet": body_of(good_a, wallet=stranger),
        "over the": b"{" + b" " * (MAX_MESSAGE_BYTES + 1) + b"}",
        "submission is for round 1, but round 0 is open": body_of(good_a, round=1),
        # Past the contract's types: this crashed the consumer (web3's ABI encoder) on every redelivery.
        "task_id, round or num_samples out of range": body_of(good_a, round=2**256),
        "update does not match its signed commitment": body_of(good_a, update=altered),
        # B's signature on A's submission: relayed, refused by the contract (BadSignature), nobody slashed.
        "chain refused the submission: transaction reverted: BadSignature":
            body_of(good_a, signature=good_b.signature),
    }
    assert len(set(bad.values())) == len(bad)
    bodies = list(bad.values())
    half = len(bodies) // 2
    sequence = [*bodies[:half], good_b.encode(), *bodies[half:], good_a.encode(), good_a.encode()]
    assert scene.view.take_dead() == []  # a new task's dead-letter queue: empty

    scene.publish(*sequence)
    assert scene.view.ready(submissions_queue(scene.key)) == len(sequence)  # all of them reached the broker
    handled = scene.consume(len(sequence))
    assert [d.body for d in handled] == sequence  # delivered in order, each once
    scene.assert_nothing_left_unsettled()

    refused = handled[:half] + handled[half + 1 : -2]
    for reason, delivery in zip(bad, refused, strict=True):
        outcome = delivery.outcome
        assert outcome is not None and outcome.startswith("dead:") and reason in outcome, (reason, outcome)
    # The good messages around the bad ones are processed: B and A relayed and accepted,
    # and A's re-send acked with no second effect.
    assert [handled[half].outcome, handled[-2].outcome, handled[-1].outcome] == ["ack", "ack", "ack"]
    for good in (good_a, good_b):
        assert scene.fed.submission_status(scene.task_id, 0, good.wallet)[0] == Status.ACCEPTED
        assert scene.accepted_events(good.wallet) == 1
        assert not scene.fed.participant(scene.task_id, good.wallet).slashed
    assert scene.fed.round(scene.task_id, 0).accepted == 2
    assert {d.wallet for d in scene.aggregator.state.accepted(0)} == {good_a.wallet.lower(), good_b.wallet.lower()}

    # The dead-letter queue holds exactly one message per bad input, byte for byte, with its reason.
    expected = sorted((d.body, str(d.outcome).removeprefix("dead: ")) for d in refused)
    browsed = scene.aggregator.transport.dead_letters(scene.key)  # the transport's own (non-destructive) view
    assert sorted((letter.body, letter.reason) for letter in browsed) == expected
    letters = scene.view.take_dead()  # and as an operator reads them: the reason header on each
    assert sorted((body, (props.headers or {}).get(REASON_HEADER)) for body, props in letters) == expected
    assert all(props.delivery_mode == pika.DeliveryMode.Persistent.value for _, props in letters)
    # And the refusal table says the same, in order.
    recorded = [reason for _, _, reason in scene.aggregator.state.refusals()]
    assert len(recorded) == len(bad)
    assert all(expected in got for expected, got in zip(bad, recorded, strict=True)), recorded


def _mutate(data: dict, key: str, value: object) -> bytes:  # type: ignore[type-arg]
    mutated = dict(data)
    mutated[key] = value
    return json.dumps(mutated).encode()


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20)
                           | st.floats(allow_nan=False), lambda children: st.lists(children, max_size=3), max_leaves=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_mutations_never_crash_or_lose_a_message(scene: Scene, data) -> None:  # type: ignore[no-untyped-def]
    spare = scene.submissions[2]
    fields = list(asdict(spare))
    kind = data.draw(st.sampled_from(["field", "bytes", "truncate"]))
    base = spare.encode()
    if kind == "field":
        body = _mutate(asdict(spare), data.draw(st.sampled_from(fields)), data.draw(JSON_VALUES))
    elif kind == "bytes":
        position = data.draw(st.integers(0, len(base) - 1))
        body = base[:position] + data.draw(st.binary(min_size=1, max_size=8)) + base[position + 1 :]
    else:
        body = base[: data.draw(st.integers(0, len(base) - 1))]
    scene.view.take_dead()  # start from an empty dead-letter queue
    # The mutant, then the spare client's real submission, through the broker.
    scene.publish(body, base)
    mutant, real = scene.consume(2)
    assert scene.view.ready(submissions_queue(scene.key)) == 0
    assert mutant.outcome is not None  # acked or dead-lettered: never dropped
    dead = scene.view.take_dead()
    if mutant.outcome == "ack":
        assert dead == []
    else:  # dead-lettered: the very bytes, with the reason the aggregator gave
        assert [(b, (p.headers or {}).get(REASON_HEADER)) for b, p in dead] == [
            (body, mutant.outcome.removeprefix("dead: "))]
    # Whatever the mutant, the spare client's real submission is accepted, exactly once.
    assert real.outcome == "ack"
    assert scene.fed.submission_status(scene.task_id, 0, spare.wallet)[0] == Status.ACCEPTED
    assert not scene.fed.participant(scene.task_id, spare.wallet).slashed
    assert [d.wallet for d in scene.aggregator.state.accepted(0)].count(spare.wallet.lower()) == 1
    assert scene.accepted_events(spare.wallet) == 1


def test_the_spare_submission_is_accepted_once_however_often_it_is_sent(scene: Scene) -> None:
    spare = scene.submissions[2]
    stake = scene.fed.task(scene.task_id).min_stake
    scene.publish(spare.encode(), spare.encode(), spare.encode())
    handled = scene.consume(3)
    scene.assert_nothing_left_unsettled()
    assert [d.outcome for d in handled] == ["ack", "ack", "ack"]
    assert scene.view.take_dead() == []
    assert scene.accepted_events(spare.wallet) == 1  # one effect on chain, however many copies
    decisions = [d for d in scene.aggregator.state.decisions(0) if d.wallet == spare.wallet.lower()]
    assert len(decisions) == 1 and decisions[0].status == "accepted"
    assert decisions[0].update_values == spare.update
    participant = scene.fed.participant(scene.task_id, spare.wallet)
    assert participant.stake == stake and not participant.slashed and participant.accepted_updates == 1


def test_large_updates_travel_by_cid_and_oversized_messages_are_refused_at_the_client(scene: Scene) -> None:
    from zkfl.errors import MessageError
    from zkfl.middleware.messages import decode_submission

    good_a = scene.submissions[0]
    client = Client(scene.rpc, scene.task_id, KEYS[3], BROKER_URL, federation=scene.fed.address,
                    show_progress=False, inline_update_values=10, max_message_bytes=2_000)
    # A's submission with its update sent by CID (through the content store), as a client
    # with a tiny inline limit sends it.
    assert len(good_a.update) > 10
    by_cid = replace(good_a, update=[], update_cid=ModelArtifact(client.spec.spec_hash(), good_a.update_scale,
                                                                   good_a.update).put(client.store))
    decoded = decode_submission(by_cid.encode())
    assert decoded.update == [] and decoded.update_cid == by_cid.update_cid
    unknown_cid = replace(good_a, update=[], update_cid="bafkrei" + "a" * 52)
    scene.view.take_dead()
    scene.publish(by_cid.encode(), unknown_cid.encode())
    resolved, missing = scene.consume(2)
    scene.assert_nothing_left_unsettled()
    assert resolved.outcome == "ack"  # resolved from the store: accepted (or adopted if A already was), once
    assert scene.fed.submission_status(scene.task_id, 0, good_a.wallet)[0] == Status.ACCEPTED
    assert scene.accepted_events(good_a.wallet) == 1
    [stored] = [d for d in scene.aggregator.state.accepted(0) if d.wallet == good_a.wallet.lower()]
    assert stored.update_values == good_a.update
    assert missing.outcome is not None and "cannot be fetched" in missing.outcome
    [(body, props)] = scene.view.take_dead()
    assert body == unknown_cid.encode() and "cannot be fetched" in (props.headers or {})[REASON_HEADER]
    # Malformed artifacts under a CID, from a joined wallet and from a stranger: each used to crash the
    # aggregator on every redelivery (KeyError, ValueError, OverflowError). Now each is dead-lettered.
    poisons = {
        "no values": {"schema": "zkfl.model/1", "spec_hash": client.spec.spec_hash(), "scale": good_a.update_scale},
        "not numbers": {"schema": "zkfl.model/1", "spec_hash": "x", "scale": good_a.update_scale, "values": ["x"]},
        "past 64 bits": {"schema": "zkfl.model/1", "spec_hash": "x", "scale": good_a.update_scale,
                         "values": [2**70] * len(good_a.update)},
    }
    bodies = [replace(good_a, update=[], update_cid=client.store.put_json(p)).encode() for p in poisons.values()]
    bodies.append(replace(good_a, wallet=Web3.to_checksum_address("0x" + "ab" * 20), update=[],
                          update_cid=client.store.put_json(poisons["no values"])).encode())
    scene.publish(*bodies)
    outcomes = scene.consume(len(bodies))
    scene.assert_nothing_left_unsettled()
    assert all(o.outcome is not None and o.outcome != "ack" for o in outcomes), [o.outcome for o in outcomes]
    assert "unknown wallet" in str(outcomes[-1].outcome)  # the sender is checked before anything is fetched
    assert [body for body, _ in scene.view.take_dead()] == bodies
    assert scene.accepted_events(good_a.wallet) == 1
    # Too big for the client's limit even by CID (the proof alone is): refused before it is sent.
    # (The dry run is skipped: A's round-0 submission is already decided; the size is what is checked.)
    with pytest.raises(MessageError, match="over the 2000-byte limit"):
        client.submit(scene.bundles[0], preflight=False)
    assert scene.view.ready(submissions_queue(scene.key)) == 0
