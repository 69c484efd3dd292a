"""Broker throughput and end-to-end latency, on the real RabbitMQ.

- Publish throughput with publisher confirms (persistent messages, durable quorum
  queue), at 10 KB and 1 MB, median of 3 runs.
- Consume throughput (manual acks).
- Submit -> accepted latency: a client's `submit` until the aggregator has the chain's
  decision stored, with real logreg proofs (median and p95).

Writes bench/results/broker.json and prints a table.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "broker.json"
BROKER = os.environ.get("ZKFL_BROKER", "amqp://guest:guest@127.0.0.1:5672/%2F")


def throughput(size: int, count: int) -> dict[str, float]:
    from zkfl.middleware.transport.rabbitmq import RabbitMQTransport

    publish, consume = [], []
    body = os.urandom(size)
    for _ in range(3):
        key = f"bench.{uuid.uuid4().hex[:8]}"
        with RabbitMQTransport(BROKER) as transport:
            transport.publish_submission(key, body)  # declare the topology outside the timing
            transport.receive_submission(key, 5).ack()
            start = time.perf_counter()
            for _ in range(count):
                transport.publish_submission(key, body)
            publish.append(count / (time.perf_counter() - start))
            start, received = time.perf_counter(), 0
            while received < count and (delivery := transport.receive_submission(key, 2.0)) is not None:
                delivery.ack()
                received += 1
            consume.append(received / (time.perf_counter() - start))
            transport.purge(key)
    return {"payload_bytes": size, "messages": count, "publish_per_s": round(statistics.median(publish)),
            "consume_per_s": round(statistics.median(consume))}


def latency(submissions: int) -> dict[str, float]:
    from zkfl.aggregator.service import Aggregator
    from zkfl.contracts.chain import account_from_key, connect, dev_keys, start_anvil
    from zkfl.contracts.federation import Federation
    from zkfl.datasets import load, shard
    from zkfl.middleware.client import Client
    from zkfl.middleware.transport.rabbitmq import RabbitMQTransport
    from zkfl.organisation import post_task

    keys = dev_keys()
    times = []
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        posted = post_task(w3, account_from_key(keys[0]), model="logreg", dataset="breast_cancer", rounds=1,
                           reward_wei=10**18, min_stake_wei=10**16, deadline_seconds=3600,
                           aggregator=account_from_key(keys[1]).address)
        fed = Federation(w3, posted.federation)
        transport = RabbitMQTransport(BROKER)
        aggregator = Aggregator(fed, posted.task_id, account_from_key(keys[1]), transport)
        stop = threading.Event()
        worker = threading.Thread(target=aggregator.run, args=(stop,), daemon=True)
        worker.start()
        data = load("breast_cancer")
        clients = [Client(anvil.rpc_url, posted.task_id, keys[2 + i], BROKER, federation=posted.federation,
                          show_progress=False) for i in range(submissions)]
        bundles = []
        for i, client in enumerate(clients):
            client.join()
            bundles.append(client.train(*shard(data, i + 1, submissions)))
        for client, bundle in zip(clients, bundles, strict=True):
            start = time.perf_counter()
            client.submit(bundle)
            while not any(d.wallet == client.address.lower() for d in aggregator.state.decisions(0)):
                time.sleep(0.005)
            times.append(time.perf_counter() - start)
        stop.set()
        worker.join(timeout=30)
        transport.close()
    times.sort()
    return {"submissions": submissions, "median_ms": round(1000 * statistics.median(times), 1),
            "p95_ms": round(1000 * times[min(len(times) - 1, int(0.95 * len(times)))], 1)}


def main() -> int:
    rows = [throughput(10_000, 2000), throughput(1_000_000, 100)]
    end_to_end = latency(6)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"broker": "RabbitMQ 3.10 on 127.0.0.1", "client": "pika BlockingConnection",
                                   "confirms": "one publisher confirm awaited per message",
                                   "throughput": rows, "submit_to_accepted": end_to_end}, indent=2))
    print("payload | publish/s (confirmed) | consume/s")
    for row in rows:
        print(f"{row['payload_bytes']:,} B | {row['publish_per_s']:,} | {row['consume_per_s']:,}")
    print(f"submit -> accepted (real proof, on-chain verification): median {end_to_end['median_ms']} ms, "
          f"p95 {end_to_end['p95_ms']} ms over {end_to_end['submissions']}")
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
