"""`zkfl demo`: a whole verified federation on one machine, on real parts.

anvil (started and stopped here), the Federation contract and the circuit's ezkl
verifier, an organisation posting a task with a reward pool, clients proving real
training steps on their shards of breast_cancer, one or more malicious clients whose
update does not match their proof, an aggregator relaying every submission to the
chain and FedAvg-ing what the contract accepted, then settlement and withdrawals.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount
from pydantic import Field
from web3 import Web3

from zkfl.aggregator.records import RoundRecord
from zkfl.aggregator.service import Aggregator
from zkfl.audit import audit_task
from zkfl.circuits.registry import default_spec, family
from zkfl.circuits.spec import DEFAULT_SLOTS
from zkfl.contracts.chain import account_from_key, connect, dev_keys, start_anvil
from zkfl.contracts.federation import Federation
from zkfl.datasets import Dataset, load, round_batch, shard
from zkfl.errors import ZkflError
from zkfl.field.quantize import Quantizer
from zkfl.middleware.client import Client
from zkfl.middleware.transport.base import Transport
from zkfl.middleware.transport.rabbitmq import open_transport
from zkfl.organisation import PostedTask, held_out_evaluator, post_task
from zkfl.prover.registry import DEFAULT_BACKEND, get_backend
from zkfl.status import TaskStatus, task_status
from zkfl.store import ContentStore, open_store

MAX_CLIENTS = 8  # anvil's dev accounts: 0 organisation, 1 aggregator, 2.. clients


@dataclass
class DemoConfig:
    clients: int = 4
    rounds: int = 3
    malicious: int = 1
    model: str = "logreg"
    dataset: str = "breast_cancer"
    broker: str | None = None
    report: Path | None = None
    reward_eth: float = 1.0
    stake_eth: float = 0.1
    round_timeout: float = 600.0
    local_steps: int = 1
    keep_running: bool = False
    dashboard_port: int = 8000
    quiet: bool = False
    backend: str = DEFAULT_BACKEND


def _say(cfg: DemoConfig, text: str = "") -> None:
    if not cfg.quiet:
        print(text, flush=True)


def _print_round(cfg: DemoConfig, record: RoundRecord) -> None:
    acc = f"{record.accuracy:.3f}" if record.accuracy is not None else "-"
    if record.reference_accuracy is not None:
        acc += f" (float FedAvg {record.reference_accuracy:.3f})"
    loss = f"{record.loss:.4f}" if record.loss is not None else "-"
    prove = f"{statistics.median(record.prove_seconds):.1f} s" if record.prove_seconds else "-"
    gas = f"{int(statistics.median(record.verify_gas)):,}" if record.verify_gas else "-"
    _say(cfg, f"  round {record.round}: accepted {len(record.accepted)}, rejected {len(record.rejected)}, "
              f"held-out accuracy {acc}, loss {loss}, median prove {prove}, median submit gas {gas}")
    for wallet in record.accepted:
        _say(cfg, f"    accepted  {wallet}")
    for rejection in record.rejected:
        if rejection.on_chain:
            _say(cfg, f"    REJECTED  {rejection.wallet}: {rejection.reason}")
        else:  # the wallet is what an unsigned message claimed: nothing on chain says it sent it
            _say(cfg, f"    REFUSED before the chain (message claimed {rejection.wallet}): {rejection.reason}")
    _say(cfg, f"    global model -> {record.global_commitment} ({record.model_cid})")
    if record.publish_tx:
        proving = f"proved in {record.aggregation_prove_seconds:.1f} s, " if record.aggregation_prove_seconds else ""
        _say(cfg, f"    proven aggregation: FedAvg proof {proving}verified on chain in {record.publish_tx} "
                  f"({record.publish_gas:,} gas)")


def validate(cfg: DemoConfig, data: Dataset) -> None:
    if not 1 <= cfg.clients <= MAX_CLIENTS:
        raise ZkflError(f"--clients must be between 1 and {MAX_CLIENTS}")
    if not 0 <= cfg.malicious < cfg.clients:
        raise ZkflError("--malicious must leave at least one honest client")
    if cfg.rounds < 1:
        raise ZkflError("--rounds must be at least 1")
    reason = get_backend(cfg.backend).unsupported(default_spec(cfg.model, data.features, data.classes))
    if reason is not None:
        raise ZkflError(f"the {cfg.backend} backend cannot prove the {cfg.model} step ({reason}): "
                        f"use --backend {DEFAULT_BACKEND}")


class DemoReport(TaskStatus):
    """What ``zkfl demo --report`` writes: the task's status record, plus where it ran and its audit."""

    contracts: dict[str, str] = Field(description="federation, verifier and aggregation_verifier addresses")
    audit: dict[str, Any] = Field(default_factory=dict, description="`zkfl audit`'s report of the task")
    rpc_url: str | None = None
    dashboard_url: str | None = None


