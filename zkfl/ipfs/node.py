"""A real IPFS node for zkfl: Helia (IPFS in JavaScript) run by Node.js from the pinned npm tools.

``node.mjs`` (next to this file) is the daemon: one HTTP port on 127.0.0.1 that speaks
the Kubo RPC subset zkfl uses, a trustless gateway and the IPFS Pinning Service API,
and a libp2p TCP port for bitswap with the peers it is given (never the public network).
This module starts it, waits for its ready line and stops it.

``ipfs_up`` runs one detached per ``ZKFL_HOME`` (repo and state under ``ZKFL_HOME/ipfs``),
so it outlives the command that started it, like ``chain_up``; ``ipfs_down`` stops it.
The repo keeps the blocks, the pins, the peer key and the swarm port, so a restarted
node has the same peer id and multiaddr and still serves what it had.

The pinning-service token reaches the node through its environment
(``ZKFL_IPFS_PIN_TOKEN``), never its command line, where any local user could read it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkfl.errors import ConfigError, ZkflError
from zkfl.ipfs.config import PINNING_TOKEN_ENV
from zkfl.paths import node_binary, tools_dir, zkfl_home
from zkfl.processes import terminate_group

DAEMON = Path(__file__).with_name("node.mjs")
PIN_TOKEN_ENV = "ZKFL_IPFS_PIN_TOKEN"
LOG_FILE = "node.log"  # the daemon's stderr, appended across runs
STATE_FILE = "state.json"  # ipfs_up's record of the detached node


@dataclass
class IpfsNodeProcess:
    """A running node: where its HTTP API and gateway answer, and who it is on libp2p."""

    pid: int
    api_url: str
    gateway_url: str
    peer_id: str
    addresses: list[str]
    repo: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the daemon stops Helia and flushes its stores), SIGKILL if it hangs."""
        terminate_group(self.pid, self.process, timeout)

    def answers(self) -> bool:
        """True if the node at ``api_url`` is this one (same peer id), not a stale record."""
        try:
            request = urllib.request.Request(f"{self.api_url}/api/v0/id", method="POST")
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(json.load(response).get("ID") == self.peer_id)
        except (OSError, ValueError):
            return False

    def record(self) -> dict[str, Any]:
        return {"pid": self.pid, "api_url": self.api_url, "gateway_url": self.gateway_url,
                "peer_id": self.peer_id, "addresses": self.addresses, "repo": str(self.repo)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> IpfsNodeProcess:
        return cls(pid=int(record["pid"]), api_url=record["api_url"], gateway_url=record["gateway_url"],
                   peer_id=record["peer_id"], addresses=list(record["addresses"]), repo=Path(record["repo"]))

    def __enter__(self) -> IpfsNodeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def node_modules() -> Path:
    """The npm packages the daemon imports: installed by ``make setup``, never at run time."""
    modules = tools_dir() / "node_modules"
    if not (modules / "helia" / "package.json").exists():
        raise ConfigError(f"the IPFS node's npm packages (helia) are not installed in {modules}: "
                          "run `make setup` in a checkout, or `zkfl tools install`")
    return modules


def _daemon_args(repo: Path, port: int | None, swarm_port: int | None, peers: Sequence[str]) -> list[str]:
    args = [node_binary(), str(DAEMON), "--modules", str(node_modules()), "--repo", str(repo),
            "--port", str(port or 0)]
    if swarm_port is not None:  # else the repo's last swarm port, so peers find it again
        args += ["--swarm-port", str(swarm_port)]
    for peer in peers:
        args += ["--peer", peer]
    return args


def start_ipfs_node(repo: Path, port: int | None = None, swarm_port: int | None = None,
                    peers: Sequence[str] = (), pin_token: str | None = None,
                    timeout: float = 60) -> IpfsNodeProcess:
    """Start a node on ``repo`` and return once its API answers.

    ``port`` is the HTTP port (None: a free one); ``swarm_port`` the libp2p TCP port
    (None: the one this repo used last, else a free one; 0: a free one). ``peers`` are
    multiaddrs it dials at start and redials while disconnected. ``pin_token`` enables
    its pinning-service API; None passes on ``ZKFL_IPFS_PIN_TOKEN`` from this environment.
    The process runs in its own session, so it survives this one unless stopped.
    """
    repo = Path(repo).resolve()
    repo.mkdir(parents=True, exist_ok=True)
    args = _daemon_args(repo, port, swarm_port, peers)
    env = dict(os.environ)
    env.pop(PINNING_TOKEN_ENV, None)  # this party's token for a remote service is none of the node's business
    if pin_token is not None:
        env[PIN_TOKEN_ENV] = pin_token
    # stdout goes to a file of this start's own, not a pipe: the node outlives this
    # process, and a start refused (repo in use) must not clobber a running node's files.
    fd, ready_name = tempfile.mkstemp(prefix="ready-", suffix=".json", dir=repo)
    ready_file = Path(ready_name)
    try:
        with os.fdopen(fd, "wb") as ready, open(repo / LOG_FILE, "ab") as log:
            log_start = log.tell()
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=ready, stderr=log, env=env,
                                       start_new_session=True)
        return _wait_ready(process, ready_file, log_start, timeout)
    finally:
        ready_file.unlink(missing_ok=True)


