"""A Flower app made verifiable with zkfl: 3 honest clients and 1 that tampers, in Flower's
simulation engine (Ray) on this machine.

    python examples/flower/run.py --report report.json [--rounds 2] [--chain]

The ServerApp runs zkfl's ZkFedAvg where a Flower app runs FedAvg; the ClientApp is
zk_client_app around a function that loads the node's partition of breast_cancer. Node 3
carries a Flower mod that poisons its reply: it multiplies its proven update by -10 and signs
the result with its own wallet, so the signature is good but the update is not the proof's
output. ZkFedAvg rejects it every round, with the reason; the honest three are averaged with
zkfl's integer FedAvg, and the average is proven with the task's FedAvg circuit. Prints each
round and writes a JSON report (rounds[]: round, accepted, rejected[{client, reason}], accuracy).

With --chain the task is posted on a local anvil chain and the four wallets join it with a
stake: each node reads the round's model from the chain and dry-runs its submission before
replying, ZkFedAvg relays the replies to the Federation (which verifies every proof, and
rejects and slashes the tamperer), and zkfl's Aggregator proves and publishes each round.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Nothing leaves the machine: Flower's telemetry and update check off before flwr loads.
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

import ray.cloudpickle  # noqa: E402
from eth_account import Account  # noqa: E402
from flwr.app import Context  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.simulation import run_simulation  # noqa: E402
from zkfl_flower_example import nodes  # noqa: E402
from zkfl_flower_example.nodes import DATASET, KEYS, MODEL, load_partition, poison, wallet_key  # noqa: E402

from zkfl.aggregator.service import Aggregator  # noqa: E402
from zkfl.artifacts import ModelArtifact, TaskPackage  # noqa: E402
from zkfl.contracts.chain import account_from_key, connect, dev_keys, start_anvil  # noqa: E402
from zkfl.contracts.federation import Federation  # noqa: E402
from zkfl.flower import FlowerTask, ZkFedAvg, zk_client_app  # noqa: E402
from zkfl.flower.records import MODEL_KEY, int_arrays, int_values  # noqa: E402
from zkfl.middleware.client import Client  # noqa: E402
from zkfl.middleware.transport.inprocess import InProcessTransport  # noqa: E402
from zkfl.organisation import held_out_evaluator, post_task, prepare_task  # noqa: E402
from zkfl.store import open_store  # noqa: E402

CLIENTS = 4
TAMPERER = CLIENTS - 1  # the poisoning node (zkfl_flower_example.nodes.poison)
# Ray's workers cannot import the example's own package by name: send its functions by value.
ray.cloudpickle.register_pickle_by_value(nodes)


def node_rpc(context: Context) -> str:
    """The node's own RPC endpoint (here the example's anvil, passed to Ray's workers by env)."""
    return os.environ["ZKFL_FLOWER_RPC"]


def server_app(strategy: ZkFedAvg, initial: list[int], rounds: int, out: dict[str, Any]) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        result = strategy.start(grid=grid, initial_arrays=int_arrays(MODEL_KEY, initial), num_rounds=rounds)
        # Flower's Result holds the last aggregated model (none if no round accepted anything).
        final = int_values(result.arrays, MODEL_KEY) if len(result.arrays) else initial
        out["rounds"], out["final_model"] = strategy.rounds, final

    return app


def off_chain(rounds: int) -> dict[str, Any]:
    prepared = prepare_task(MODEL, DATASET)  # the organisation's side: circuits, keys, package (cached)
    strategy = ZkFedAvg(FlowerTask.off_chain(prepared.package_cid), prepared.step, aggregation=prepared.aggregation,
                        evaluator=held_out_evaluator(prepared.spec, DATASET), **FLOWER_OPTIONS)
    return simulate(strategy, prepared.initial.values, rounds, rpc=False)


def on_chain(rounds: int) -> dict[str, Any]:
    with start_anvil() as anvil:
        w3, keys = connect(anvil.rpc_url), dev_keys()
        organisation, aggregator_account = account_from_key(keys[0]), account_from_key(keys[1])
        posted = post_task(w3, organisation, model=MODEL, dataset=DATASET, rounds=rounds, reward_wei=10**18,
                           min_stake_wei=10**16, deadline_seconds=3600, aggregator=aggregator_account.address)
        fed = Federation(w3, posted.federation)
        for key in KEYS[:CLIENTS]:  # each participant joins with its wallet (zkfl client join)
            Client(anvil.rpc_url, posted.task_id, key, federation=posted.federation, show_progress=False).join()
        store = open_store()
        package = TaskPackage.get(store, posted.package_cid)
        aggregator = Aggregator(fed, posted.task_id, aggregator_account, InProcessTransport(), store)
        task = FlowerTask(posted.package_cid, w3.eth.chain_id, posted.federation, posted.task_id)
        strategy = ZkFedAvg(task, aggregator=aggregator, evaluator=held_out_evaluator(package.spec, DATASET),
                            **FLOWER_OPTIONS)
        os.environ["ZKFL_FLOWER_RPC"] = anvil.rpc_url
        report = simulate(strategy, ModelArtifact.get(store, posted.initial_model_cid).values, rounds, rpc=True)
        report["chain"] = {"federation": posted.federation, "task_id": posted.task_id,
                           "current_round": fed.task(posted.task_id).current_round,
                           "slashed": {w: fed.participant(posted.task_id, w).slashed for w in report["clients"]}}
        return report


FLOWER_OPTIONS: dict[str, Any] = {"fraction_evaluate": 0.0, "min_train_nodes": CLIENTS,
                                  "min_available_nodes": CLIENTS}


def simulate(strategy: ZkFedAvg, initial: list[int], rounds: int, *, rpc: bool) -> dict[str, Any]:
    start = time.monotonic()
    out: dict[str, Any] = {}
    client_app = zk_client_app(load_partition, wallet_key, rpc_url=node_rpc if rpc else None, mods=[poison])
    with tempfile.TemporaryDirectory(prefix="zkfl-ray-", dir="/tmp") as ray_dir:
        run_simulation(
            server_app=server_app(strategy, initial, rounds, out), client_app=client_app, num_supernodes=CLIENTS,
            # One node at a time: each proof uses both cores of a small machine.
            backend_config={"client_resources": {"num_cpus": 2, "num_gpus": 0.0},
                            "init_args": {"num_cpus": 2, "include_dashboard": False, "_temp_dir": ray_dir}})
    if "rounds" not in out:
        raise SystemExit("the Flower run did not finish (see Flower's log above)")
    wallets = [str(Account.from_key(k).address) for k in KEYS[:CLIENTS]]
    return {
        "engine": "flower-simulation", "model": MODEL, "dataset": DATASET, "clients": wallets,
        "tampering": wallets[TAMPERER], "package_cid": strategy.task.package_cid,
        "update_scale": strategy.package.update_scale, "model_scale": strategy.package.spec.scale,
        "rounds": [r.to_json() for r in out["rounds"]],
        "initial_model": initial, "final_model": out["final_model"], "seconds": time.monotonic() - start,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--chain", action="store_true", help="post the task on a local anvil chain")
    args = parser.parse_args(argv)
    report = on_chain(args.rounds) if args.chain else off_chain(args.rounds)
    for r in report["rounds"]:
        accuracy = "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        print(f"round {r['round']}: accepted {len(r['accepted'])} {r['accepted']}, accuracy {accuracy}")
        for rejection in r["rejected"]:
            print(f"  rejected {rejection['client']}: {rejection['reason']}")
    if args.report:
        args.report.write_text(json.dumps(report, indent=2))
        print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