@dataclass
class DemoRun:
    """The parties of one demo run, set up on one chain."""

    posted: PostedTask
    fed: Federation
    organisation: LocalAccount
    clients: list[Client]
    malicious: set[str]
    aggregator: Aggregator
    transports: list[Transport]
    dashboard: tuple[Any, threading.Thread] | None
    data: Dataset  # loaded once: the clients' shards and the aggregator's held-out metrics


def run_demo(cfg: DemoConfig) -> DemoReport:
    data = load(cfg.dataset)
    validate(cfg, data)
    store = open_store()
    with start_anvil() as anvil:
        run = _set_up(cfg, anvil.rpc_url, store, data)
        try:
            _run_rounds(cfg, run)
        finally:
            for transport in {id(t): t for t in run.transports}.values():
                transport.close()
        report = _settle_and_report(cfg, run, store)
        if cfg.keep_running:
            report.rpc_url = anvil.rpc_url
            report.dashboard_url = f"http://127.0.0.1:{cfg.dashboard_port}/"
        if cfg.report is not None:
            cfg.report.write_text(report.model_dump_json(indent=2))
            _say(cfg, f"report written to {cfg.report}")
        if run.dashboard is not None:
            _keep_running(cfg, anvil.rpc_url, run.posted.federation, run.posted.task_id, run.dashboard)
    return report


def _set_up(cfg: DemoConfig, rpc_url: str, store: ContentStore, data: Dataset) -> DemoRun:
    """Post the task, join the clients, make the aggregator (the organisation, clients and
    aggregator are anvil's first dev accounts)."""
    w3 = connect(rpc_url)
    keys = dev_keys()
    organisation, aggregator_account = account_from_key(keys[0]), account_from_key(keys[1])
    _say(cfg, f"chain: anvil at {rpc_url} (chain id {w3.eth.chain_id})")
    _say(cfg, f"building the {cfg.backend} step circuit (cached after the first run) and deploying contracts ...")
    posted = post_task(
        w3, organisation, model=cfg.model, dataset=cfg.dataset, rounds=cfg.rounds,
        reward_wei=Web3.to_wei(cfg.reward_eth, "ether"), min_stake_wei=Web3.to_wei(cfg.stake_eth, "ether"),
        deadline_seconds=3600, aggregator=aggregator_account.address, store=store, local_steps=cfg.local_steps,
        slots=max(DEFAULT_SLOTS, cfg.clients), backend=cfg.backend)
    fed = Federation(w3, posted.federation)
    _say(cfg, f"task {posted.task_id}: Federation {posted.federation}, verifier {posted.verifier}, "
              f"package {posted.package_cid}")
    # With --keep-running the dashboard is up from the start, so the rounds can be watched live.
    dashboard = _start_dashboard(cfg, rpc_url, posted.federation) if cfg.keep_running else None
    shared: Transport | None = None if cfg.broker else open_transport(None)
    client_transport = shared or open_transport(cfg.broker)
    aggregator_transport = shared or open_transport(cfg.broker)
    clients = [Client(rpc_url, posted.task_id, k, cfg.broker, federation=posted.federation,
                      store=store, transport=client_transport, show_progress=not cfg.quiet)
               for k in keys[2 : 2 + cfg.clients]]
    malicious = {c.address for c in clients[len(clients) - cfg.malicious :]}
    for client in clients:
        client.join(Web3.to_wei(cfg.stake_eth, "ether"))
    _say(cfg, f"{len(clients)} clients joined with {cfg.stake_eth} ETH stake each "
              f"({len(malicious)} malicious: {', '.join(sorted(malicious)) or 'none'})")
    aggregator = Aggregator(fed, posted.task_id, aggregator_account, aggregator_transport, store,
                            evaluator=held_out_evaluator(clients[0].spec, cfg.dataset),
                            reference=_float_reference(cfg, clients, data),
                            on_round=lambda record: _print_round(cfg, record),
                            batch_size=cfg.clients if get_backend(cfg.backend).batch_verifies else 1)
    return DemoRun(posted, fed, organisation, clients, malicious, aggregator,
                   [client_transport, aggregator_transport], dashboard, data)


