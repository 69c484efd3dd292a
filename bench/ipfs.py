"""Artifacts over IPFS: what moving them between parties costs, on real Helia nodes.

For artifact sizes from a model (1 KB) to a large SRS (32 MiB): the producer's `put` (CID
computed, added to its node), and a consumer's first `get` (every block fetched and
checked) through its own node peered with the producer's, and through the producer's
gateway only (an auditor). Median of 5 runs each, on 127.0.0.1.

Writes bench/results/ipfs.json and prints a table.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "ipfs.json"
SIZES = {"1 KB (a model)": 1_000, "1 MiB": 1 << 20, "4 MiB (step SRS)": 4 << 20, "32 MiB": 32 << 20}
RUNS = 5


def measure(size: int, root: Path, producer_api: str, consumer_api: str, gateway: str) -> dict[str, float]:
    from zkfl.ipfs.config import IpfsConfig
    from zkfl.ipfs.store import IpfsStore
    from zkfl.store import LocalStore

    timings: dict[str, list[float]] = {"put_s": [], "get_via_own_node_s": [], "get_via_gateway_s": []}
    for run in range(RUNS):
        data = os.urandom(size)
        producer = IpfsStore(IpfsConfig(api=producer_api), LocalStore(root / f"p{size}-{run}"))
        start = time.perf_counter()
        cid = producer.put(data)
        timings["put_s"].append(time.perf_counter() - start)
        for key, config in (("get_via_own_node_s", IpfsConfig(api=consumer_api)),
                            ("get_via_gateway_s", IpfsConfig(gateways=(gateway,)))):
            consumer = IpfsStore(config, LocalStore(root / f"{key}{size}-{run}"))
            start = time.perf_counter()
            assert consumer.get(cid) == data
            timings[key].append(time.perf_counter() - start)
    return {key: round(statistics.median(values), 4) for key, values in timings.items()}


def main() -> int:
    from zkfl.ipfs.node import start_ipfs_node

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with start_ipfs_node(root / "a") as a, start_ipfs_node(root / "b", peers=[a.addresses[0]]) as b:
            for label, size in SIZES.items():
                rows[label] = {"bytes": size, **measure(size, root, a.api_url, b.api_url, a.gateway_url)}
    result = {"runs": RUNS, "node": "helia 7.1.15 (zkfl/ipfs/node.mjs), two nodes on 127.0.0.1", "sizes": rows}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'artifact':<18} {'put':>8} {'get (own node)':>15} {'get (gateway)':>14}")
    for label, row in rows.items():
        own, gateway = row["get_via_own_node_s"], row["get_via_gateway_s"]
        print(f"{label:<18} {row['put_s']:>7.3f}s {own:>14.3f}s {gateway:>13.3f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
