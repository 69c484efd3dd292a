"""Plain Flower FedAvg beside zkfl's ZkFedAvg: the same model, clients, batches and rounds.

Four nodes of the Flower example (examples/flower/run.py) on Flower's simulation engine:
logreg on breast_cancer, one step of batch 16 per round, node 3 multiplying its update by
-10 (a poisoning client). Plain Flower trains in floats and averages every reply; ZkFedAvg
proves each step (ezkl), verifies every reply and averages the verified ones with zkfl's
integer FedAvg, proven. Per round: wall time (from the start of the round to the new model)
and held-out accuracy; per zkfl step: proof time. Medians over --repeats runs (default 3).
Writes bench/results/flower.json and prints a table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "flower.json"
sys.path.insert(0, str(ROOT / "examples" / "flower"))  # the example's own package, zkfl_flower_example
_spec = importlib.util.spec_from_file_location("flower_example", ROOT / "examples" / "flower" / "run.py")
assert _spec is not None and _spec.loader is not None
example = importlib.util.module_from_spec(_spec)
sys.modules["flower_example"] = example
_spec.loader.exec_module(example)
import ray.cloudpickle  # noqa: E402

ray.cloudpickle.register_pickle_by_value(example)  # Ray's workers cannot import the example by name

from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402
from flwr.simulation import run_simulation  # noqa: E402

from zkfl.circuits.registry import family  # noqa: E402
from zkfl.datasets import load, round_batch  # noqa: E402
from zkfl.field.quantize import Quantizer  # noqa: E402
from zkfl.flower import FlowerTask, ZkFedAvg, zk_client_app  # noqa: E402
from zkfl.flower.records import MODEL_KEY, int_arrays  # noqa: E402
from zkfl.organisation import PreparedTask, held_out_evaluator, prepare_task  # noqa: E402


def plain_client(prepared: PreparedTask) -> ClientApp:
    """Flower's own way: a float step on the node's batch, the poisoning node's scaled by -10."""
    spec = prepared.spec
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        theta = msg.content.array_records["arrays"]["model"].numpy()
        rnd = int(str(msg.content.config_records["config"]["server-round"])) - 1
        x, y = example.load_partition(context)
        xb, yb = round_batch(x, y, rnd, spec.batch)
        fam = family(spec.family)
        new = fam.float_step(spec, theta, xb, fam.encode_labels(spec, yb))
        if example.nodes.partition(context) == example.TAMPERER:
            new = -10 * new
        return Message(RecordDict({"arrays": ArrayRecord({"model": Array(np.asarray(new, dtype=np.float64))}),
                                   "metrics": MetricRecord({"num-examples": spec.batch})}), reply_to=msg)

    return app


