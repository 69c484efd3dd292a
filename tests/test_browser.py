"""The dashboard in a real browser (Debian's Chromium, driven by Playwright).

A small demo federation runs while the page is open: the rounds must appear without
a reload, the charts must be drawn on their canvases, and the organisation signs in
with a test wallet (an EIP-1193 provider injected into the page whose signatures are
made here with the organisation's real key) and writes a private note. The screenshot
is saved under tests/artifacts/ (the README's picture is a copy of it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from playwright.sync_api import Page, sync_playwright

from zkfl.contracts.chain import dev_keys, free_port

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("ZKFL_CHROMIUM", "/usr/bin/chromium")

# An EIP-1193 provider, as a wallet extension would inject it. Signing is delegated to
# the test (window.zkflTestWalletSign), which holds the key.
TEST_WALLET = """
window.ethereum = {
  isZkflTestWallet: true,
  async request({ method, params }) {
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [window.zkflTestWalletAddress];
    if (method === "personal_sign") return await window.zkflTestWalletSign(params[0], params[1]);
    throw new Error(`test wallet: unsupported method ${method}`);
  },
};
"""


def canvas_has_ink(page: Page, selector: str) -> bool:
    return bool(page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)].some((c) => {
             const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
             for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
             return false; })""", selector))


def completed_rounds(page: Page) -> int:
    return len(page.query_selector_all("table.rounds tr[data-complete='yes']"))


@pytest.mark.slow
def test_dashboard_live_in_chromium_with_sign_in(tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `bash scripts/ensure-chromium.sh` installs it"
    organisation = Account.from_key(dev_keys()[0])  # the demo's organisation
    port, report = free_port(), tmp_path / "report.json"
    url = f"http://127.0.0.1:{port}/"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.add_init_script(TEST_WALLET + f"window.zkflTestWalletAddress = {json.dumps(organisation.address)};")

        def wallet_sign(message_hex: str, address: str) -> str:
            assert address == organisation.address
            signed = Account.sign_message(encode_defunct(hexstr=message_hex), organisation.key)
            return "0x" + signed.signature.hex().removeprefix("0x")

        page.expose_function("zkflTestWalletSign", wallet_sign)
        demo = subprocess.Popen(
            [sys.executable, "-m", "zkfl.cli", "demo", "--clients", "3", "--rounds", "2", "--malicious", "1",
             "--keep-running", "--dashboard-port", str(port), "--report", str(report)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            output: list[str] = []
            deadline = time.monotonic() + 600  # a loaded 2-core machine needs up to about 5 min
            while not any("dashboard (live):" in line for line in output):
                assert time.monotonic() < deadline and demo.poll() is None, "".join(output)
                output.append(demo.stdout.readline())  # type: ignore[union-attr]
            page.goto(url)  # the portal's task list: the demo's task, and a link to its page
            page.click("table.tasks a[href^='#/task/']", timeout=60_000)
            page.wait_for_selector("table.rounds", timeout=60_000)
            page.evaluate("window.zkflLoadedOnce = true")  # survives only if the page never reloads
            assert completed_rounds(page) < 2, "the page opened after the federation had finished"

            # 1-3: the rounds arrive live, over server-sent events.
            while completed_rounds(page) < 2:
                assert time.monotonic() < deadline and demo.poll() is None, "".join(output)
                page.wait_for_timeout(500)
            assert page.evaluate("window.zkflLoadedOnce") is True
            text = page.inner_text("section .status")
            assert "submitted update is not the proof's output" in text  # the malicious client's rejection
            badges = page.inner_text("table.rounds").count("proven aggregation")
            assert badges == 2, text  # every published round carries its on-chain verified FedAvg proof

            # 4: both charts drawn on non-empty canvases.
            assert canvas_has_ink(page, ".chart-quality canvas"), "accuracy/loss chart is blank"
            assert canvas_has_ink(page, ".chart-cost canvas"), "proof time/gas chart is blank"

            # 5: sign in as the organisation (EIP-4361) and keep a private note.
            page.click("#signin")
            page.wait_for_function(f"document.getElementById('who').textContent.includes({json.dumps(organisation.address)})")
            area = page.wait_for_selector("textarea[aria-label^='private notes']")
            assert area is not None
            area.fill("round 2: check client 3's data commitment")
            page.click("text=Save notes")
            page.wait_for_selector("text=saved")
            page.reload()
            page.wait_for_selector("textarea[aria-label^='private notes']")
            page.wait_for_timeout(500)  # let every render that the reload started finish
            assert len(page.query_selector_all("textarea[aria-label^='private notes']")) == 1
            note = page.input_value("textarea[aria-label^='private notes']")
            assert note == "round 2: check client 3's data commitment"
            assert not [e for e in errors if "favicon" not in e], errors

            # 6: the screenshot the README shows, once the task is settled and paid (still no reload needed).
            while not any("dashboard_url:" in line for line in output):  # settled, audited, report written
                assert time.monotonic() < deadline and demo.poll() is None, "".join(output)
                output.append(demo.stdout.readline())  # type: ignore[union-attr]
            page.wait_for_function("document.querySelector('section .status h2')?.textContent?.includes('settled')")
            assert "ETH" in page.inner_text("section .status").split("payouts:")[1]
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
            if demo.poll() is None:
                demo.send_signal(signal.SIGINT)
            code = demo.wait(timeout=60)
        assert code == 0, "".join(output)
    data = json.loads(report.read_text())
    assert data["dashboard_url"] == url and data["audit"]["ok"]