def _float_reference(cfg: DemoConfig, clients: list[Client], data: Dataset) -> Callable[[int, list[str]], float]:
    """Float FedAvg over the batches the accepted clients proved, from the same start: the
    demo sees every client's shard, so it can show what the proven, fixed-point run gives up.
    Each round starts from the reference's own previous model (asked again for a round, as
    when its accepted set changed, it starts from the same one)."""
    spec, fam = clients[0].spec, family(cfg.model)
    shards = {c.address.lower(): shard(data, i + 1, len(clients)) for i, c in enumerate(clients)}
    models = {0: Quantizer(spec.scale).to_float(clients[0].global_model(0).array())}

    def accuracy(round_: int, wallets: list[str]) -> float:
        start = models[round_]
        steps = []
        for wallet in wallets:
            xb, yb = round_batch(*shards[wallet.lower()], round_, spec.batch)
            steps.append(fam.float_step(spec, start, xb, fam.encode_labels(spec, yb)))
        models[round_ + 1] = np.mean(steps, axis=0) if steps else start
        return float(fam.loss_and_accuracy(spec, models[round_ + 1], data.x_test, data.y_test)[1])

    return accuracy


def _run_rounds(cfg: DemoConfig, run: DemoRun) -> None:
    """Every round: the active clients train and prove, the cheaters tamper, the aggregator publishes."""
    stop = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            run.aggregator.run(stop)
        except BaseException as exc:  # surfaced in the main thread
            failure.append(exc)

    thread = threading.Thread(target=serve, name="aggregator", daemon=True)
    thread.start()
    task_id = run.posted.task_id
    shards = {c.address: shard(run.data, i + 1, len(run.clients)) for i, c in enumerate(run.clients)}
    try:
        for round_ in range(cfg.rounds):
            _say(cfg, f"round {round_}:")
            active = [c for c in run.clients if not run.fed.participant(task_id, c.address).slashed]
            with ThreadPoolExecutor(max_workers=get_backend(cfg.backend).parallel_provers) as pool:
                bundles = list(pool.map(lambda c, r=round_: c.train(*shards[c.address], r), active))
            for client, bundle in zip(active, bundles, strict=True):
                if client.address in run.malicious:
                    bundle.update[0] += 1  # one quantum off: no longer the proven output
                # A cheater skips the SDK's dry run, which would refuse to send this.
                client.submit(bundle, preflight=client.address not in run.malicious)
            _wait_for_round(run.fed, task_id, round_ + 1, thread, failure, cfg.round_timeout + 60)
    finally:
        stop.set()
        thread.join(timeout=30)
    if failure:
        raise failure[0]


