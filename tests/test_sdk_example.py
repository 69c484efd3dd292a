"""The README's SDK example runs as written, against anvil, RabbitMQ and a live aggregator."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from tests.conftest import post_logreg_task
from zkfl.aggregator.service import Aggregator
from zkfl.contracts.chain import AnvilProcess, account_from_key, dev_keys
from zkfl.contracts.federation import Federation
from zkfl.middleware.transport.rabbitmq import RabbitMQTransport

README = Path(__file__).resolve().parent.parent / "README.md"


def sdk_example() -> str:
    text = README.read_text()
    match = re.search(r"<!-- sdk-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert match, "the README lost its SDK example"
    return match.group(1)


@pytest.mark.slow
def test_readme_sdk_example_runs_as_written(anvil: AnvilProcess, w3, rabbitmq_url: str) -> None:  # type: ignore[no-untyped-def]
    keys = dev_keys()
    posted = post_logreg_task(w3)
    fed = Federation(w3, posted.federation)
    transport = RabbitMQTransport(rabbitmq_url)
    aggregator = Aggregator(fed, posted.task_id, account_from_key(keys[1]), transport)
    thread = threading.Thread(target=aggregator.run, daemon=True)
    thread.start()
    namespace = {"rpc_url": anvil.rpc_url, "task_id": posted.task_id, "key": keys[9],
                 "broker_url": rabbitmq_url, "stake": 2 * 10**17}
    exec(compile(sdk_example(), "README.md", "exec"), namespace)  # noqa: S102 - the point of the test
    thread.join(timeout=120)
    transport.close()
    wallet = account_from_key(keys[9]).address
    assert fed.round(posted.task_id, 0).accepted == 1
    assert fed.participant(posted.task_id, wallet).stake == 2 * 10**17
    assert fed.task(posted.task_id).current_round == 1
