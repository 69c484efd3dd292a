"""The broker guarantees on the real RabbitMQ, and the whole demo over it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from zkfl.demo import DemoConfig, run_demo
from zkfl.middleware.transport.rabbitmq import RabbitMQTransport
from zkfl.status import TaskStatus


def test_confirmed_publish_ack_and_dead_letter_with_reason(rabbitmq_url: str) -> None:
    key = f"test.{uuid.uuid4().hex[:8]}.1"
    with RabbitMQTransport(rabbitmq_url) as producer, RabbitMQTransport(rabbitmq_url) as consumer:
        producer.publish_submission(key, b"good")
        producer.publish_submission(key, b"bad")
        first = consumer.receive_submission(key, timeout=5)
        assert first is not None and first.body == b"good"
        first.ack()
        second = consumer.receive_submission(key, timeout=5)
        assert second is not None and second.body == b"bad"
        second.reject("malformed JSON: expecting value")
        assert consumer.receive_submission(key, timeout=0.3) is None
        letters = consumer.dead_letters(key)
        assert [(d.body, d.reason) for d in letters] == [(b"bad", "malformed JSON: expecting value")]
        consumer.purge(key)


def test_unacked_message_is_redelivered(rabbitmq_url: str) -> None:
    key = f"test.{uuid.uuid4().hex[:8]}.1"
    with RabbitMQTransport(rabbitmq_url) as producer:
        producer.publish_submission(key, b"update")
    crashed = RabbitMQTransport(rabbitmq_url)
    assert crashed.receive_submission(key, timeout=5) is not None
    crashed.close()  # dies before acking
    with RabbitMQTransport(rabbitmq_url) as survivor:
        again = survivor.receive_submission(key, timeout=5)
        assert again is not None and again.body == b"update"
        again.ack()
        survivor.purge(key)


@pytest.mark.slow
def test_demo_over_rabbitmq_chains_proven_rounds_and_slashes_the_cheater(rabbitmq_url: str, tmp_path: Path) -> None:
    """The issue's full run: 4 clients (1 malicious), 3 rounds, over the real broker. Every
    round starts from the previous round's proven aggregate: no trusted step."""
    report_path = tmp_path / "report.json"
    result = run_demo(DemoConfig(clients=4, rounds=3, malicious=1, broker=rabbitmq_url, report=report_path,
                                 quiet=True))
    report = result.model_dump(mode="json")
    assert json.loads(report_path.read_text()) == report
    assert TaskStatus.model_validate(report).rounds == result.rounds  # the status record, as `task status` prints it
    rounds = report["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    honest = set(rounds[0]["accepted"])
    assert len(honest) == 3 and all(set(r["accepted"]) == honest for r in rounds)
    cheater = rounds[0]["rejected"][0]["wallet"]
    assert rounds[0]["rejected"][0]["reason"] == "submitted update is not the proof's output"
    assert report["slashed"] == [cheater]
    assert all(int(report["rewards"][w]) > 0 for w in honest)
    assert int(report["rewards"][cheater]) == 0
    assert all(r["global_commitment"].startswith("0x") and r["model_cid"].startswith("bafkrei") for r in rounds)
    for previous, current in zip(rounds, rounds[1:], strict=False):
        assert current["start_commitment"] == previous["global_commitment"]  # chained round to round
    for r in rounds:
        proof = r["aggregation_proof"]
        assert proof["verified_on_chain"] and proof["tx_hash"].startswith("0x") and proof["gas"] > 0
    assert rounds[-1]["accuracy"] > 0.85
    # Float FedAvg over the same accepted batches, from the same start: the proven run stays within a point.
    assert all(abs(r["accuracy"] - r["reference_accuracy"]) <= 0.01 for r in rounds), rounds
    assert all(len(r["verify_gas"]) == len(r["accepted"]) + len(r["rejected"]) for r in rounds)
    for key in ("chain_id", "contracts", "task_id"):
        assert key in report
    assert report["audit"]["ok"] and report["audit"]["rounds"] == {"0": "ok", "1": "ok", "2": "ok"}
    checks = {f["check"] for f in report["audit"]["findings"]}
    assert {"aggregation proof verifies off chain", "aggregation proof averages exactly the accepted updates"} <= checks
