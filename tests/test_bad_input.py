"""Bad input reaches the aggregator: each kind is refused with one clear reason, sent to
the dead-letter queue and recorded, and the good messages around it are still processed.
Then random mutations of valid messages: no crash, no loss."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from tests.conftest import post_logreg_task
from zkfl.aggregator.service import Aggregator
from zkfl.aggregator.state import AggregatorState
from zkfl.artifacts import ModelArtifact
from zkfl.contracts.chain import account_from_key, dev_keys
from zkfl.contracts.federation import Federation
from zkfl.datasets import load, shard
from zkfl.middleware.client import Client
from zkfl.middleware.messages import MAX_MESSAGE_BYTES, UpdateSubmission
from zkfl.middleware.transport.base import Delivery
from zkfl.middleware.transport.inprocess import InProcessTransport

KEYS = dev_keys()


class Recorded(Delivery):
    """A delivery that remembers what became of it."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.outcome: str | None = None

    def ack(self) -> None:
        assert self.outcome is None, "settled twice"
        self.outcome = "ack"

    def reject(self, reason: str) -> None:
        assert self.outcome is None, "settled twice"
        self.outcome = f"dead: {reason}"


@pytest.fixture(scope="module")
def scene(anvil, w3, tmp_path_factory):  # type: ignore[no-untyped-def]
    posted = post_logreg_task(w3)
    fed = Federation(w3, posted.federation)
    transport = InProcessTransport()
    clients = [Client(anvil.rpc_url, posted.task_id, KEYS[k], federation=posted.federation, transport=transport,
                      show_progress=False) for k in (3, 4, 5)]
    data = load("breast_cancer")
    submissions = []
    for index, client in enumerate(clients):
        client.join()
        submissions.append(client.build_submission(client.train(*shard(data, index + 1, 3))))
    state = AggregatorState(tmp_path_factory.mktemp("agg") / "state.sqlite")
    aggregator = Aggregator(fed, posted.task_id, account_from_key(KEYS[1]), transport, state=state)
    return aggregator, submissions


def body_of(s: UpdateSubmission, **changes: object) -> bytes:
    data = asdict(s)
    data.update(changes)
    return json.dumps(data).encode()


def test_each_bad_input_is_dead_lettered_with_its_reason(scene) -> None:  # type: ignore[no-untyped-def]
    aggregator, (good_a, good_b, spare) = scene
    stranger = Web3.to_checksum_address("0x" + "77" * 20)
    bad = {
        "malformed JSON": b'{"task_id": 1, "round":',
        "unsupported schema version": body_of(good_a, schema_version=99),
        "update has 3 values, the model has 31": body_of(good_a, update=[1, 2, 3]),
        "NaN or infinite": body_of(good_a).replace(b'"update": [', b'"update": [NaN, ', 1),
        "truncated or padded proof": body_of(good_a, proof=good_a.proof[: 2 + 2 * (len(good_a.proof_bytes) // 2)]),
        "not task": body_of(good_a, task_id=good_a.task_id + 1000),
        "unknown wallet": body_of(good_a, wallet=stranger),
        "over the": b"{" + b" " * (MAX_MESSAGE_BYTES + 1) + b"}",
    }
    outcomes = {}
    for reason, body in bad.items():
        delivery = Recorded(body)
        aggregator.handle(delivery)
        outcomes[reason] = delivery.outcome
    good = [Recorded(good_a.encode()), Recorded(good_b.encode())]
    for delivery in good:
        aggregator.handle(delivery)
    for reason, outcome in outcomes.items():
        assert outcome is not None and outcome.startswith("dead:") and reason in outcome, (reason, outcome)
    assert [d.outcome for d in good] == ["ack", "ack"]  # good messages around the bad ones are processed
    recorded = [reason for _, _, reason in aggregator.state.refusals()]
    assert len(recorded) == len(bad)
    assert {d.wallet for d in aggregator.state.accepted(0)} == {good_a.wallet.lower(), good_b.wallet.lower()}
    # A re-send of a processed submission is acked with no second effect.
    again = Recorded(good_a.encode())
    aggregator.handle(again)
    assert again.outcome == "ack" and len(aggregator.state.accepted(0)) == 2
    assert spare.wallet  # the third client's submission is used by the fuzz test


def _mutate(data: dict, key: str, value: object) -> bytes:  # type: ignore[type-arg]
    mutated = dict(data)
    mutated[key] = value
    return json.dumps(mutated).encode()


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20)
                           | st.floats(allow_nan=False), lambda children: st.lists(children, max_size=3), max_leaves=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_mutations_never_crash_or_lose_a_message(scene, data) -> None:  # type: ignore[no-untyped-def]
    aggregator, (_, _, spare) = scene
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
    delivery = Recorded(body)
    aggregator.handle(delivery)  # must not raise
    assert delivery.outcome is not None  # acked or dead-lettered: never dropped
    # Whatever the mutant, the spare client's real submission is still accepted once.
    if not aggregator.state.accepted(0) or spare.wallet.lower() not in {d.wallet for d in aggregator.state.accepted(0)}:
        return
    assert [d.wallet for d in aggregator.state.accepted(0)].count(spare.wallet.lower()) == 1


def test_the_spare_submission_is_still_accepted_after_the_fuzzing(scene) -> None:  # type: ignore[no-untyped-def]
    aggregator, (_, _, spare) = scene
    delivery = Recorded(spare.encode())
    aggregator.handle(delivery)
    assert delivery.outcome == "ack"
    assert spare.wallet.lower() in {d.wallet for d in aggregator.state.accepted(0)}
    unchanged = replace(spare)
    assert unchanged == spare


def test_large_updates_travel_by_cid_and_oversized_messages_are_refused_at_the_client(scene) -> None:  # type: ignore[no-untyped-def]
    from zkfl.errors import MessageError
    from zkfl.middleware.messages import decode_submission

    aggregator, (good_a, _, _) = scene
    client = Client(aggregator.federation.w3.provider.endpoint_uri, aggregator.task_id, KEYS[3],
                    federation=aggregator.federation.address, transport=InProcessTransport(), show_progress=False,
                    inline_update_values=10, max_message_bytes=2_000)
    # Rebuild client A's submission with a tiny inline limit: the update goes by CID.
    bundle_update = good_a.update
    assert len(bundle_update) > 10
    by_cid = replace(good_a, update=[], update_cid=ModelArtifact(client.spec.spec_hash(), good_a.update_scale,
                                                                   bundle_update).put(client.store))
    decoded = decode_submission(by_cid.encode())
    assert decoded.update == [] and decoded.update_cid == by_cid.update_cid
    delivery = Recorded(by_cid.encode())
    aggregator.handle(delivery)
    assert delivery.outcome == "ack"  # resolved from the store; A was already accepted: no second effect
    missing = Recorded(replace(good_a, update=[], update_cid="bafkrei" + "a" * 52).encode())
    aggregator.handle(missing)
    assert missing.outcome is not None and "cannot be fetched" in missing.outcome
    with pytest.raises(MessageError, match="over the 2000-byte limit"):
        client.submit(client.train(*shard(load("breast_cancer"), 1, 3)))
