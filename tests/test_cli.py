"""The command line end to end on anvil and RabbitMQ, and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zkfl.contracts.chain import AnvilProcess, account_from_key, connect, dev_keys
from zkfl.contracts.federation import resolve_federation

KEYS = dev_keys()
AGGREGATOR = account_from_key(KEYS[1]).address


def zkfl(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zkfl.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy(), check=False)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("zkfl: error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def cli_task(anvil: AnvilProcess) -> int:
    result = zkfl("task", "create", "--rpc", anvil.rpc_url, "--key", KEYS[0], "--model", "logreg",
                  "--dataset", "breast_cancer", "--rounds", "1", "--reward", "1", "--min-stake", "0.1",
                  "--deadline", "3600", "--aggregator", AGGREGATOR)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


@pytest.mark.slow
def test_task_create_join_train_submit_status(anvil: AnvilProcess, cli_task: int, tmp_path: Path,
                                              rabbitmq_url: str) -> None:
    rpc = anvil.rpc_url
    assert zkfl("client", "join", "--rpc", rpc, "--task", str(cli_task), "--key", KEYS[6]).returncode == 0
    out = tmp_path / "update"
    trained = zkfl("client", "train", "--rpc", rpc, "--task", str(cli_task), "--key", KEYS[6], "--shard", "1/3",
                   "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    assert {p.name for p in out.iterdir()} >= {"update.json", "proof.json", "public.json"}
    client = account_from_key(KEYS[6]).address
    verified = zkfl("verify", "--rpc", rpc, "--task", str(cli_task), "--wallet", client, str(out))
    assert verified.returncode == 0, verified.stderr + verified.stdout
    stolen = zkfl("verify", "--rpc", rpc, "--task", str(cli_task), "--wallet", AGGREGATOR, str(out))
    assert stolen.returncode == 1 and "binding" in stolen.stderr
    submitted = zkfl("client", "submit", "--rpc", rpc, "--task", str(cli_task), "--key", KEYS[6],
                     "--broker", rabbitmq_url, str(out))
    assert submitted.returncode == 0, submitted.stderr
    # The aggregator relays the submission, sees every participant decided, publishes and
    # exits: the task had one round.
    aggregated = zkfl("aggregator", "run", "--rpc", rpc, "--task", str(cli_task), "--key", KEYS[1],
                      "--broker", rabbitmq_url, timeout=300)
    assert aggregated.returncode == 0, aggregated.stderr
    assert "round 0 published" in aggregated.stdout
    status = zkfl("task", "status", "--rpc", rpc, "--task", str(cli_task), "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["task_id"] == cli_task and data["rounds"][0]["accepted"] == [client]
    assert data["rounds"][0]["global_commitment"].startswith("0x") and data["current_round"] == 1
    assert set(data) >= {"rounds", "rewards", "slashed"}
    proof = data["rounds"][0]["aggregation_proof"]  # the round was published with a verified FedAvg proof
    assert proof["tx_hash"] == data["rounds"][0]["publish_tx"] and proof["gas"] > 0 and proof["verified_on_chain"]
    text = zkfl("task", "status", "--rpc", rpc, "--task", str(cli_task))
    assert "proven aggregation: verified on chain in" in text.stdout


@pytest.mark.slow
def test_client_run_takes_part_in_every_round_then_settles_and_withdraws(anvil: AnvilProcess,
                                                                         rabbitmq_url: str) -> None:
    """One command for a participant: it joins, proves and submits each round as it opens (the
    aggregator runs beside it), and once the last round is published it settles and withdraws."""
    rpc = anvil.rpc_url
    created = zkfl("task", "create", "--rpc", rpc, "--key", KEYS[0], "--rounds", "2", "--reward", "1",
                   "--min-stake", "0.1", "--deadline", "3600", "--aggregator", AGGREGATOR)
    assert created.returncode == 0, created.stderr
    task = created.stdout.strip()
    participant = subprocess.Popen(
        [sys.executable, "-m", "zkfl.cli", "client", "run", "--rpc", rpc, "--task", task, "--key", KEYS[7],
         "--shard", "2/3", "--stake", "0.2", "--broker", rabbitmq_url, "--withdraw", "--round-timeout", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        aggregated = zkfl("aggregator", "run", "--rpc", rpc, "--task", task, "--key", KEYS[1],
                          "--broker", rabbitmq_url, timeout=900)
        out, err = participant.communicate(timeout=600)
    finally:
        participant.kill()
    assert aggregated.returncode == 0, aggregated.stderr
    assert participant.returncode == 0, err
    wallet = account_from_key(KEYS[7]).address
    for line in (f"{wallet} joined task {task}", "round 0: accepted", "round 1: accepted", f"task {task} settled",
                 f"{wallet} withdrew {10**18} reward and {2 * 10**17} stake"):
        assert line in out, out
    fed = resolve_federation(connect(rpc), None)
    state = fed.participant(int(task), wallet)  # the chain agrees with what it printed
    assert state.accepted_updates == 2 and state.withdrawn and fed.task(int(task)).settled


def test_chain_up_and_down() -> None:
    from zkfl.contracts.chain import free_port

    port = free_port()
    up = zkfl("chain", "up", "--port", str(port))
    assert up.returncode == 0, up.stderr
    assert f"rpc_url: http://127.0.0.1:{port}" in up.stdout and KEYS[0] in up.stdout
    down = zkfl("chain", "down", "--port", str(port))
    assert down.returncode == 0 and str(port) in down.stdout


@pytest.mark.slow
def test_errors_are_one_clear_line(anvil: AnvilProcess, cli_task: int, tmp_path: Path) -> None:
    rpc = anvil.rpc_url
    assert_one_line_error(zkfl("client", "submit", "--rpc", rpc, "--task", str(cli_task), "--key", KEYS[6],
                               str(tmp_path / "missing")), "is missing")
    assert_one_line_error(zkfl("task", "status", "--rpc", rpc, "--task", "999"), "task 999 does not exist")
    unfunded = "0x" + "5" * 64
    assert_one_line_error(zkfl("client", "join", "--rpc", rpc, "--task", str(cli_task), "--key", unfunded),
                          "less than the stake")
    (tmp_path / "bundle").mkdir()
    for name in ("proof.json", "update.json"):
        (tmp_path / "bundle" / name).write_text("{}")
    (tmp_path / "bundle" / "public.json").write_text(json.dumps(
        {"task_id": cli_task, "round": 0, "num_samples": 16, "public_values": []}))
    (tmp_path / "bundle" / "update.json").write_text(json.dumps({"scale": 43, "values": [0]}))
    (tmp_path / "bundle" / "proof.json").write_text(json.dumps({"hex_proof": "0x00"}))
    # The SDK dry-runs a submission before it sends anything: a wallet that never joined is refused
    # (or, once the task has run its rounds, the task is closed), before any broker is asked.
    result = zkfl("client", "submit", "--rpc", rpc, "--task", str(cli_task), "--key", KEYS[6],
                  "--broker", "amqp://guest:guest@127.0.0.1:1/%2F", str(tmp_path / "bundle"))
    assert_one_line_error(result)
    assert "participant has not joined" in result.stderr or f"task {cli_task} is closed" in result.stderr
    assert_one_line_error(zkfl("aggregator", "run", "--rpc", rpc, "--task", str(cli_task), "--key", KEYS[1],
                               "--broker", "amqp://guest:guest@127.0.0.1:1/%2F"), "no RabbitMQ broker answers")
    assert_one_line_error(zkfl("task", "status", "--rpc", "http://127.0.0.1:1", "--task", "1"), "no chain answers")
    assert_one_line_error(zkfl("client", "join", "--rpc", rpc, "--task", str(cli_task), "--key", "nothex"),
                          "invalid private key")


@pytest.mark.slow
def test_demo_keep_running_serves_the_dashboard_until_interrupted(tmp_path: Path) -> None:
    import signal
    import time
    import urllib.request

    from zkfl.contracts.chain import free_port

    port, report = free_port(), tmp_path / "report.json"
    process = subprocess.Popen([sys.executable, "-m", "zkfl.cli", "demo", "--clients", "2", "--rounds", "1",
                                "--malicious", "0", "--keep-running", "--dashboard-port", str(port),
                                "--report", str(report)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 300
        while not any("dashboard_url:" in line for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
            lines.append(process.stdout.readline())  # type: ignore[union-attr]
        data = json.loads(report.read_text())
        assert data["rpc_url"].startswith("http://127.0.0.1:") and data["dashboard_url"] == f"http://127.0.0.1:{port}/"
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks/{data['task_id']}", timeout=5) as r:
                    task = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.2)
        assert task["rounds"][0]["accepted"] and task["settled"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
