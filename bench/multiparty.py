"""What each party's commands cost when every party is on its own machine.

Runs `zkfl demo --ipfs`'s federation (zkfl/multiparty.py): organisation, 3 participants
(one forging its update), aggregator and auditor, each a process with its own home and
(but the auditor) its own Helia node, on anvil mining every 2 s. A fresh home has no cache:
the organisation builds both circuits and the SRS, each participant rebuilds its proving
key from the package it fetched by CID, the auditor its verifying keys.

Writes bench/results/multiparty.json (seconds per command, per role; one run) and prints a table.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "multiparty.json"


def main() -> int:
    from zkfl.multiparty import MultiPartyConfig, run_multiparty

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = run_multiparty(MultiPartyConfig(workdir=Path(tmp), block_time=2, chain_id=4242))
        total = time.perf_counter() - start
    by_command: dict[str, list[float]] = {}
    for role, runs in report["seconds"].items():
        for command, seconds in runs:
            by_command.setdefault(f"{role.split('-')[0]}: {command}", []).append(seconds)
    rows = {k: {"median_s": round(statistics.median(v), 1), "runs": len(v)} for k, v in by_command.items()}
    result = {"total_s": round(total, 1), "audit_passed": report["audit"]["exit"] == 0,
              "chain": "anvil --block-time 2, chain id 4242", "commands": rows}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'role: command':<36} {'median':>8} {'runs':>5}")
    for key, row in rows.items():
        print(f"{key:<36} {row['median_s']:>7.1f}s {row['runs']:>5}")
    print(f"whole federation, 2 rounds: {total:.0f} s; audit {'passed' if result['audit_passed'] else 'FAILED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
