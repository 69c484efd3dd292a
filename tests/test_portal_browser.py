"""The participants' portal in a real browser (Debian's Chromium, driven by Playwright).

Three parties, each with its own home: the organisation posts a task and serves the portal
(and runs the aggregator) from its machine; a participant finds the task in the browser,
downloads the client package by CID, joins from an injected EIP-1193 wallet, trains and
proves on its own machine with zkfl fetching the package and the model from the portal
(the only thing it shares with the organisation besides the chain and the broker), and
withdraws from the browser after settlement. The wallet signs with the participant's
test key, here in the test, and records every transaction the page asked it to send.
Screenshots of the task list and the task page go to tests/artifacts/ (the README's
pictures are copies of them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from playwright.sync_api import Page, sync_playwright
from web3 import Web3

from tests.conftest import BROKER_URL
from tests.test_browser import ARTIFACTS, CHROMIUM
from zkfl.contracts.chain import connect, dev_keys, free_port, start_anvil
from zkfl.contracts.federation import Federation
from zkfl.store import cid_of

# An EIP-1193 provider, as a wallet extension injects it: every request goes to the test,
# which plays the wallet (and its user, who confirms what the page asks).
TEST_WALLET = """
window.ethereum = {
  async request({ method, params }) {
    const answer = JSON.parse(await window.zkflWallet(method, JSON.stringify(params || [])));
    if (answer.error) throw new Error(answer.error);
    return answer.result;
  },
};
"""
TIMEOUT = 900  # seconds for anything a loaded 2-core machine does here (a first proof builds its keys)


class TestWallet:
    """The wallet behind window.ethereum: the participant's key, the chain's RPC."""

    def __init__(self, w3: Web3, key: str) -> None:
        self.w3, self.account = w3, Account.from_key(key)
        self.sent: list[dict[str, Any]] = []  # what the page asked the user to confirm and sign

    def request(self, method: str, params_json: str) -> str:
        params = json.loads(params_json)
        try:
            return json.dumps({"result": self._answer(method, params)})
        except Exception as exc:  # a wallet answers the page with an error, never crashes it
            return json.dumps({"error": f"{type(exc).__name__}: {exc}"})

    def _answer(self, method: str, params: list[Any]) -> Any:
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.account.address]
        if method == "eth_chainId":
            return hex(self.w3.eth.chain_id)
        if method == "eth_getTransactionReceipt":
            receipt = self.w3.eth.get_transaction_receipt(params[0]) if self._mined(params[0]) else None
            return None if receipt is None else {"status": hex(receipt["status"])}
        if method == "eth_sendTransaction":
            return self._send(params[0])
        raise ValueError(f"test wallet: unsupported method {method}")

    def _mined(self, tx_hash: str) -> bool:
        try:
            self.w3.eth.get_transaction_receipt(tx_hash)
            return True
        except Exception:
            return False

    def _send(self, tx: dict[str, str]) -> str:
        assert Web3.to_checksum_address(tx["from"]) == self.account.address
        self.sent.append(tx)
        call: Any = {"from": self.account.address, "to": Web3.to_checksum_address(tx["to"]), "data": tx["data"],
                     "value": int(tx.get("value", "0x0"), 16)}
        call |= {"nonce": self.w3.eth.get_transaction_count(self.account.address), "chainId": self.w3.eth.chain_id,
                 "gas": self.w3.eth.estimate_gas(call) + 50_000, "gasPrice": self.w3.eth.gas_price}
        signed = self.account.sign_transaction(call)
        return "0x" + self.w3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")


def zkfl(home: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """One zkfl command as a party runs it, in its own home."""
    environment = {**os.environ, "HOME": str(home), "ZKFL_HOME": str(home / ".zkfl"), **(env or {})}
    proc = subprocess.run([sys.executable, "-P", "-m", "zkfl.cli", *args], env=environment, cwd=home,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, f"zkfl {' '.join(args[:2])}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    return proc.stdout


def wait_until(page: Page, condition: str, timeout_s: float = TIMEOUT) -> None:
    page.wait_for_function(condition, timeout=timeout_s * 1000)


@pytest.mark.slow
def test_a_participant_finds_joins_proves_and_withdraws_through_the_portal(tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `bash scripts/ensure-chromium.sh` installs it"
    keys = dev_keys()
    # The organisation's machine keeps the session's compiled circuits (ZKFL_HOME as the tests set it);
    # the participant's is empty: everything it needs comes by CID, from the portal.
    org_home = Path(os.environ["ZKFL_HOME"]).parent
    participant_home = tmp_path / "participant"
    (participant_home / ".zkfl").mkdir(parents=True)
    ARTIFACTS.mkdir(exist_ok=True)
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        org_env = {"HOME": str(org_home), "ZKFL_HOME": os.environ["ZKFL_HOME"]}
        posted = json.loads(zkfl(org_home, "task", "create", "--rpc", anvil.rpc_url, "--key", keys[0],
                                 "--aggregator", Account.from_key(keys[1]).address, "--rounds", "1",
                                 "--reward", "1", "--min-stake", "0.1", "--max-participants", "4", "--json",
                                 env=org_env))
        task_id, federation = int(posted["task_id"]), posted["federation"]
        other = json.loads(zkfl(org_home, "task", "create", "--rpc", anvil.rpc_url, "--key", keys[0], "--rounds", "3",
                                "--reward", "2", "--min-stake", "0.1", "--json", env=org_env))["task_id"]
        fed = Federation(w3, federation)
        port = free_port()
        portal_url = f"http://127.0.0.1:{port}"
        portal = subprocess.Popen([sys.executable, "-P", "-m", "zkfl.cli", "dashboard", "--rpc", anvil.rpc_url,
                                   "--federation", federation, "--port", str(port)],
                                  env={**os.environ, **org_env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        try:
            assert portal.stdout is not None and "dashboard:" in portal.stdout.readline()
            wallet = TestWallet(w3, keys[5])
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                try:
                    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
                    errors: list[str] = []
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    page.add_init_script(TEST_WALLET)
                    page.expose_function("zkflWallet", wallet.request)
                    find_and_join(page, portal_url, task_id, posted["package_cid"], wallet, fed)
                    prove_and_aggregate(anvil.rpc_url, federation, task_id, keys, participant_home, portal_url,
                                        org_home, org_env, fed)
                    withdraw(page, task_id, wallet, fed)
                    compare(page, portal_url, task_id, int(other))
                    assert not errors, errors
                finally:
                    browser.close()
        finally:
            portal.terminate()
            portal.wait(timeout=30)


def find_and_join(page: Page, portal_url: str, task_id: int, package_cid: str, wallet: TestWallet,
                  fed: Federation) -> None:
    page.goto(f"{portal_url}/#/?state=open")
    row = page.wait_for_selector(f"table.tasks tr[data-task='{task_id}']", timeout=60_000)
    assert row is not None and "open" in row.inner_text() and "logreg" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "portal-tasks.png"), full_page=True)
    page.click(f"table.tasks tr[data-task='{task_id}'] a[href='#/task/{task_id}']")
    page.wait_for_selector("#download-package")
    with page.expect_download() as download:
        page.click("#download-package")
    package = Path(download.value.path()).read_bytes()
    assert cid_of(package) == package_cid  # the bytes are the ones the chain names
    assert json.loads(package)["backend"] == "ezkl"
    commands = page.inner_text("pre.commands")
    assert f"--task {task_id}" in commands and fed.address in commands
    assert f"ZKFL_IPFS_GATEWAYS={portal_url}" in commands
    assert "zkfl client run --rpc" in commands and "ZKFL_BROKER=" in commands  # the one-command loop, and the broker

    # Bad input is refused on the page, before the wallet is asked anything.
    page.fill("#stake", "lots")
    page.click("#join")
    wait_until(page, "document.getElementById('join-status').textContent.includes('is not an amount')", 30)
    page.fill("#stake", "9" * 80)
    page.click("#join")
    wait_until(page, "document.getElementById('join-status').textContent.includes('more ETH than any wallet can hold')",
               30)
    page.fill("#stake", "0.05")
    page.click("#join")
    wait_until(page, "document.getElementById('join-status').textContent.includes('at least')", 30)
    assert wallet.sent == [] and not fed.participant(task_id, wallet.account.address).joined

    page.fill("#stake", "0.2")
    page.click("#join")
    wait_until(page, "document.getElementById('join-status').textContent.includes('confirmed on chain')", 120)
    [join] = wallet.sent  # exactly one transaction, the one the user confirmed
    assert Web3.to_checksum_address(join["to"]) == fed.address and int(join["value"], 16) == Web3.to_wei(0.2, "ether")
    state = fed.participant(task_id, wallet.account.address)
    assert state.joined and state.stake == Web3.to_wei(0.2, "ether")
    wait_until(page, "document.getElementById('standing-summary')?.textContent.includes('joined with 0.2 ETH')", 60)
    # The live status follows the chain: the new participant appears among the contributions.
    shown = wallet.account.address[:10]
    wait_until(page, f"document.querySelector('table.contributions')?.textContent.includes('{shown}')", 60)
    assert shown in page.inner_text("#wallet")  # the header names the connected wallet
    page.screenshot(path=str(ARTIFACTS / "portal-task.png"), full_page=True)


def prove_and_aggregate(rpc: str, federation: str, task_id: int, keys: list[str], participant_home: Path,
                        portal_url: str, org_home: Path, org_env: dict[str, str], fed: Federation) -> None:
    """The participant's machine trains, proves and submits (its zkfl reading the package and the
    model from the portal); the organisation's aggregator verifies on chain, FedAvgs, publishes."""
    chain = ("--rpc", rpc, "--federation", federation, "--task", str(task_id), "--key", keys[5])
    gateway = {"ZKFL_IPFS_GATEWAYS": portal_url}
    zkfl(participant_home, "client", "train", *chain, "--shard", "1/2", "--out", str(participant_home / "update"),
         env=gateway)
    zkfl(participant_home, "client", "submit", *chain, "--broker", BROKER_URL, str(participant_home / "update"),
         env=gateway)
    package_cid = fed.task(task_id).package_cid
    assert (participant_home / ".zkfl" / "store" / package_cid).exists()  # fetched through the portal's gateway
    aggregator = subprocess.Popen(
        [sys.executable, "-P", "-m", "zkfl.cli", "aggregator", "run", "--rpc", rpc, "--federation", federation,
         "--task", str(task_id), "--key", keys[1], "--broker", BROKER_URL],
        env={**os.environ, **org_env}, cwd=org_home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        # Published on chain, then scored on the held-out data and recorded: stop the aggregator
        # only once the portal shows the round's accuracy (the chain moves before the record).
        while fed.task(task_id).current_round < 1 or round_accuracy(portal_url, task_id, 0) is None:
            assert time.monotonic() < deadline and aggregator.poll() is None, aggregator.communicate()[0]
            time.sleep(1)
    finally:
        aggregator.terminate()
        aggregator.wait(timeout=60)
    zkfl(org_home, "task", "settle", "--rpc", rpc, "--federation", federation, "--task", str(task_id),
         "--key", keys[0], env=org_env)


def round_accuracy(portal_url: str, task_id: int, round_: int) -> float | None:
    """The round's held-out accuracy as the portal shows it, None until the aggregator records it."""
    with urllib.request.urlopen(f"{portal_url}/api/tasks/{task_id}", timeout=30) as answer:
        rounds = json.loads(answer.read())["rounds"]
    return rounds[round_]["accuracy"] if len(rounds) > round_ else None


def withdraw(page: Page, task_id: int, wallet: TestWallet, fed: Federation) -> None:
    wait_until(page, "document.querySelector('table.my-rounds tr[data-round=\"0\"]')?.textContent"
                     ".includes('accepted')", 120)
    wait_until(page, "!!document.getElementById('withdraw')", 120)
    reward, stake = fed.payout_of(task_id, wallet.account.address)
    assert reward == Web3.to_wei(1, "ether") and stake == Web3.to_wei(0.2, "ether")  # the only contributor
    before = fed.w3.eth.get_balance(wallet.account.address)
    page.click("#withdraw")
    wait_until(page, "document.getElementById('standing-summary')?.textContent.includes('paid')", 120)
    assert len(wallet.sent) == 2 and Web3.to_checksum_address(wallet.sent[1]["to"]) == fed.address
    assert fed.participant(task_id, wallet.account.address).withdrawn
    assert fed.w3.eth.get_balance(wallet.account.address) > before + reward  # reward and stake, less gas


def compare(page: Page, portal_url: str, task_id: int, other: int) -> None:
    """A researcher puts two tasks side by side: hyper-parameters and accuracy curves."""
    page.goto(f"{portal_url}/#/?sort=reward")
    page.wait_for_selector(f"table.tasks tr[data-task='{other}']")
    order = [row.get_attribute("data-task") for row in page.query_selector_all("table.tasks tr[data-task]")]
    assert order == [str(other), str(task_id)]  # the larger reward pool first
    page.check(f"input[aria-label='select task {task_id}']")
    page.check(f"input[aria-label='select task {other}']")
    page.click("#compare")
    page.wait_for_selector("table.compare")
    text = page.inner_text("table.compare")
    assert f"task {task_id}" in text and f"task {other}" in text and "learning rate" in text
    final = page.inner_text("table.compare tr:last-child")
    assert "final accuracy" in final and any(c.isdigit() for c in final.split("final accuracy")[1])
    assert page.query_selector(".chart-compare canvas") is not None
