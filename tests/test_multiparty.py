"""Every party on its own machine: organisation, three participants (one cheating), the
aggregator and the auditor, each a process with its own HOME and ZKFL_HOME and (but the
auditor) its own IPFS node, sharing only the chain's RPC URL, RabbitMQ and IPFS.

The chain mines every 2 seconds with chain id 4242, as a real chain would: nothing may
assume a transaction is mined when sent. Participant 1 runs from the built wheel,
installed into a fresh virtualenv outside the checkout (plus `zkfl tools install`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from zkfl.contracts.chain import dev_keys
from zkfl.multiparty import MultiPartyConfig, run_multiparty

REPO = Path(__file__).resolve().parent.parent
CHAIN_ID = 4242


@pytest.fixture(scope="module")
def wheel_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """zkfl's wheel, built from this checkout, in a fresh venv outside it. The wheel goes in
    alone (--no-deps); its dependencies are this environment's, reached through a .pth line
    (reinstalling torch and ezkl would take minutes of the suite), and `pip check` proves that
    everything the wheel declares is met there. The checkout itself is not on that path: the
    editable install's finder lives in a .pth file, which Python reads only in site directories."""
    where = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(where / "dist"), str(REPO)], check=True, capture_output=True)
    wheel = next((where / "dist").glob("zkfl-*.whl"))
    # No pip or setuptools of its own: they would shadow the newer ones the dependencies need.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where / "venv")], check=True)
    python = str(where / "venv" / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python]
    subprocess.run([*pip, "install", "--quiet", "--no-deps", str(wheel)], check=True, capture_output=True)
    own_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
    (Path(own_site) / "zkfl_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    check = subprocess.run([*pip, "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return python


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, wheel_python: str) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("parties")
    return run_multiparty(MultiPartyConfig(workdir=workdir, participants=3, malicious=1, rounds=2, block_time=2,
                                           chain_id=CHAIN_ID, pythons={"participant-1": wheel_python}))


@pytest.mark.slow
def test_two_rounds_cheater_rejected_and_slashed(report: dict[str, Any]) -> None:
    assert report["chain_id"] == CHAIN_ID
    wallets = report["wallets"]
    honest = {wallets["participant-1"], wallets["participant-2"]}
    cheater = wallets["participant-3"]
    assert report["cheaters"] == ["participant-3"]
    first, second = report["rounds"]
    assert set(first["accepted"]) == honest and set(second["accepted"]) == honest
    assert [r["wallet"] for r in first["rejected"]] == [cheater] and second["rejected"] == []
    assert report["slashed"] == {"participant-1": False, "participant-2": False, "participant-3": True}
    assert first["model_cid"] and second["model_cid"]


@pytest.mark.slow
def test_honest_participants_withdraw_and_the_cheater_cannot(report: dict[str, Any]) -> None:
    withdrawals = report["withdrawals"]
    assert withdrawals["participant-1"]["ok"] and withdrawals["participant-2"]["ok"], withdrawals
    for name in ("participant-1", "participant-2"):
        reward = int(re.search(r"withdrew (\d+) wei reward", withdrawals[name]["output"]).group(1))  # type: ignore[union-attr]
        assert reward > 0
    assert not withdrawals["participant-3"]["ok"]
    assert "was slashed" in withdrawals["participant-3"]["output"]


@pytest.mark.slow
def test_auditor_from_an_empty_home_passes(report: dict[str, Any]) -> None:
    audit = report["audit"]
    assert audit["exit"] == 0, audit["stderr"]
    assert audit["report"]["ok"] and audit["report"]["findings"]


@pytest.mark.slow
def test_the_wheel_participant_ran_from_its_own_venv(report: dict[str, Any], wheel_python: str,
                                                      tmp_path: Path) -> None:
    location = subprocess.run([wheel_python, "-c", "import zkfl; print(zkfl.__file__)"], cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout
    assert str(REPO) not in location and "site-packages" in location
    home = Path(report["homes"]["participant-1"])
    assert (home / ".zkfl" / "tools" / "node_modules" / ".installed").exists()  # its own `zkfl tools install`


@pytest.mark.slow
def test_no_secret_and_no_other_home_in_any_role_files(report: dict[str, Any]) -> None:
    keys = [k.removeprefix("0x").lower() for k in dev_keys()]
    homes = [Path(h) for h in report["homes"].values()]
    for home in homes:
        for path in home.rglob("*"):
            if not path.is_file() or "node_modules" in path.parts or path.stat().st_size > 50_000_000:
                continue
            text = path.read_bytes().decode("latin-1").lower()
            assert not any(k in text for k in keys), f"a private key leaked into {path}"
            others = [str(h) for h in homes if h != home]
            assert not any(o in text for o in others), f"{path} names another party's home"