def _wait_ready(process: subprocess.Popen[bytes], ready_file: Path, log_start: int,
                timeout: float) -> IpfsNodeProcess:
    """Wait for the daemon's one JSON line on stdout; on failure, say why with its log."""
    repo = ready_file.parent
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = ready_file.read_text()
        if text.endswith("\n"):
            ready = json.loads(text)
            return IpfsNodeProcess(pid=process.pid, api_url=ready["api"], gateway_url=ready["gateway"],
                                   peer_id=ready["peer_id"], addresses=list(ready["addresses"]),
                                   repo=repo, process=process)
        if process.poll() is not None:
            raise ZkflError(f"the IPFS node exited at start (code {process.returncode}): "
                            f"{_log_tail(repo, log_start)}")
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    raise ZkflError(f"the IPFS node did not start within {timeout:g} s: {_log_tail(repo, log_start)}")


def _log_tail(repo: Path, start: int, limit: int = 2000) -> str:
    with open(repo / LOG_FILE, "rb") as log:
        log.seek(start)
        text = log.read().decode(errors="replace").strip()
    return text[-limit:] or f"(nothing in {repo / LOG_FILE})"


# ---------------------------------------------------------------------- the detached node


def _ipfs_dir() -> Path:
    path = zkfl_home() / "ipfs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ipfs_running() -> IpfsNodeProcess | None:
    """The node ``ipfs_up`` started for this ZKFL_HOME, if it still answers (else None)."""
    state = _ipfs_dir() / STATE_FILE
    if not state.exists():
        return None
    node = IpfsNodeProcess.from_record(json.loads(state.read_text()))
    return node if node.answers() else None


def ipfs_up(port: int | None = None, peers: Sequence[str] = ()) -> IpfsNodeProcess:
    """Start this home's node, detached, or return the one already running.

    Its repo is ``ZKFL_HOME/ipfs/repo``; its record, ``ZKFL_HOME/ipfs/state.json``, lets
    a later command find or stop it. A running node is returned as it is, whatever
    ``port`` and ``peers`` ask for.
    """
    running = ipfs_running()
    if running is not None:
        return running
    node = start_ipfs_node(_ipfs_dir() / "repo", port=port, peers=peers)
    (_ipfs_dir() / STATE_FILE).write_text(json.dumps(node.record()))
    return node


def ipfs_down() -> bool:
    """Stop this home's node; False if none was running (a stale record is removed)."""
    state = _ipfs_dir() / STATE_FILE
    if not state.exists():
        return False
    node = IpfsNodeProcess.from_record(json.loads(state.read_text()))
    ours = node.answers() or _is_daemon(node.pid, node.repo)  # never signal a pid reused by another program
    if ours:
        node.stop()
    state.unlink(missing_ok=True)
    return ours


def _is_daemon(pid: int, repo: Path) -> bool:
    """True if ``pid`` is a node.mjs on ``repo`` (one that no longer answers HTTP, say)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(DAEMON).encode() in argv and str(repo).encode() in argv
