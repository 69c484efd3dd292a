"""Accuracy: the proven federation beside float FedAvg, same splits, batches and rounds.

4 clients, each on its shard; per round each client runs the task's step on its next
batch. Proven side: the compiled circuit's output (ezkl witness, what a proof attests)
and integer FedAvg. Float side: the same step in float64 and float FedAvg. Writes
bench/results/accuracy.json and prints a table.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from zkfl.simulation import compare

RESULTS = Path(__file__).resolve().parent / "results" / "accuracy.json"
CASES = [("logreg", "breast_cancer", 10), ("softmax", "digits", 20), ("mlp", "digits", 20)]


def main() -> int:
    rows = []
    for model, dataset, rounds in CASES:
        result = compare(model, dataset, clients=4, rounds=rounds)
        row = asdict(result)
        row["gap_points"] = round(result.gap_points, 2)
        rows.append(row)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"clients": 4, "results": rows}, indent=2))
    print("model | dataset | rounds | batch | proven acc | float acc | gap (points) | max weight gap")
    for r in rows:
        print(f"{r['model']} | {r['dataset']} | {r['rounds']} | {r['batch']} | {r['proven_accuracy'][-1]:.4f} | "
              f"{r['float_accuracy'][-1]:.4f} | {r['gap_points']:+.2f} | {r['max_weight_gap']:.2e}")
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
