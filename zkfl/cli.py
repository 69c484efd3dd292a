"""The `zkfl` command line: one entry point, a subcommand per role.

Every failure a user can cause (bad input, a missing service, a refused transaction)
ends in one line on stderr and a non-zero exit; ``ZKFL_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from zkfl.circuits.spec import DEFAULT_SLOTS, MODEL_FAMILIES
from zkfl.datasets import DATASETS
from zkfl.prover.registry import BACKENDS, DEFAULT_BACKEND

if TYPE_CHECKING:  # imported where used, as every command does: one command loads only what it needs
    from zkfl.audit import AuditReport

DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672/%2F"


def _eth(text: str) -> int:
    from web3 import Web3

    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an ETH amount: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("amounts cannot be negative")
    return int(Web3.to_wei(value, "ether"))


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"not a non-negative amount: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


# ------------------------------------------------------------------ chain

def cmd_chain_up(args: argparse.Namespace) -> int:
    from zkfl.contracts.chain import chain_up, dev_keys

    anvil = chain_up(args.port)
    print(f"rpc_url: {anvil.rpc_url}")
    print("dev keys (funded with 10,000 ETH each; for local use only):")
    for i, key in enumerate(dev_keys()):
        print(f"  {i}: {key}")
    return 0


def cmd_chain_down(args: argparse.Namespace) -> int:
    from zkfl.contracts.chain import chain_down

    stopped = chain_down(args.port)
    print(f"stopped anvil on port(s) {', '.join(map(str, stopped))}" if stopped else "no zkfl chain running")
    return 0


# ------------------------------------------------------------------ task

def _federation(args: argparse.Namespace) -> Any:
    from zkfl.contracts.chain import connect
    from zkfl.contracts.federation import resolve_federation

    return resolve_federation(connect(args.rpc), getattr(args, "federation", None))


def cmd_task_create(args: argparse.Namespace) -> int:
    from zkfl.contracts.chain import account_from_key, connect
    from zkfl.organisation import post_task

    w3 = connect(args.rpc)
    account = account_from_key(args.key)
    posted = post_task(w3, account, model=args.model, dataset=_dataset(args), rounds=args.rounds,
                       reward_wei=args.reward, min_stake_wei=args.min_stake, deadline_seconds=args.deadline,
                       aggregator=args.aggregator, federation=args.federation, local_steps=args.local_steps,
                       pin_data=args.pin_data, slots=args.max_participants, backend=args.backend,
                       collection_window=args.collection_window, feature_bound=args.feature_bound)
    if args.json:
        print(json.dumps(posted.__dict__))
    else:
        print(posted.task_id)
    return 0


def _dataset(args: argparse.Namespace) -> str:
    from zkfl.circuits.registry import DEFAULTS

    return str(args.dataset or DEFAULTS[args.model]["dataset"])


def cmd_task_status(args: argparse.Namespace) -> int:
    from zkfl.status import task_status

    status = task_status(_federation(args), args.task)
    if args.json:
        print(status.model_dump_json(indent=2))
        return 0
    print(f"task {status.task_id}: round {status.current_round}/{status.total_rounds}, "
          f"settled {status.settled}, participants {len(status.participants)}")
    for row in status.rounds:
        print(f"  round {row.round}: accepted {len(row.accepted)}, rejected {len(row.rejected)}, "
              f"global {row.global_commitment}")
        proof = row.aggregation_proof
        if proof:
            print(f"    proven aggregation: verified on chain in {proof.tx_hash} ({proof.gas:,} gas)")
    return 0


def _smallest_unit(token: str) -> str:
    """How the chain counts the task's currency: wei, or an ERC-20's base units."""
    from zkfl.contracts.federation import ETH

    return "wei" if token == ETH else f"base units of token {token}"


def cmd_task_settle(args: argparse.Namespace) -> int:
    fed = _federation(args)
    from zkfl.contracts.chain import account_from_key

    fed.settle(account_from_key(args.key), args.task)
    task = fed.task(args.task)
    unit = _smallest_unit(task.token)
    print(f"task {args.task} settled: {task.contributors} contributor(s) share {task.reward_pool} {unit} "
          f"(plus {task.slashed_pool} {unit} slashed); each withdraws with `zkfl client withdraw`")
    return 0


# ------------------------------------------------------------------ client

def _client(args: argparse.Namespace, broker: str | None = None) -> Any:
    from zkfl.middleware.client import Client

    return Client(args.rpc, args.task, args.key, broker, federation=args.federation)


def cmd_client_join(args: argparse.Namespace) -> int:
    client = _client(args)
    client.join(None if args.stake is None else client.token_units(args.stake))
    print(f"{client.address} joined task {args.task}")
    return 0


def cmd_client_train(args: argparse.Namespace) -> int:
    from zkfl.datasets import load, parse_shard, shard

    index, count = parse_shard(args.shard)
    client = _client(args)
    x, y = shard(load(client.package.dataset), index, count)
    bundle = client.train(x, y)
    bundle.save(args.out)
    print(f"round {bundle.round}: update, proof and public values written to {args.out} "
          f"(proved in {bundle.metrics.prove_seconds:.1f} s)")
    return 0


def cmd_client_withdraw(args: argparse.Namespace) -> int:
    fed = _federation(args)
    from zkfl.contracts.chain import account_from_key
    from zkfl.errors import ZkflError

    account = account_from_key(args.key)
    state = fed.participant(args.task, account.address)
    if state.slashed:
        raise ZkflError(f"{account.address} was slashed in task {args.task}: it has nothing to withdraw")
    if state.withdrawn:
        raise ZkflError(f"{account.address} already withdrew from task {args.task}")
    reward, stake = fed.payout_of(args.task, account.address)
    fed.withdraw(account, args.task)
    unit = _smallest_unit(fed.task(args.task).token)
    print(f"{account.address} withdrew {reward} {unit} reward and {stake} {unit} stake from task {args.task}")
    return 0


def cmd_client_submit(args: argparse.Namespace) -> int:
    from zkfl.middleware.bundle import UpdateBundle

    bundle = UpdateBundle.load(args.dir)
    client = _client(args, args.broker)
    if args.direct:
        result = client.submit_on_chain(bundle)
        print(f"round {bundle.round}: {'accepted' if result.accepted else 'rejected: ' + result.reason.text} "
              f"on chain in {result.tx_hash} ({result.gas_used:,} gas)")
        return 0 if result.accepted else 1
    try:
        submission = client.submit(bundle, fallback_after=args.fallback_after)
    finally:
        client.close()
    print(f"submitted round {submission.round} update {submission.update_commitment} (broker confirmed)")
    return 0


def cmd_client_run(args: argparse.Namespace) -> int:
    """Join if needed, then prove and submit every round until the task ends; --withdraw collects."""
    from zkfl.datasets import load, parse_shard, shard
    from zkfl.middleware.participation import SubmitPlan, collect, play

    index, count = parse_shard(args.shard)
    client = _client(args, args.broker)
    try:
        if not client.federation.participant(args.task, client.address).joined:
            client.join(None if args.stake is None else client.token_units(args.stake))
            print(f"{client.address} joined task {args.task}")
        x, y = shard(load(client.package.dataset), index, count)
        play(client, x, y, SubmitPlan(direct=args.direct, fallback_after=args.fallback_after),
             round_timeout=args.round_timeout)
        if args.withdraw:
            collect(client)
    finally:
        client.close()
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from zkfl.middleware.bundle import UpdateBundle
    from zkfl.verify import verify_bundle

    checks = verify_bundle(_federation(args), args.task, args.wallet, UpdateBundle.load(args.dir))
    failed = [c for c in checks if not c.ok]
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [c.__dict__ for c in checks]}, indent=2))
    else:
        for check in checks:
            print(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}" + ("" if check.ok else f": {check.detail}"))
    if failed:
        print(f"zkfl: error: update rejected: {failed[0].name}: {failed[0].detail}", file=sys.stderr)
        return 1
    print("verified: the update is a proven step of this task, round and wallet")
    return 0


def cmd_proof_verify(args: argparse.Namespace) -> int:
    """A ZoKrates step proof against a verifying key, in pure Python: no Node, no chain."""
    from zkfl.errors import ZkflError
    from zkfl.middleware.bundle import UpdateBundle
    from zkfl.prover.zokrates import groth16

    bundle = UpdateBundle.load(args.dir)
    try:
        vk = groth16.VerifyingKey.from_zokrates(json.loads(args.vk.read_text()))
    except (OSError, ValueError, KeyError) as exc:
        raise ZkflError(f"{args.vk} is not a ZoKrates Groth16 verifying key: {exc}") from None
    ok, reason = groth16.verify(vk, bundle.proof_bytes, bundle.public_values)
    if args.json:
        print(json.dumps({"ok": ok, "reason": reason}))
    if not ok:
        print(f"zkfl: error: proof rejected: {reason}", file=sys.stderr)
        return 1
    if not args.json:
        print(f"verified: the Groth16 proof holds for its {vk.inputs} public values under {args.vk}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from zkfl.audit import audit_task

    report = audit_task(_federation(args), args.task)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print_audit(report)
    if not report.ok:
        first = report.failures[0]
        where = f"round {first.round}" if first.round is not None else "payouts"
        print(f"zkfl: error: audit failed at {where}{', ' + first.wallet if first.wallet else ''}: "
              f"{first.check}: {first.detail}", file=sys.stderr)
        return 1
    return 0


def _print_audit(report: AuditReport) -> None:
    """The audit for a reader: a verdict per round and for the task, then every failure."""
    from zkfl.audit import Check

    for round_, ok in sorted(report.rounds().items()):
        mine = [f for f in report.findings if f.round == round_]
        steps = sum(1 for f in mine if f.check == Check.STEP_PROOF_VERIFIES and f.ok)
        fedavg = any(f.check == Check.AGGREGATION_PROOF_VERIFIES and f.ok for f in mine)
        print(f"round {round_}: {'ok' if ok else 'FAILED'} ({len(mine)} checks; {steps} step proof(s)"
              f"{' and the FedAvg proof' if fedavg else ''} re-verified off chain)")
    task_wide = [f for f in report.findings if f.round is None]
    if task_wide:
        print(f"task: {'ok' if all(f.ok for f in task_wide) else 'FAILED'} ({len(task_wide)} checks: "
              f"{', '.join(sorted({f.check.value for f in task_wide}))})")
    for finding in report.failures:
        where = " ".join(x for x in (f"round {finding.round}" if finding.round is not None else "",
                                     finding.wallet or "") if x)
        print(f"  FAILED {where}: {finding.check}: {finding.detail}")
    print(f"{len(report.findings)} checks, {len(report.failures)} failed")


# ------------------------------------------------------------------ aggregator

def cmd_aggregator_run(args: argparse.Namespace) -> int:
    from zkfl.aggregator.service import Aggregator
    from zkfl.artifacts import TaskPackage
    from zkfl.contracts.chain import account_from_key
    from zkfl.middleware.transport.rabbitmq import open_transport
    from zkfl.organisation import held_out_evaluator
    from zkfl.store import open_store

    fed = _federation(args)
    package = TaskPackage.get(open_store(), fed.task(args.task).package_cid)
    evaluator = None if args.no_evaluate else held_out_evaluator(package.spec, package.dataset)
    transport = open_transport(args.broker)
    try:
        aggregator = Aggregator(fed, args.task, account_from_key(args.key), transport, evaluator=evaluator,
                                on_round=lambda r: print(f"round {r.round} published: {r.global_commitment} "
                                                         f"(accepted {len(r.accepted)}, rejected {len(r.rejected)})",
                                                         flush=True),
                                batch_size=args.batch, batch_wait=args.batch_wait)
        aggregator.run()
    finally:
        transport.close()
    return 0


# ------------------------------------------------------------------ dashboard, demo

def cmd_dashboard(args: argparse.Namespace) -> int:
    import uvicorn

    from zkfl.dashboard.app import create_app

    bound = f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{args.port}"
    origins = args.origin or [bound]  # the page must be opened at one of these; other Hosts get 421
    app = create_app(args.rpc, args.federation, origin=origins, public_rpc=args.public_rpc)
    print(f"dashboard: {origins[0].rstrip('/')}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.over_ipfs:
        return _demo_over_ipfs(args)
    from zkfl.demo import DemoConfig, run_demo

    run_demo(DemoConfig(clients=args.clients, rounds=args.rounds, malicious=args.malicious, broker=args.broker,
                        report=args.report, round_timeout=args.round_timeout, model=args.model,
                        dataset=_dataset(args), local_steps=args.local_steps, keep_running=args.keep_running,
                        dashboard_port=args.dashboard_port, backend=args.backend))
    return 0


def _demo_over_ipfs(args: argparse.Namespace) -> int:
    """Each role a process with its own home and IPFS node; artifacts cross only by CID."""
    from zkfl.multiparty import MultiPartyConfig, run_multiparty
    from zkfl.paths import zkfl_home

    if args.model != "logreg" or args.backend != DEFAULT_BACKEND:
        print("zkfl: error: --ipfs runs the default task (logreg, ezkl)", file=sys.stderr)
        return 2
    report = run_multiparty(MultiPartyConfig(
        workdir=zkfl_home() / "demo-ipfs", participants=args.clients, malicious=args.malicious, rounds=args.rounds,
        broker=args.broker or DEFAULT_BROKER, say=lambda text: print(text, flush=True)))
    for row in report["rounds"]:
        rejected = ", ".join(f"{r['wallet']} ({r['reason']})" for r in row["rejected"]) or "none"
        print(f"round {row['round']}: accepted {len(row['accepted'])}, rejected {rejected}; model {row['model_cid']}")
    print(f"audit from an empty home over IPFS gateways: {'passed' if report['audit']['exit'] == 0 else 'FAILED'}")
    if args.report:
        args.report.write_text(json.dumps(report, indent=2))
    return 0 if report["audit"]["exit"] == 0 else 1


# ------------------------------------------------------------------ ipfs, tools

def cmd_ipfs_up(args: argparse.Namespace) -> int:
    from zkfl.ipfs.node import ipfs_up

    node = ipfs_up(port=args.port, peers=args.peer)
    print(f"api: {node.api_url}\ngateway: {node.gateway_url}\npeer: {node.addresses[0] if node.addresses else ''}")
    print(f"(export ZKFL_IPFS_API={node.api_url} to use it)")
    return 0


def cmd_ipfs_down(args: argparse.Namespace) -> int:
    from zkfl.ipfs.node import ipfs_down

    print("stopped the IPFS node" if ipfs_down() else "no zkfl IPFS node running for this ZKFL_HOME")
    return 0


def cmd_ipfs_add(args: argparse.Namespace) -> int:
    from zkfl.store import open_store

    print(open_store().put(args.file.read_bytes()))
    return 0


def cmd_ipfs_get(args: argparse.Namespace) -> int:
    from zkfl.store import open_store

    data = open_store().get(args.cid)  # every block checked against its hash
    if args.out is None:
        sys.stdout.buffer.write(data)
    else:
        args.out.write_bytes(data)
    return 0


def cmd_tools_install(args: argparse.Namespace) -> int:
    from zkfl.toolchain import install_tools

    print(f"tools installed in {install_tools()}")
    return 0


# ------------------------------------------------------------------ parser

#: What `add_subparsers` returns: each command group adds its commands to one.
_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # generic only to type checkers


def _ipfs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ipfs", metavar="URL", help="this party's IPFS node (Kubo RPC API) to add and pin to "
                   "[env ZKFL_IPFS_API]; without it and --gateway, artifacts stay in ZKFL_HOME/store")
    p.add_argument("--gateway", action="append", metavar="URL",
                   help="a trustless IPFS gateway to read artifacts from (repeatable) [env ZKFL_IPFS_GATEWAYS]")


def _chain_args(p: argparse.ArgumentParser, key: bool = True) -> None:
    p.add_argument("--rpc", required=True, help="RPC URL of the chain, e.g. http://127.0.0.1:8545")
    p.add_argument("--federation", help="Federation contract address (default: zkfl's canonical one on this chain)")
    _ipfs_args(p)
    if key:
        p.add_argument("--key", required=True, help="private key of the wallet (0x...)")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="logreg", choices=MODEL_FAMILIES)
    p.add_argument("--dataset", choices=DATASETS,
                   help="default: breast_cancer for logreg, digits for softmax and mlp")
    p.add_argument("--local-steps", type=_positive_int, default=1, help="SGD steps per round, in one proof")
    p.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS,
                   help="proving system of the step proofs: ezkl (halo2, every model) or zokrates "
                        "(Groth16, logreg and small softmax; cheapest to verify on chain)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zkfl", description="Verifiable federated learning.")
    sub = parser.add_subparsers(dest="command", required=True)
    # In this order: `zkfl --help` lists the commands as they are added.
    for add_commands in (_chain_commands, _task_commands, _client_commands, _aggregator_commands,
                         _verify_commands, _audit_command, _dashboard_command, _demo_command,
                         _ipfs_commands, _tools_commands):
        add_commands(sub)
    return parser


def _chain_commands(sub: _Commands) -> None:
    chain = sub.add_parser("chain", help="a local anvil chain").add_subparsers(dest="action", required=True)
    p = chain.add_parser("up", help="start anvil on 127.0.0.1")
    p.add_argument("--port", type=_positive_int)
    p.set_defaults(func=cmd_chain_up)
    p = chain.add_parser("down", help="stop the anvil started by `chain up`")
    p.add_argument("--port", type=_positive_int)
    p.set_defaults(func=cmd_chain_down)


def _task_commands(sub: _Commands) -> None:
    task = sub.add_parser("task", help="post and inspect tasks").add_subparsers(dest="action", required=True)
    _task_create_command(task)
    p = task.add_parser("status", help="a task's state, read from the chain")
    _chain_args(p, key=False)
    p.add_argument("--task", type=_positive_int, required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_status)
    p = task.add_parser("settle", help="after the deadline (or the last round): pay contributors, free stakes")
    _chain_args(p)
    p.add_argument("--task", type=_positive_int, required=True)
    p.set_defaults(func=cmd_task_settle)


def _task_create_command(task: _Commands) -> None:
    p = task.add_parser("create", help="post a task (deploys the contracts on first use)")
    _chain_args(p)
    _model_args(p)
    p.add_argument("--pin-data", action="store_true",
                   help="the step commits to each batch (public Poseidon hashes of X and y), and a participant's "
                        "data commitment may not change between rounds; without it no hash of the data is published")
    p.add_argument("--max-participants", type=_positive_int, default=DEFAULT_SLOTS,
                   help="update slots per round: at most this many accepted updates a round (the FedAvg proof's "
                        "slots); joining takes no slot")
    p.add_argument("--feature-bound", type=float, default=4.0,
                   help="declared bound on |feature| (standardized units): every proof checks it, and a batch past "
                        "it is never accepted (zkfl's datasets are clipped to 4)")
    p.add_argument("--collection-window", type=_positive_int, default=300,
                   help="seconds each round collects submissions before the aggregator may publish without "
                        "every participant (10 s to 7 days)")
    p.add_argument("--rounds", type=_positive_int, default=2)
    p.add_argument("--reward", type=_eth, required=True, help="reward pool in ETH")
    p.add_argument("--min-stake", type=_eth, default=_eth("0.1"), help="minimum stake in ETH")
    p.add_argument("--deadline", type=_positive_int, default=3600, help="seconds from now")
    p.add_argument("--aggregator", help="aggregator address (default: the organisation)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_create)


def _client_commands(sub: _Commands) -> None:
    client = sub.add_parser("client", help="take part in a task").add_subparsers(dest="action", required=True)
    p = client.add_parser("join", help="stake and join a task")
    _chain_args(p)
    p.add_argument("--task", type=_positive_int, required=True)
    p.add_argument("--stake", type=_amount,
                   help="stake in ETH, or in whole tokens of an ERC-20 task (default: the task's minimum)")
    p.set_defaults(func=cmd_client_join)
    p = client.add_parser("train", help="fetch the global model, train one step on a shard, prove it")
    _chain_args(p)
    p.add_argument("--task", type=_positive_int, required=True)
    p.add_argument("--shard", required=True, help="N/M: this client's shard of the task's dataset")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_client_train)
    p = client.add_parser("submit", help="sign a trained update and send it to the aggregator")
    _chain_args(p)
    p.add_argument("--task", type=_positive_int, required=True)
    p.add_argument("--broker", default=os.environ.get("ZKFL_BROKER", DEFAULT_BROKER))
    _delivery_args(p, "through the broker, then on chain directly if the chain has not decided it in S seconds")
    p.add_argument("dir", type=Path)
    p.set_defaults(func=cmd_client_submit)
    _client_run_command(client)
    p = client.add_parser("withdraw", help="after settlement: take this wallet's reward and stake")
    _chain_args(p)
    p.add_argument("--task", type=_positive_int, required=True)
    p.set_defaults(func=cmd_client_withdraw)


def _delivery_args(p: argparse.ArgumentParser, fallback_help: str) -> None:
    how = p.add_mutually_exclusive_group()
    how.add_argument("--direct", action="store_true",
                     help="send it to the contract from this wallet (pays the gas), not through the aggregator")
    how.add_argument("--fallback-after", type=float, metavar="S", help=fallback_help)


def _client_run_command(client: _Commands) -> None:
    p = client.add_parser("run", help="join if needed, then train, prove and submit every round until the task "
                                      "ends (the other client commands in one)")
    _chain_args(p)
    p.add_argument("--task", type=_positive_int, required=True)
    p.add_argument("--shard", required=True, help="N/M: this client's shard of the task's dataset")
    p.add_argument("--stake", type=_amount, help="when joining: in ETH or whole tokens (default: the task's minimum)")
    p.add_argument("--broker", default=os.environ.get("ZKFL_BROKER", DEFAULT_BROKER))
    _delivery_args(p, "through the broker, then on chain directly if the chain has not decided it in S seconds "
                      "(default: half the task's collection window)")
    p.add_argument("--round-timeout", type=float, metavar="S", help="give up when no round opens for S seconds")
    p.add_argument("--withdraw", action="store_true",
                   help="once the task has ended: settle it if nobody has, and withdraw the reward and stake")
    p.set_defaults(func=cmd_client_run)


def _aggregator_commands(sub: _Commands) -> None:
    agg = sub.add_parser("aggregator", help="run a task's aggregator").add_subparsers(dest="action", required=True)
    p = agg.add_parser("run", help="verify on chain, FedAvg, publish, until the last round")
    _chain_args(p)
    p.add_argument("--task", type=_positive_int, required=True)
    p.add_argument("--broker", default=os.environ.get("ZKFL_BROKER", DEFAULT_BROKER))
    p.add_argument("--batch", type=_positive_int, default=1,
                   help="relay up to this many submissions in one transaction (submitUpdates); proofs are "
                        "verified together where the task's verifier can (ZoKrates; ezkl's per-circuit verifier, one "
                        "pairing for the batch), else one by one (default 1)")
    p.add_argument("--no-evaluate", action="store_true",
                   help="do not score each published model on the task's data set's held-out part (the dashboard's "
                        "accuracy and loss)")
    p.add_argument("--batch-wait", type=float, default=2.0,
                   help="seconds the first submission of a batch waits for the others (default 2)")
    p.set_defaults(func=cmd_aggregator_run)


def _verify_commands(sub: _Commands) -> None:
    p = sub.add_parser("verify", help="check a trained update (DIR) off chain, as the contract would")
    _chain_args(p, key=False)
    p.add_argument("--task", type=_positive_int, required=True)
    p.add_argument("--wallet", required=True, help="the participant the update claims to be from")
    p.add_argument("--json", action="store_true")
    p.add_argument("dir", type=Path)
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("proof-verify", help="check a ZoKrates step proof (DIR) against a verifying key, in pure "
                                            "Python (py-ecc): no Node, no chain")
    p.add_argument("--vk", type=Path, required=True, help="ZoKrates' vk.json (the task package's `vk`)")
    p.add_argument("--json", action="store_true")
    p.add_argument("dir", type=Path)
    p.set_defaults(func=cmd_proof_verify)


def _audit_command(sub: _Commands) -> None:
    p = sub.add_parser("audit", help="re-check a task from the chain and the artifacts alone")
    _chain_args(p, key=False)
    p.add_argument("--task", type=_positive_int, required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)


def _dashboard_command(sub: _Commands) -> None:
    p = sub.add_parser("dashboard", help="serve the portal and dashboard (JSON API, /ipfs/ gateway and page)")
    _chain_args(p, key=False)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_positive_int, default=8000)
    p.add_argument("--public-rpc", metavar="URL",
                   help="the RPC URL the page tells participants to use (default: --rpc, unless it carries "
                        "credentials, a path or a query, which are never shown)")
    p.add_argument("--origin", action="append", metavar="URL",
                   help="public origin browsers use, e.g. https://fl.example.org (repeatable); sign-in names it "
                        "and other Host headers are refused (default: http://HOST:PORT)")
    p.set_defaults(func=cmd_dashboard)


def _demo_command(sub: _Commands) -> None:
    p = sub.add_parser("demo", help="a whole verified federation on this machine")
    p.add_argument("--clients", type=_positive_int, default=4)
    p.add_argument("--rounds", type=_positive_int, default=3)
    p.add_argument("--malicious", type=int, default=1)
    _model_args(p)
    p.add_argument("--broker", help="amqp:// URL (default: an in-process transport)")
    p.add_argument("--round-timeout", type=float, default=600.0)
    p.add_argument("--report", type=Path, help="write the run's report (JSON) here")
    p.add_argument("--keep-running", action="store_true",
                   help="leave the chain and the dashboard up until Ctrl-C (prints the URLs)")
    p.add_argument("--dashboard-port", type=_positive_int, default=8000)
    p.add_argument("--ipfs", action="store_true", dest="over_ipfs",
                   help="every role in its own home, sharing artifacts over real IPFS nodes")
    p.set_defaults(func=cmd_demo)


def _ipfs_commands(sub: _Commands) -> None:
    ipfs = sub.add_parser("ipfs", help="IPFS: a local node, and artifacts by CID").add_subparsers(
        dest="action", required=True)
    p = ipfs.add_parser("up", help="start an IPFS node (Helia) on 127.0.0.1 for this ZKFL_HOME")
    p.add_argument("--port", type=_positive_int, help="HTTP port of its RPC API and gateway")
    p.add_argument("--peer", action="append", default=[], metavar="MULTIADDR",
                   help="another party's node to connect to (its /ip4/.../p2p/... address)")
    p.set_defaults(func=cmd_ipfs_up)
    ipfs.add_parser("down", help="stop it").set_defaults(func=cmd_ipfs_down)
    p = ipfs.add_parser("add", help="add a file; prints its CID (ipfs add --cid-version 1 --raw-leaves)")
    _ipfs_args(p)
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_ipfs_add)
    p = ipfs.add_parser("get", help="fetch an artifact by CID, checking every block")
    _ipfs_args(p)
    p.add_argument("cid")
    p.add_argument("--out", type=Path)
    p.set_defaults(func=cmd_ipfs_get)


def _tools_commands(sub: _Commands) -> None:
    tools = sub.add_parser("tools", help="the pinned Node.js tools (anvil, solc-js, zokrates-js, helia)")
    tools.add_subparsers(dest="action", required=True).add_parser(
        "install", help="npm ci the pinned tools into ZKFL_TOOLS (default: ZKFL_HOME/tools)").set_defaults(
        func=cmd_tools_install)


def _apply_ipfs_args(args: argparse.Namespace) -> None:
    """--ipfs / --gateway name this process's content store (read by zkfl.store.open_store)."""
    from zkfl.ipfs.config import API_ENV, GATEWAYS_ENV

    if isinstance(getattr(args, "ipfs", None), str):
        os.environ[API_ENV] = args.ipfs
    if getattr(args, "gateway", None):
        os.environ[GATEWAYS_ENV] = ",".join(args.gateway)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _apply_ipfs_args(args)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # its failures reach the user as BrokerError
    logging.getLogger("ezkl").setLevel(logging.ERROR)  # layout notes ("Using 3 columns for range-check")
    os.environ.setdefault("TQDM_DISABLE", "1")
    from zkfl.errors import ZkflError

    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ZkflError as exc:
        print(f"zkfl: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zkfl: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if os.environ.get("ZKFL_DEBUG"):
            raise
        name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"zkfl: error: {exc.strerror or exc}{name}", file=sys.stderr)
        return 1
    except Exception as exc:  # one line, not a traceback; ZKFL_DEBUG=1 shows it
        if os.environ.get("ZKFL_DEBUG"):
            raise
        print(f"zkfl: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