class CountingFedAvg(FedAvg):
    """Flower's FedAvg, counting the replies it averaged (a failed node is silently skipped)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.averaged: list[int] = []

    def aggregate_train(self, server_round: int, replies: Any) -> Any:
        replies = list(replies)
        self.averaged.append(sum(not r.has_error() for r in replies))
        return super().aggregate_train(server_round, replies)


def timed_server(strategy: FedAvg, initial: ArrayRecord, rounds: int, evaluate: Any, out: dict[str, Any]) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        marks: list[float] = []
        accuracy: list[float] = []

        def evaluate_fn(rnd: int, arrays: ArrayRecord) -> MetricRecord:
            marks.append(time.monotonic())
            accuracy.append(evaluate(arrays))
            return MetricRecord({"accuracy": accuracy[-1]})

        strategy.start(grid=grid, initial_arrays=initial, num_rounds=rounds, evaluate_fn=evaluate_fn)
        # evaluate_fn runs before round 1 and after each round: the gaps are the rounds.
        out["round_s"] = [b - a for a, b in zip(marks, marks[1:], strict=False)]
        out["accuracy"] = accuracy[1:]

    return app


def simulate(server: ServerApp, client: ClientApp) -> None:
    with tempfile.TemporaryDirectory(prefix="zkfl-ray-", dir="/tmp") as ray_dir:
        run_simulation(server_app=server, client_app=client, num_supernodes=example.CLIENTS,
                       backend_config={"client_resources": {"num_cpus": 2, "num_gpus": 0.0},
                                       "init_args": {"num_cpus": 2, "include_dashboard": False,
                                                     "_temp_dir": ray_dir}})


def run_once(prepared: PreparedTask, rounds: int) -> dict[str, Any]:
    spec, data, fam = prepared.spec, load(example.DATASET), family(prepared.spec.family)
    quantizer = Quantizer(spec.scale)
    initial = quantizer.to_float(np.array(prepared.initial.values))

    def float_accuracy(arrays: ArrayRecord) -> float:
        theta = arrays["model"].numpy()
        return float(fam.loss_and_accuracy(spec, theta, data.x_test, data.y_test)[1])

    plain: dict[str, Any] = {}
    counting = CountingFedAvg(**example.FLOWER_OPTIONS)
    simulate(timed_server(counting, ArrayRecord({"model": Array(initial)}), rounds, float_accuracy, plain),
             plain_client(prepared))
    if counting.averaged != [example.CLIENTS] * rounds:
        raise SystemExit(f"plain Flower averaged {counting.averaged} replies a round, not {example.CLIENTS}")

    evaluator = held_out_evaluator(spec, example.DATASET)
    strategy = ZkFedAvg(FlowerTask.off_chain(prepared.package_cid), prepared.step, aggregation=prepared.aggregation,
                        **example.FLOWER_OPTIONS)
    zk: dict[str, Any] = {}
    simulate(timed_server(strategy, int_arrays(MODEL_KEY, prepared.initial.values), rounds,
                          lambda arrays: evaluator([int(v) for v in arrays[MODEL_KEY].numpy()])[1], zk),
             zk_client_app(example.load_partition, example.wallet_key, mods=[example.poison]))
    zk["rejected_per_round"] = [len(r.rejected) for r in strategy.rounds]
    if any(len(r.accepted) != example.CLIENTS - 1 for r in strategy.rounds):
        raise SystemExit(f"zkfl accepted {[len(r.accepted) for r in strategy.rounds]}: "
                         f"{[x.reason for r in strategy.rounds for x in r.rejected][:3]}")
    zk["verify_and_fedavg_s"] = [r.seconds for r in strategy.rounds]  # checks, FedAvg and its proof
    return {"plain": plain, "zkfl": zk}


def median_rows(runs: list[dict[str, Any]], rounds: int) -> list[dict[str, Any]]:
    rows = []
    for name in ("plain", "zkfl"):
        for r in range(rounds):
            rows.append({
                "strategy": "Flower FedAvg" if name == "plain" else "zkfl ZkFedAvg", "round": r + 1,
                "round_s": round(statistics.median(run[name]["round_s"][r] for run in runs), 2),
                "accuracy": round(statistics.median(run[name]["accuracy"][r] for run in runs), 4),
                "rejected": runs[0][name].get("rejected_per_round", [0] * rounds)[r],
            })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description="Plain Flower FedAvg beside zkfl's ZkFedAvg")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    prepared = prepare_task(example.MODEL, example.DATASET)  # built (or cached) outside the timings
    runs = [run_once(prepared, args.rounds) for _ in range(args.repeats)]
    rows = median_rows(runs, args.rounds)
    RESULTS.write_text(json.dumps({
        "setup": {"model": example.MODEL, "dataset": example.DATASET, "nodes": example.CLIENTS,
                  "poisoning_nodes": 1, "batch": prepared.spec.batch, "engine": "flower 1.32.1 simulation (Ray)",
                  "repeats": args.repeats, "machine": "2 cores"},
        "rows": rows, "runs": runs}, indent=2))
    print("strategy | round | round s | held-out accuracy | rejected")
    for row in rows:
        print(f"{row['strategy']} | {row['round']} | {row['round_s']} | {row['accuracy']} | {row['rejected']}")
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
