"""The command line end to end on anvil and RabbitMQ, and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from zkfl.contracts.chain import AnvilProcess, dev_keys

KEYS = dev_keys()


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
                  "--dataset", "breast_cancer", "--rounds", "2", "--reward", "1", "--min-stake", "0.1",
                  "--deadline", "3600", "--aggregator", "0x" + "00" * 19 + "01")
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


def test_task_create_join_train_submit_status(anvil: AnvilProcess, cli_task: int, tmp_path: Path,
                                              rabbitmq_url: str) -> None:
    rpc = anvil.rpc_url
    assert zkfl("client", "join", "--rpc", rpc, "--task", str(cli_task), "--key", KEYS[6]).returncode == 0
    out = tmp_path / "update"
    trained = zkfl("client", "train", "--rpc", rpc, "--task", str(cli_task), "--key", KEYS[6], "--shard", "1/3",
                   "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    assert {p.name for p in out.iterdir()} >= {"update.json", "proof.json", "public.json"}
    submitted = zkfl("client", "submit", "--rpc", rpc, "--task", str(cli_task), "--key", KEYS[6],
                     "--broker", rabbitmq_url, str(out))
    assert submitted.returncode == 0, submitted.stderr
    status = zkfl("task", "status", "--rpc", rpc, "--task", str(cli_task), "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["task_id"] == cli_task and data["rounds"][0]["accepted"] == []
    assert set(data) >= {"rounds", "rewards", "slashed"}


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
    assert_one_line_error(zkfl("client", "submit", "--rpc", rpc, "--task", str(cli_task), "--key", KEYS[6],
                               "--broker", "amqp://guest:guest@127.0.0.1:1/%2F", str(tmp_path / "bundle")),
                          "no RabbitMQ broker answers")
    assert_one_line_error(zkfl("task", "status", "--rpc", "http://127.0.0.1:1", "--task", "1"), "no chain answers")
    assert_one_line_error(zkfl("client", "join", "--rpc", rpc, "--task", str(cli_task), "--key", "nothex"),
                          "invalid private key")