def _settle_and_report(cfg: DemoConfig, run: DemoRun, store: ContentStore) -> DemoReport:
    """Settle, withdraw every unslashed client's stake and reward, read the status back, audit."""
    fed, task_id = run.fed, run.posted.task_id
    fed.settle(run.organisation, task_id)
    for client in run.clients:
        if not fed.participant(task_id, client.address).slashed:
            fed.withdraw(client.account, task_id)
    status = task_status(fed, task_id)
    _merge_history(status, run.aggregator.history)
    for row in status.rounds:
        per_update = f"{int(statistics.median(row.accepted_update_gas)):,}" if row.accepted_update_gas else "-"
        _say(cfg, f"gas, round {row.round}: {per_update} per accepted update (median), "
                  f"{row.round_gas or 0:,} for the round (submissions and publication)")
    _say(cfg, "settled: rewards " + ", ".join(f"{w[:10]}: {Web3.from_wei(v, 'ether')} ETH"
                                              for w, v in status.rewards.items()))
    _say(cfg, f"slashed: {', '.join(status.slashed) or 'nobody'}")
    audit = audit_task(fed, task_id, store)
    _say(cfg, "audit (chain + artifacts only): " + ", ".join(
        f"round {r} {'ok' if ok else 'FAILED'}" for r, ok in sorted(audit.rounds().items()))
        + f"; {len(audit.findings)} checks, {len(audit.failures)} failed")
    contracts = {"federation": run.posted.federation, "verifier": run.posted.verifier,
                 "aggregation_verifier": run.posted.aggregation_verifier}
    return DemoReport(**dict(status), contracts=contracts, audit=audit.to_json())


def _merge_history(status: TaskStatus, history: list[RoundRecord]) -> None:
    """The aggregator's own figures for its rounds (it ran in this process)."""
    by_round = {r.round: r for r in history}
    for row in status.rounds:
        record = by_round.get(row.round)
        if record is not None:
            row.accuracy, row.loss = record.accuracy, record.loss
            row.reference_accuracy = record.reference_accuracy
            row.prove_seconds, row.verify_gas = list(record.prove_seconds), list(record.verify_gas)


def _start_dashboard(cfg: DemoConfig, rpc_url: str, federation: str) -> tuple[Any, threading.Thread]:
    import uvicorn

    from zkfl.dashboard.app import create_app

    app = create_app(rpc_url, federation, origin=f"http://127.0.0.1:{cfg.dashboard_port}")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=cfg.dashboard_port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # announce the URL only once it answers
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ZkflError(f"the dashboard did not start on port {cfg.dashboard_port}")
        time.sleep(0.05)
    _say(cfg, f"dashboard (live): http://127.0.0.1:{cfg.dashboard_port}/")
    return server, thread


def _keep_running(cfg: DemoConfig, rpc_url: str, federation: str, task_id: int,
                  dashboard: tuple[Any, threading.Thread]) -> None:
    """Leave the chain and the dashboard up until Ctrl-C, for browsing and auditing."""
    server, thread = dashboard
    print(f"\nkept running (Ctrl-C to stop):\n  rpc_url:       {rpc_url}\n  task id:       {task_id}\n"
          f"  federation:    {federation}\n  dashboard_url: http://127.0.0.1:{cfg.dashboard_port}/\n"
          f"  audit it:      zkfl audit --rpc {rpc_url} --federation {federation} --task {task_id}", flush=True)
    try:
        while thread.is_alive():
            thread.join(timeout=1.0)
    except KeyboardInterrupt:
        pass
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _wait_for_round(fed: Federation, task_id: int, target: int, thread: threading.Thread,
                    failure: list[BaseException], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while fed.task(task_id).current_round < target:
        if failure:
            raise failure[0]
        if not thread.is_alive():
            raise ZkflError("the aggregator stopped before the round was published")
        if time.monotonic() > deadline:
            raise ZkflError(f"round {target - 1} was not published within {timeout:.0f} s")
        time.sleep(0.2)
