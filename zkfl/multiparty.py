"""A federation of separate parties: every role a process with its own home.

The organisation, each participant, the aggregator and the auditor run the `zkfl`
command line, each with its own ``HOME`` and ``ZKFL_HOME`` (so no role can read
another's files) and, where a real deployment would have one, its own IPFS node. They
share only the chain's RPC URL, the broker and IPFS: every artifact one role produced
reaches another by CID, through IPFS. This is what `zkfl demo --ipfs` runs, and what the
multi-party test checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkfl.contracts.chain import account_from_key, connect, dev_keys, start_anvil
from zkfl.contracts.federation import Federation, Reason
from zkfl.errors import ZkflError
from zkfl.ipfs.config import API_ENV, GATEWAYS_ENV
from zkfl.ipfs.node import IpfsNodeProcess, start_ipfs_node
from zkfl.paths import tools_dir

ROLE_TIMEOUT = 900  # seconds any one command may take (a participant's first proof builds its keys)

# A cheating participant skips the SDK's pre-flight check and signs an update that is
# not the one its proof computed: the contract must reject it and slash the stake.
_CHEAT = """
import json, sys
from pathlib import Path
from zkfl.middleware.bundle import UpdateBundle
from zkfl.middleware.client import Client
rpc, task, key, broker, folder = sys.argv[1:6]
update = json.loads((Path(folder) / "update.json").read_text())
update["values"][0] += 1000
(Path(folder) / "update.json").write_text(json.dumps(update))
client = Client(rpc, int(task), key, broker)
client.submit(UpdateBundle.load(Path(folder)), preflight=False)
client.close()
"""


@dataclass
class MultiPartyConfig:
    workdir: Path
    participants: int = 3
    malicious: int = 1
    rounds: int = 2
    broker: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    block_time: float | None = None  # mine on an interval, as a real chain does
    chain_id: int | None = None
    collection_window: int = 1800  # long: a round closes when every active participant is decided
    # role name -> the Python that runs it (e.g. a participant installed from the wheel in its own venv)
    pythons: dict[str, str] = field(default_factory=dict)
    say: Callable[[str], None] = field(default=lambda text: None)


@dataclass
class Role:
    """One party: its own home, its own environment, optionally its own IPFS node."""

    name: str
    home: Path
    env: dict[str, str]
    node: IpfsNodeProcess | None = None
    python: str = sys.executable
    seconds: list[tuple[str, float]] = field(default_factory=list)  # (command, wall time) of each run

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # cwd is the role's home: never the checkout, whose folders must not be importable
        started = time.monotonic()
        proc = subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True,
                              timeout=ROLE_TIMEOUT, check=False, cwd=self.home)
        command = " ".join(a for a in args[:2] if not a.startswith("--"))
        self.seconds.append((command, round(time.monotonic() - started, 2)))
        with (self.home / "commands.log").open("a") as log:
            log.write(f"$ zkfl {' '.join(_redacted(args))}\n{proc.stdout}{proc.stderr}(exit {proc.returncode})\n")
        if check and proc.returncode != 0:
            raise ZkflError(f"{self.name}: `zkfl {args[0]} {args[1]}` failed: {proc.stderr.strip()[-600:]}")
        return proc

    def command(self, *args: str) -> list[str]:
        return [self.python, "-P", "-m", "zkfl.cli", *args]  # -P: the working folder is never importable

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        log = (self.home / f"{args[0]}-{args[1]}.log").open("w")
        return subprocess.Popen(self.command(*args), env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True,
                                cwd=self.home)


def _redacted(args: Sequence[str]) -> list[str]:
    """The command as logged: a private key never reaches a log."""
    return ["***" if i > 0 and args[i - 1] == "--key" else a for i, a in enumerate(args)]


def _base_env(own_install: bool) -> dict[str, str]:
    """What a role inherits: the installed software, nothing of anyone's state. A role with
    its own installation (a wheel in its own venv) installs its own npm tools too."""
    keep = ("PATH", "LANG", "LC_ALL", "TQDM_DISABLE", "ZKFL_DEBUG")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    if not own_install:
        env["ZKFL_TOOLS"] = str(tools_dir())  # npm tools are software, like the Python packages
    return env


def _role(stack: ExitStack, cfg: MultiPartyConfig, name: str, peers: Sequence[IpfsNodeProcess] = (),
          node: bool = True, gateways: Sequence[IpfsNodeProcess] = ()) -> Role:
    home = cfg.workdir / name
    shutil.rmtree(home, ignore_errors=True)
    (home / ".zkfl").mkdir(parents=True)  # the default ZKFL_HOME under this HOME
    env = {**_base_env(name in cfg.pythons), "HOME": str(home), "ZKFL_HOME": str(home / ".zkfl")}
    process = None
    if node:
        process = stack.enter_context(start_ipfs_node(home / "ipfs", peers=[p.addresses[0] for p in peers]))
        env[API_ENV] = process.api_url
    if gateways:
        env[GATEWAYS_ENV] = ",".join(g.gateway_url for g in gateways)
    return Role(name, home, env, process, cfg.pythons.get(name, sys.executable))


@contextmanager
def _parties(cfg: MultiPartyConfig) -> Iterator[tuple[str, dict[str, Role]]]:
    with ExitStack() as stack:
        anvil = stack.enter_context(start_anvil(block_time=cfg.block_time, chain_id=cfg.chain_id))
        org = _role(stack, cfg, "organisation")
        agg = _role(stack, cfg, "aggregator", peers=[org.node] if org.node else [])
        hubs = [n for n in (org.node, agg.node) if n is not None]
        roles = {"organisation": org, "aggregator": agg}
        for i in range(cfg.participants):
            roles[f"participant-{i + 1}"] = _role(stack, cfg, f"participant-{i + 1}", peers=hubs)
        # The auditor has no node: it reads through the other parties' gateways only.
        roles["auditor"] = _role(stack, cfg, "auditor", node=False, gateways=hubs)
        for name in cfg.pythons:  # `zkfl tools install`: the one extra command a wheel install needs
            roles[name].run("tools", "install")
        yield anvil.rpc_url, roles


def run_multiparty(cfg: MultiPartyConfig) -> dict[str, Any]:
    """Post a task, run its rounds, settle, withdraw and audit, each role on its own."""
    keys = dev_keys()
    with _parties(cfg) as (rpc, roles):
        cfg.say(f"chain {rpc}; {len(roles)} parties, each in its own home under {cfg.workdir}")
        org, agg = roles["organisation"], roles["aggregator"]
        aggregator_address = account_from_key(keys[1]).address
        posted = json.loads(org.run(
            "task", "create", "--rpc", rpc, "--key", keys[0], "--aggregator", aggregator_address,
            "--rounds", str(cfg.rounds), "--reward", "1", "--min-stake", "0.1",
            "--collection-window", str(cfg.collection_window), "--json").stdout)
        task = str(posted["task_id"])
        cfg.say(f"task {task} posted: Federation {posted['federation']}, package {posted['package_cid']}")
        participants = [r for n, r in roles.items() if n.startswith("participant-")]
        cheaters = {p.name for p in participants[len(participants) - cfg.malicious:]}
        wallets = {p.name: account_from_key(keys[2 + i]) for i, p in enumerate(participants)}
        with ThreadPoolExecutor(max_workers=len(participants)) as pool:  # each rebuilds its keys from the package
            joins = [pool.submit(p.run, "client", "join", "--rpc", rpc, "--task", task, "--key", keys[2 + i],
                                 "--stake", "0.1") for i, p in enumerate(participants)]
            for join in joins:
                join.result()
        aggregator = agg.spawn("aggregator", "run", "--rpc", rpc, "--task", task, "--key", keys[1],
                               "--broker", cfg.broker)
        try:
            fed = Federation(connect(rpc), posted["federation"])
            for round_ in range(cfg.rounds):
                _play_round(cfg, rpc, task, round_, participants, cheaters, keys)
                _wait_published(fed, int(task), round_, aggregator, agg)
                cfg.say(f"round {round_} published")
            aggregator.wait(timeout=120)
        finally:
            if aggregator.poll() is None:
                aggregator.terminate()
        return _finish(cfg, rpc, task, fed, roles, wallets, cheaters, keys)


def _play_round(cfg: MultiPartyConfig, rpc: str, task: str, round_: int, participants: list[Role],
                cheaters: set[str], keys: list[str]) -> None:
    """Every participant trains and proves on its own shard (in parallel, as separate
    machines would), then submits; a cheater forges its update in the first round and,
    slashed, takes no further part."""
    playing = [(i, p) for i, p in enumerate(participants) if round_ == 0 or p.name not in cheaters]

    def train(i: int, p: Role) -> None:
        p.run("client", "train", "--rpc", rpc, "--task", task, "--key", keys[2 + i],
              "--shard", f"{i + 1}/{len(participants)}", "--out", str(p.home / f"round-{round_}"))

    with ThreadPoolExecutor(max_workers=len(playing)) as pool:
        for future in [pool.submit(train, i, p) for i, p in playing]:
            future.result()
    for i, p in playing:
        folder = p.home / f"round-{round_}"
        if p.name in cheaters:
            proc = subprocess.run([p.python, "-P", "-c", _CHEAT, rpc, task, keys[2 + i], cfg.broker, str(folder)],
                                  env=p.env, capture_output=True, text=True, timeout=ROLE_TIMEOUT, check=False,
                                  cwd=p.home)
            if proc.returncode != 0:
                raise ZkflError(f"{p.name} could not even send its forged update: {proc.stderr[-600:]}")
        else:
            p.run("client", "submit", "--rpc", rpc, "--task", task, "--key", keys[2 + i],
                  "--broker", cfg.broker, str(folder))
        cfg.say(f"  round {round_}: {p.name} {'sent a forged update' if p.name in cheaters else 'submitted'}")


def _wait_published(fed: Federation, task_id: int, round_: int, aggregator: subprocess.Popen[str],
                    role: Role, timeout: float = ROLE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while fed.task(task_id).current_round <= round_:
        if aggregator.poll() is not None:
            log = (role.home / "aggregator-run.log").read_text()[-1500:]
            raise ZkflError(f"the aggregator exited (code {aggregator.returncode}) in round {round_}:\n{log}")
        if time.monotonic() > deadline:
            raise ZkflError(f"round {round_} was not published in {timeout:.0f} s")
        time.sleep(1)


def _finish(cfg: MultiPartyConfig, rpc: str, task: str, fed: Federation, roles: dict[str, Role],
            wallets: dict[str, Any], cheaters: set[str], keys: list[str]) -> dict[str, Any]:
    roles["organisation"].run("task", "settle", "--rpc", rpc, "--task", task, "--key", keys[0])
    withdrawals = {}
    for i, name in enumerate(wallets):
        proc = roles[name].run("client", "withdraw", "--rpc", rpc, "--task", task, "--key", keys[2 + i], check=False)
        withdrawals[name] = {"ok": proc.returncode == 0, "output": (proc.stdout + proc.stderr).strip()}
    audit = roles["auditor"].run("audit", "--rpc", rpc, "--task", task, "--json", check=False)
    report = {
        "rpc_url": rpc, "chain_id": fed.w3.eth.chain_id, "federation": fed.address, "task_id": int(task),
        "cheaters": sorted(cheaters), "wallets": {n: a.address for n, a in wallets.items()},
        "homes": {name: str(role.home) for name, role in roles.items()},
        "seconds": {name: role.seconds for name, role in roles.items()},
        "rounds": _rounds(fed, int(task)), "withdrawals": withdrawals,
        "slashed": {n: fed.participant(int(task), a.address).slashed for n, a in wallets.items()},
        "audit": {"exit": audit.returncode, "report": json.loads(audit.stdout) if audit.stdout.strip() else None,
                  "stderr": audit.stderr.strip()},
    }
    paid = ", ".join(f"{name} {'withdrew' if w['ok'] else 'refused'}" for name, w in withdrawals.items())
    cfg.say(f"settled; {paid}; audit exit {audit.returncode}")
    return report


def _rounds(fed: Federation, task_id: int) -> list[dict[str, Any]]:
    accepted = fed.events("UpdateAccepted", task_id)
    rejected = fed.events("UpdateRejected", task_id)
    rounds = []
    for round_ in range(fed.task(task_id).rounds):
        gone = {e["args"]["participant"] for e in rejected if int(e["args"]["round"]) == round_}
        rounds.append({
            "round": round_,
            "accepted": [e["args"]["participant"] for e in accepted
                         if int(e["args"]["round"]) == round_ and e["args"]["participant"] not in gone],
            "rejected": [{"wallet": e["args"]["participant"], "reason": Reason(int(e["args"]["reason"])).text}
                         for e in rejected if int(e["args"]["round"]) == round_],
            "model_cid": fed.round(task_id, round_ + 1).model_cid,
        })
    return rounds
