"""The ServerApp for Flower's deployment engine (`flwr run`): ZkFedAvg, off chain. Writes the
JSON report to the run config's `report` path."""

from __future__ import annotations

import json
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from zkfl.flower import FlowerTask, ZkFedAvg
from zkfl.flower.records import MODEL_KEY, int_arrays, int_values
from zkfl.organisation import held_out_evaluator, prepare_task
from zkfl_flower_example.nodes import DATASET, MODEL

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    nodes, rounds = int(context.run_config["nodes"]), int(context.run_config["num-server-rounds"])
    prepared = prepare_task(MODEL, DATASET)  # the organisation's circuits and package (cached in ZKFL_HOME)
    strategy = ZkFedAvg(FlowerTask.off_chain(prepared.package_cid), prepared.step, aggregation=prepared.aggregation,
                        evaluator=held_out_evaluator(prepared.spec, DATASET), fraction_evaluate=0.0,
                        min_train_nodes=nodes, min_available_nodes=nodes)
    result = strategy.start(grid=grid, initial_arrays=int_arrays(MODEL_KEY, prepared.initial.values),
                            num_rounds=rounds)
    final = int_values(result.arrays, MODEL_KEY) if len(result.arrays) else prepared.initial.values
    report = {"engine": "flower-deployment", "rounds": [r.to_json() for r in strategy.rounds], "final_model": final,
              "initial_model": prepared.initial.values, "update_scale": prepared.step.update_scale,
              "model_scale": prepared.spec.scale}
    for r in report["rounds"]:
        print(f"round {r['round']}: accepted {r['accepted']}, rejected {r['rejected']}", flush=True)
    Path(str(context.run_config["report"])).write_text(json.dumps(report))
