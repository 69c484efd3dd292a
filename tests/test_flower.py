"""zkfl in Flower: ZkFedAvg averages only replies whose proof verifies and is bound to this
task, round and wallet; the example app (3 honest nodes, 1 that tampers) on Flower's
simulation engine rejects the tamperer every round and publishes zkfl's FedAvg, proven.

The checks on crafted replies use one real proof (ezkl, logreg on breast_cancer) and call the
strategy as Flower's engine does (`configure_train`'s bookkeeping, then `aggregate_train`)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_account import Account
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from web3 import Web3

from zkfl.aggregator.service import Aggregator
from zkfl.contracts.chain import AnvilProcess, account_from_key, dev_keys, free_port
from zkfl.contracts.federation import Federation
from zkfl.datasets import load, shard
from zkfl.field.commit import commit, commitment_hex
from zkfl.flower import FlowerTask, ZkFedAvg, zk_client_app
from zkfl.flower.client import signed, submit_on_chain
from zkfl.flower.records import MODEL_KEY, PROOF_RECORD, UPDATE_KEY, int_arrays, read_reply, reply_content
from zkfl.flower.strategy import signed_metrics
from zkfl.flower.task import PACKAGE
from zkfl.ipfs.config import API_ENV
from zkfl.ipfs.node import start_ipfs_node
from zkfl.middleware.client import Client
from zkfl.middleware.messages import ClientMetrics, UpdateSubmission
from zkfl.middleware.transport.inprocess import InProcessTransport
from zkfl.organisation import PreparedTask, post_task, prepare_task
from zkfl.prover.ezkl.aggregation import statement_problems
from zkfl.prover.ezkl.prove import proof_json, verify_proof
from zkfl.prover.fedavg import fedavg
from zkfl.prover.records import GLOBAL_INDEX

REPO = Path(__file__).resolve().parent.parent
KEY_A, KEY_B = dev_keys()[2], dev_keys()[3]


@pytest.fixture(scope="module")
def prepared() -> PreparedTask:
    return prepare_task("logreg", "breast_cancer")


def load_first(context: Context) -> tuple[Any, Any]:
    return shard(load("breast_cancer"), int(context.node_config["partition-id"]) + 1, 4)


@pytest.fixture(scope="module")
def honest(prepared: PreparedTask) -> tuple[FlowerTask, UpdateSubmission]:
    """One real proven step of wallet A, round 0 of an off-chain run: the reply of zkfl's
    ClientApp, called as a Flower engine calls it."""
    task = FlowerTask.off_chain(prepared.package_cid)
    app = zk_client_app(load_first, lambda context: KEY_A)
    train = Message(RecordDict({"arrays": int_arrays(MODEL_KEY, prepared.initial.values),
                                "config": ConfigRecord({**task.to_config(0), "server-round": 1})}),
                    dst_node_id=1, message_type="train")
    answer = app(train, node_context(0))
    assert not answer.has_error(), answer.error.reason
    submission = read_reply(answer)
    assert submission.wallet == Account.from_key(KEY_A).address and submission.round == 0
    return task, submission


def node_context(partition: int) -> Context:
    return Context(run_id=1, node_id=1, node_config={"partition-id": partition, "num-partitions": 4},
                   state=RecordDict({}), run_config={})


def test_the_client_app_scores_the_model_it_is_sent(prepared: PreparedTask) -> None:
    app = zk_client_app(load_first, lambda context: KEY_A)
    evaluate = Message(RecordDict({"arrays": int_arrays(MODEL_KEY, prepared.initial.values),
                                   "config": ConfigRecord({PACKAGE: prepared.package_cid})}),
                       dst_node_id=1, message_type="evaluate")
    answer = app(evaluate, node_context(1))
    assert not answer.has_error(), answer.error.reason
    metrics = answer.content.metric_records["metrics"]
    x, _ = load_first(node_context(1))
    assert metrics["num-examples"] == len(x) and 0.0 <= float(metrics["accuracy"]) <= 1.0  # type: ignore[arg-type]


def reply(submission: UpdateSubmission, node: int, **changes: Any) -> Message:
    """A train reply from ``node`` carrying ``submission`` (its records then changed as given)."""
    request = Message(RecordDict({}), dst_node_id=node, message_type="train")
    content = reply_content(submission)
    for name, record in changes.items():
        content[name] = record
    return Message(content, reply_to=request)


def outsider_replies(good: UpdateSubmission) -> dict[int, Message]:
    """Replies crafted to crash or fool the strategy rather than pass it."""
    r, s_, v = good.signature_bytes[:32], int.from_bytes(good.signature_bytes[32:64], "big"), good.signature_bytes[64]
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = r + (n - s_).to_bytes(32, "big") + bytes([55 - v])  # the same signer, the other s: OpenZeppelin refuses it
    garbage = int_arrays(UPDATE_KEY, good.update)
    garbage[UPDATE_KEY] = Array(dtype="int64", shape=(len(good.update),), stype="numpy.ndarray", data=b"\x80garbage")
    floats = ArrayRecord({UPDATE_KEY: Array(np.array(good.update, dtype=np.float64))})
    padded = good.proof_bytes + bytes(32)
    return {
        12: reply(replace(good, signature="0x" + bytes(65).hex()), 12),  # r = s = 0: eth_keys raises BadSignature
        13: reply(replace(good, signature="0x" + high_s.hex()), 13),
        14: reply(replace(good, signature="0x" + (good.signature_bytes[:64] + bytes([1])).hex()), 14),  # v = 1
        15: reply(good, 15, arrays=floats),
        16: reply(good, 16, arrays=ArrayRecord({UPDATE_KEY: Array(np.array([good.update], dtype=np.int64))})),
        17: reply(good, 17, arrays=garbage),  # bytes that do not decode as they declare
        18: reply(signed(replace(good, proof="0x" + padded.hex()), good.update, KEY_A), 18),
    }


def strategy_at(prepared: PreparedTask, task: FlowerTask, server_round: int = 1,
                model: list[int] | None = None) -> ZkFedAvg:
    strategy = ZkFedAvg(task, prepared.step)
    strategy.open_round(server_round, int_arrays(MODEL_KEY, model or prepared.initial.values))
    return strategy


def reasons(strategy: ZkFedAvg) -> dict[int, str]:
    return {r.node: r.reason for r in strategy.rounds[-1].rejected}


def test_only_a_verified_reply_bound_to_this_task_round_and_wallet_is_averaged(
        prepared: PreparedTask, honest: tuple[FlowerTask, UpdateSubmission]) -> None:
    task, good = honest
    update = good.update
    forged_proof = bytearray(good.proof_bytes)
    forged_proof[len(forged_proof) // 2] ^= 1
    other_values = list(good.public_value_ints)
    other_values[GLOBAL_INDEX + 1] += 1  # a data commitment: every value the strategy compares still matches
    crafted = {
        # The honest reply, with a metric Flower's own averaging would crash on (metrics are not signed).
        1: reply(good, 1, metrics=MetricRecord({"num-examples": 16, "loss": [1.0, 2.0]})),
        2: reply(good, 2),  # the same reply again, from another node
        3: reply(signed(good, update, KEY_B), 3),  # wallet B claims A's proof as its own
        4: reply(signed(good, [2 * v for v in update], KEY_A), 4),  # poisoned update, signed
        5: reply(signed(replace(good, proof="0x" + bytes(forged_proof).hex()), update, KEY_A), 5),  # a bit flipped
        6: reply(signed(replace(good, public_values=[commitment_hex(v) for v in other_values]), update, KEY_A), 6),
        7: reply(replace(good, wallet=signed(good, update, KEY_B).wallet), 7),  # B's name on A's signature
        8: reply(good, 8, arrays=int_arrays(UPDATE_KEY, [v + 1 for v in update])),  # arrays differ from the signed
        9: reply(good, 9, metrics=MetricRecord({"num-examples": 1000})),  # weight inflated
        10: Message(Error(code=2, reason="Traceback ...\nValueError: out of memory"),
                    reply_to=Message(RecordDict({}), dst_node_id=10, message_type="train")),
        11: reply(good, 11, **{PROOF_RECORD: ConfigRecord({"submission": b"{not json"})}),
    }
    crafted |= outsider_replies(good)
    strategy = strategy_at(prepared, task)
    arrays, metrics = strategy.aggregate_train(1, list(crafted.values()))
    record = strategy.rounds[-1]
    assert record.accepted == [good.wallet] and record.accepted_nodes == [1]
    why = reasons(strategy)
    assert set(why) == set(crafted) - {1}
    assert "second reply" in why[2]
    assert "not bound to" in why[3]
    assert "not the proof's output" in why[4]
    assert "does not verify" in why[5] and "does not verify" in why[6]
    assert "not signed by" in why[7]
    assert "not the one the wallet signed" in why[8]
    assert "num-examples" in why[9]
    assert why[10] == "the client failed: ValueError: out of memory"
    assert "malformed JSON" in why[11]
    assert "not canonical" in why[12] and "not canonical" in why[13] and "not canonical" in why[14]
    assert all("flat int64 numpy array" in why[n] for n in (15, 16)) and "does not decode" in why[17]
    assert "the task's verifier takes" in why[18]
    # Nothing the wallet did not sign is put to its name.
    names = {r.node: r.client for r in record.rejected}
    assert names[7] == f"node 7 (names {signed(good, update, KEY_B).wallet})" and names[12].startswith("node 12")
    assert names[3] == signed(good, update, KEY_B).wallet and names[4] == good.wallet
    expected = fedavg([update], [good.num_samples], prepared.step.update_scale, prepared.spec.scale)
    assert arrays is not None and list(arrays[MODEL_KEY].numpy()) == expected and metrics is not None

    assert metrics is not None and metrics["loss"] == good.metrics.loss  # from the signed submission
    # A metric one accepted reply did not report is left out, not averaged in as 0.
    quiet = replace(good, metrics=ClientMetrics(accuracy=good.metrics.accuracy))
    assert all(set(r["metrics"]) == {"num-examples", "accuracy"} for r in signed_metrics([good, quiet]))
    # A participant list in any letter case admits the honest wallet; evaluate replies that would
    # end Flower's own averaging are left out.
    listed = ZkFedAvg(task, prepared.step, participants=[good.wallet.lower()])
    listed.open_round(1, int_arrays(MODEL_KEY, prepared.initial.values))
    assert listed.aggregate_train(1, [reply(good, 1)])[0] is not None
    request = Message(RecordDict({}), dst_node_id=5, message_type="evaluate")
    evaluations = [Message(RecordDict({"metrics": MetricRecord({"num-examples": 10, "loss": 0.5, "accuracy": 0.75})}),
                           reply_to=request),
                   Message(RecordDict({"metrics": MetricRecord({"num-examples": 10, "loss": [1.0], "extra": 1})}),
                           reply_to=request)]
    assert listed.aggregate_evaluate(1, evaluations) == MetricRecord({"loss": 0.5, "accuracy": 0.75})

    # Another run (another task), and the next round of this one: the same reply is refused.
    elsewhere = strategy_at(prepared, FlowerTask.off_chain(prepared.package_cid))
    assert elsewhere.aggregate_train(1, [reply(good, 1)]) == (None, None)
    assert "not this one" in reasons(elsewhere)[1]
    later = strategy_at(prepared, task, server_round=2, model=expected)
    assert later.aggregate_train(2, [reply(good, 1), reply(signed(replace(good, round=1), update, KEY_A), 2)]) \
        == (None, None)
    assert "for round 0, this is round 1" in reasons(later)[1]
    assert "does not start from round 1's global model" in reasons(later)[2]


@pytest.mark.slow
def test_flower_example_rejects_the_tampering_node_and_averages_the_honest_ones(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "flower" / "run.py"), "--rounds", "2",
                           "--report", str(report_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    report = json.loads(report_path.read_text())
    honest = set(report["clients"]) - {report["tampering"]}
    assert len(report["rounds"]) == 2 and report["engine"] == "flower-simulation"
    model = report["initial_model"]
    for r in report["rounds"]:
        assert set(r["accepted"]) == honest and len(r["accepted"]) == 3
        [rejection] = r["rejected"]
        assert rejection["client"] == report["tampering"] and "not the proof's output" in rejection["reason"]
        assert f"rejected {report['tampering']}: " in proc.stdout
        assert r["accuracy"] is not None and r["accuracy"] > 0.5
        # zkfl's FedAvg of exactly the accepted updates, and a FedAvg proof that states it.
        assert r["model"] == fedavg(r["updates"], r["samples"], report["update_scale"], report["model_scale"])
        assert r["model"] != model  # the round moved the model
        model = r["model"]
    assert report["final_model"] == model
    last = report["rounds"][-1]
    values = [int(v, 16) for v in last["fedavg_instances"]]
    prepared = prepare_task("logreg", "breast_cancer")  # cached: the organisation's FedAvg circuit
    accepted = [commit(np.array(u, dtype=np.int64)) for u in last["updates"]]
    assert statement_problems(values, prepared.aggregation.slots, accepted, last["samples"],
                              commit(np.array(model, dtype=np.int64))) == []
    assert verify_proof(prepared.aggregation, proof_json(bytes.fromhex(last["fedavg_proof"][2:]), values))[0]


@pytest.mark.slow
def test_flower_example_on_chain_slashes_the_tampering_node_and_publishes_the_honest_average(
        tmp_path: Path) -> None:
    """The same app with the task on a local chain: the Federation verifies every relayed
    reply, rejects and slashes the tamperer, and zkfl's Aggregator publishes the FedAvg."""
    report_path = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "flower" / "run.py"), "--chain", "--rounds", "1",
                           "--report", str(report_path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    report = json.loads(report_path.read_text())
    honest = set(report["clients"]) - {report["tampering"]}
    [first] = report["rounds"]
    assert set(first["accepted"]) == honest
    [rejection] = first["rejected"]
    assert rejection["client"] == report["tampering"] and rejection["reason"].startswith("rejected on chain")
    assert report["chain"]["slashed"] == {w: w == report["tampering"] for w in report["clients"]}
    assert report["chain"]["current_round"] == 1  # published on chain
    assert first["model"] == report["final_model"] == fedavg(first["updates"], first["samples"],
                                                             report["update_scale"], report["model_scale"])


@pytest.mark.slow
def test_on_chain_a_reply_forged_under_an_honest_wallet_is_refused_and_never_counted(
        anvil: AnvilProcess, w3: Web3, prepared: PreparedTask) -> None:
    """Node 9 sends, first, a poisoned update under honest wallet A's name (signed by B). The
    chain refuses it without judging (nobody slashed); A's own reply is accepted and is the
    only update counted, and the refusal is put to node 9, not to A."""
    keys = dev_keys()
    posted = post_task(w3, account_from_key(keys[0]), model="logreg", dataset="breast_cancer", rounds=1,
                       reward_wei=10**18, min_stake_wei=10**16, deadline_seconds=3600,
                       aggregator=account_from_key(keys[1]).address)
    Client(anvil.rpc_url, posted.task_id, KEY_A, federation=posted.federation, show_progress=False).join()
    task = FlowerTask(posted.package_cid, w3.eth.chain_id, posted.federation, posted.task_id)
    x, y = shard(load("breast_cancer"), 1, 4)
    honest = submit_on_chain(task, 0, prepared.initial.values, x, y, KEY_A, anvil.rpc_url)
    forged = replace(signed(honest, [-10 * v for v in honest.update], KEY_B), wallet=honest.wallet)
    fed = Federation(w3, posted.federation)
    strategy = ZkFedAvg(task, aggregator=Aggregator(fed, posted.task_id, account_from_key(keys[1]),
                                                    InProcessTransport()))
    strategy.open_round(1, int_arrays(MODEL_KEY, prepared.initial.values))
    arrays, _ = strategy.aggregate_train(1, [reply(forged, 9), reply(honest, 1)])
    record = strategy.rounds[-1]
    assert record.accepted == [honest.wallet] and record.accepted_nodes == [1]
    assert record.updates == [honest.update] and record.samples == [honest.num_samples]
    [refusal] = record.rejected
    assert refusal.client == f"node 9 (names {honest.wallet})" and refusal.reason.startswith("refused")
    assert not fed.participant(posted.task_id, honest.wallet).slashed
    assert fed.task(posted.task_id).current_round == 1  # published
    assert arrays is not None and list(arrays[MODEL_KEY].numpy()) == record.model == fedavg(
        [honest.update], [honest.num_samples], prepared.step.update_scale, prepared.spec.scale)


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the SuperLink exited"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"nothing listens on port {port} after {timeout_s:.0f} s")


@pytest.mark.slow
def test_the_same_app_on_flowers_deployment_engine_rejects_the_tampering_node(tmp_path: Path) -> None:
    """Flower's other engine: a SuperLink, three SuperNodes (each ClientApp in its own process)
    and `flwr run` of the example's app project. Nothing is installed at run time. Each SuperNode
    is a participant's machine: its own ZKFL_HOME, empty at the start, so its ClientApps can only
    have the task's package (circuit, keys' inputs, SRS) by CID, from the IPFS node the organisation's
    ServerApp published it to."""
    with start_ipfs_node(tmp_path / "ipfs") as node:
        _run_the_deployment_engine(tmp_path, {API_ENV: node.api_url})


def _run_the_deployment_engine(tmp_path: Path, ipfs_env: dict[str, str]) -> None:
    flwr_home, report_path = tmp_path / "flwr", tmp_path / "report.json"
    flwr_home.mkdir()
    (flwr_home / "config.toml").write_text('[superlink]\ndefault = "local"\n\n[superlink.local]\n'
                                           'address = "127.0.0.1:9093"\ninsecure = true\n')
    tools = Path(sys.executable).parent
    # The SuperLink and SuperNodes start flower-superexec, flwr-serverapp and flwr-clientapp by name.
    env = {**os.environ, **ipfs_env, "FLWR_HOME": str(flwr_home), "FLWR_TELEMETRY_ENABLED": "0",
           "FLWR_DISABLE_UPDATE_CHECK": "1", "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"}
    commands = [[str(tools / "flower-superlink"), "--insecure", "--disable-runtime-dependency-installation"]]
    commands += [[str(tools / "flower-supernode"), "--insecure", "--superlink", "127.0.0.1:9092", "--node-config",
                  f"partition-id={i} num-partitions=3", "--clientappio-api-address", f"127.0.0.1:{free_port()}"]
                 for i in range(3)]
    homes = [env] + [{**env, "ZKFL_HOME": str(tmp_path / f"participant-{i}")} for i in range(3)]
    log = (tmp_path / "engine.log").open("w")
    engine = [subprocess.Popen(c, env=e, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
              for c, e in zip(commands, homes, strict=True)]
    try:
        wait_for_port(9093, engine[0])  # the SuperLink's Control API: `flwr run` does not wait for it
        run = subprocess.run([str(tools / "flwr"), "run", str(REPO / "examples" / "flower"), "local", "--stream",
                              "--run-config", f"report='{report_path}' nodes=3 num-server-rounds=1"],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
        assert run.returncode == 0 and report_path.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    finally:
        for process in engine:
            os.killpg(process.pid, signal.SIGTERM)
        for process in engine:
            process.wait(timeout=60)
        log.close()
    report = json.loads(report_path.read_text())
    wallets = [Account.from_key(k).address for k in dev_keys()[2:5]]
    [first] = report["rounds"]
    assert report["engine"] == "flower-deployment" and sorted(first["accepted"]) == sorted(wallets[:2])
    [rejection] = first["rejected"]
    assert rejection["client"] == wallets[2] and "not the proof's output" in rejection["reason"]
    assert first["model"] == report["final_model"] == fedavg(first["updates"], first["samples"],
                                                             report["update_scale"], report["model_scale"])
    # Each participant fetched the package by CID into its own home and rebuilt its proving key there.
    for i in range(3):
        keys = list((tmp_path / f"participant-{i}" / "cache" / "packages").glob("ezkl-*/pk.key"))
        assert len(keys) == 1, f"participant {i} has no proving key of its own"
