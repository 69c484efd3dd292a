"""Sign-In with Ethereum on the dashboard, and the organisations' private notes.

Real signatures by real keys, checked by the server against a real chain (anvil):
each refusal names what is wrong, and only the task's organisation reads its notes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from tests.test_federation_contract import new_task
from zkfl.dashboard import siwe
from zkfl.dashboard.app import create_app


def personal_sign(account: LocalAccount, text: str) -> str:
    return "0x" + Account.sign_message(encode_defunct(text=text), account.key).signature.hex().removeprefix("0x")


def sign_in(client: TestClient, account: LocalAccount) -> str:
    message = client.post("/api/auth/challenge", json={"address": account.address}).json()["message"]
    response = client.post("/api/auth/verify", json={"message": message, "signature": personal_sign(account, message)})
    assert response.status_code == 200, response.text
    return str(response.json()["address"])


@pytest.fixture()
def dashboard(anvil, federation, tmp_path: Path) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(anvil.rpc_url, federation.address, notes_path=tmp_path / "notes.sqlite"))


def test_message_text_round_trips_and_is_eip4361() -> None:
    now = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    message = siwe.SiweMessage(domain="127.0.0.1:8000", address=siwe.to_checksum("0x" + "ab" * 20),
                               uri="http://127.0.0.1:8000/", chain_id=31337, nonce="abcdef123456",
                               issued_at=now, statement="Sign in.", expiration_time=now + timedelta(minutes=10))
    text = message.text()
    assert text.splitlines()[0] == "127.0.0.1:8000 wants you to sign in with your Ethereum account:"
    assert "\nChain ID: 31337\nNonce: abcdef123456\nIssued At: 2026-11-22T07:00:00Z\n" in text
    assert siwe.parse(text) == message
    without_statement = siwe.SiweMessage(**{**message.__dict__, "statement": None})
    assert siwe.parse(without_statement.text()) == without_statement
    for broken, reason in [(text.replace("Version: 1", "Version: 2"), "version"),
                           (text.replace("Nonce: abcdef123456", "Nonce: x"), "nonce"),
                           (text.replace(message.address, message.address.lower()), "EIP-55"),
                           (text + "\nResources: x", "unsupported"), ("hello", "first line")]:
        with pytest.raises(siwe.SiweError, match=reason):
            siwe.parse(broken)


def test_sign_in_gives_the_organisation_its_notes(anvil, federation, accounts, verifier_address, initial_model,
                                                   dashboard) -> None:  # type: ignore[no-untyped-def]
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    organisation, outsider = accounts[0], accounts[5]
    assert dashboard.get(f"/api/tasks/{task_id}/notes").status_code == 401
    assert dashboard.get("/api/auth/me").json() == {"address": None}

    assert sign_in(dashboard, organisation) == organisation.address
    assert dashboard.get("/api/auth/me").json() == {"address": organisation.address}
    written = dashboard.put(f"/api/tasks/{task_id}/notes", json={"notes": "cohort B: ward 7 only"})
    assert written.status_code == 200
    assert dashboard.get(f"/api/tasks/{task_id}/notes").json() == {"notes": "cohort B: ward 7 only"}
    assert dashboard.get("/api/tasks/9999/notes").status_code == 404

    dashboard.post("/api/auth/logout")
    assert dashboard.get(f"/api/tasks/{task_id}/notes").status_code == 401
    sign_in(dashboard, outsider)
    refused = dashboard.get(f"/api/tasks/{task_id}/notes")
    assert refused.status_code == 403 and "not task" in refused.json()["detail"]
    assert dashboard.put(f"/api/tasks/{task_id}/notes", json={"notes": "overwritten"}).status_code == 403
    # Everything on chain stays public, signed in or not.
    assert dashboard.get(f"/api/tasks/{task_id}").status_code == 200


def test_sign_in_refusals_name_what_is_wrong(accounts, dashboard) -> None:  # type: ignore[no-untyped-def]
    alice, mallory = accounts[0], accounts[6]

    def challenge() -> str:
        return str(dashboard.post("/api/auth/challenge", json={"address": alice.address}).json()["message"])

    def verify(message: str, signature: str) -> str:
        response = dashboard.post("/api/auth/verify", json={"message": message, "signature": signature})
        assert response.status_code == 400, response.text
        return str(response.json()["detail"])

    message = challenge()
    assert "signature is by" in verify(message, personal_sign(mallory, message))  # someone else's signature
    tampered = message.replace("Chain ID: ", "Chain ID: 1")
    assert "chain" in verify(tampered, personal_sign(alice, tampered))
    other_site = message.replace("testserver", "evil.example", 1)
    assert "domain" in verify(other_site, personal_sign(alice, other_site))
    assert "65 bytes" in verify(message, "0x1234")

    # A message the server never issued (a nonce of the signer's own choosing) is refused ...
    forged = siwe.parse(message)
    own = siwe.SiweMessage(**{**forged.__dict__, "nonce": "chosenbyme123"}).text()
    assert "nonce" in verify(own, personal_sign(alice, own))
    # ... as is an expired one ...
    past = datetime.now(UTC) - timedelta(hours=1)
    stale = siwe.SiweMessage(**{**forged.__dict__, "issued_at": past - timedelta(minutes=10),
                                "expiration_time": past}).text()
    assert "expired" in verify(stale, personal_sign(alice, stale))
    # ... and a good one works exactly once: its nonce is spent.
    good = challenge()
    first = dashboard.post("/api/auth/verify", json={"message": good, "signature": personal_sign(alice, good)})
    assert first.status_code == 200
    assert "already used" in verify(good, personal_sign(alice, good))
    bad_address = dashboard.post("/api/auth/challenge", json={"address": "0x1234"})
    assert bad_address.status_code == 400 and "40 hex digits" in bad_address.json()["detail"]
