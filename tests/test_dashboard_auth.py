"""Sign-In with Ethereum on the dashboard, and the organisations' private notes.

Real signatures by real keys, checked by the server against a real chain (anvil):
each refusal names what is wrong, only the dashboard's configured origin is served
and named in messages, nonces are bound to the wallet and domain they were issued
for, and only the current holder of the task's organisation role reads its notes.
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
from zkfl.contracts.chain import send
from zkfl.dashboard import sessions as sessions_module
from zkfl.dashboard import siwe
from zkfl.dashboard.app import create_app
from zkfl.dashboard.sessions import NonceError, SessionStore


def personal_sign(account: LocalAccount, text: str) -> str:
    return "0x" + Account.sign_message(encode_defunct(text=text), account.key).signature.hex().removeprefix("0x")


def sign_in(client: TestClient, account: LocalAccount) -> str:
    message = client.post("/api/auth/challenge", json={"address": account.address}).json()["message"]
    response = client.post("/api/auth/verify", json={"message": message, "signature": personal_sign(account, message)})
    assert response.status_code == 200, response.text
    return str(response.json()["address"])


ORIGIN = "http://testserver"  # the TestClient's own base URL: the dashboard's configured public origin


@pytest.fixture()
def dashboard(anvil, federation, tmp_path: Path) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(anvil.rpc_url, federation.address, notes_path=tmp_path / "notes.sqlite",
                                 origin=ORIGIN))


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


def test_origins_parse_and_match_hosts() -> None:
    local = siwe.Origin.parse("http://127.0.0.1:8000")
    assert (local.domain, local.uri) == ("127.0.0.1:8000", "http://127.0.0.1:8000/")
    public = siwe.Origin.parse("https://FL.Example.org/")
    assert (public.domain, public.uri, str(public)) == ("fl.example.org", "https://fl.example.org/",
                                                         "https://fl.example.org")
    assert public.serves("fl.example.org") and public.serves("fl.example.org:443")
    assert not public.serves("fl.example.org:8443") and not local.serves("localhost:8000")
    assert siwe.Origin.parse("http://[::1]:8000").domain == "[::1]:8000"
    for bad in ["ftp://x.org", "http://x.org/app", "http://u:p@x.org", "http://x.org?q=1", "x.org", "http://x:99999"]:
        with pytest.raises(siwe.SiweError):
            siwe.Origin.parse(bad)


def test_a_request_with_an_unknown_host_is_refused(anvil, federation, dashboard,  # type: ignore[no-untyped-def]
                                                    accounts, tmp_path: Path) -> None:
    alice = accounts[0]
    assert dashboard.get("/api/tasks").status_code == 200
    for host in ["evil.example", "127.0.0.1:8000", "testserver.evil.example"]:
        refused = dashboard.post("/api/auth/challenge", json={"address": alice.address}, headers={"host": host})
        assert refused.status_code == 421, refused.text
        assert host in refused.json()["detail"] and "http://testserver" in refused.json()["detail"]
        assert dashboard.get("/api/tasks", headers={"host": host}).status_code == 421
    # Without a configured origin the dashboard serves the address its socket is bound to, never a Host it is told.
    unconfigured = TestClient(create_app(anvil.rpc_url, federation.address, notes_path=tmp_path / "n.sqlite"))
    assert unconfigured.get("/api/tasks").status_code == 200
    assert unconfigured.post("/api/auth/challenge", json={"address": alice.address},
                             headers={"host": "evil.example"}).status_code == 421


def test_a_message_for_another_domain_is_refused_even_through_its_host(anvil, federation, accounts, dashboard,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:
    alice = accounts[0]
    message = dashboard.post("/api/auth/challenge", json={"address": alice.address}).json()["message"]
    assert message.startswith("testserver wants you") and "\nURI: http://testserver/\n" in message
    other = message.replace("testserver", "evil.example")  # domain and URI: what evil.example would have asked for
    signature = personal_sign(alice, other)
    for headers in [{"host": "evil.example"}, {}]:  # the Host claims to be evil.example, or is the right one
        refused = dashboard.post("/api/auth/verify", json={"message": other, "signature": signature}, headers=headers)
        assert refused.status_code in (400, 421), refused.text
        assert "evil.example" in refused.json()["detail"]
    assert dashboard.get("/api/auth/me").json() == {"address": None}

    # Two origins served: a nonce issued for one is no good in a message naming the other.
    both = TestClient(create_app(anvil.rpc_url, federation.address, notes_path=tmp_path / "n.sqlite",
                                 origin=[ORIGIN, "https://fl.example.org"]))
    issued = both.post("/api/auth/challenge", json={"address": alice.address}).json()["message"]
    moved = issued.replace("http://testserver/", "https://fl.example.org/").replace("testserver", "fl.example.org")
    refused = both.post("/api/auth/verify", json={"message": moved, "signature": personal_sign(alice, moved)},
                        headers={"host": "fl.example.org"})
    assert refused.status_code == 400 and "issued for domain 'testserver'" in refused.json()["detail"]
    there = both.post("/api/auth/challenge", json={"address": alice.address}, headers={"host": "fl.example.org"})
    assert there.json()["message"].startswith("fl.example.org wants you")
    assert "\nURI: https://fl.example.org/\n" in there.json()["message"]


def test_a_nonce_issued_for_one_address_is_refused_for_another(accounts, dashboard) -> None:  # type: ignore[no-untyped-def]
    alice, bob = accounts[0], accounts[6]
    issued = dashboard.post("/api/auth/challenge", json={"address": alice.address}).json()["message"]
    assert siwe.parse(issued).address == alice.address
    borrowed = issued.replace(alice.address, bob.address)  # Bob signs Alice's nonce in a message of his own
    refused = dashboard.post("/api/auth/verify", json={"message": borrowed, "signature": personal_sign(bob, borrowed)})
    assert refused.status_code == 400, refused.text
    assert f"issued for {alice.address}, not for {bob.address}" in refused.json()["detail"]
    assert dashboard.get("/api/auth/me").json() == {"address": None}
    # The nonce was spent by that attempt: Alice asks again.
    late = dashboard.post("/api/auth/verify", json={"message": issued, "signature": personal_sign(alice, issued)})
    assert late.status_code == 400 and "already used" in late.json()["detail"]
    assert sign_in(dashboard, alice) == alice.address


def test_nonces_are_single_use_bound_and_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    store = SessionStore()
    alice, bob = "0x" + "Ab" * 20, "0x" + "Cd" * 20
    nonce = store.issue_nonce(alice, "testserver")
    store.consume_nonce(nonce, alice, "testserver")
    with pytest.raises(NonceError, match="already used"):
        store.consume_nonce(nonce, alice, "testserver")
    with pytest.raises(NonceError, match="issued for domain"):
        store.consume_nonce(store.issue_nonce(alice, "testserver"), alice, "evil.example")
    with pytest.raises(NonceError, match=f"issued for {alice}, not for {bob}"):
        store.consume_nonce(store.issue_nonce(alice, "testserver"), bob, "testserver")
    stale = store.issue_nonce(alice, "testserver")
    now = sessions_module.time.time()
    monkeypatch.setattr(sessions_module.time, "time", lambda: now + sessions_module.NONCE_TTL_S + 1)
    with pytest.raises(NonceError, match="expired"):
        store.consume_nonce(stale, alice, "testserver")


def test_notes_follow_the_organisation_role_on_chain(anvil, federation, accounts, verifier_address, initial_model,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
    task_id = new_task(federation, accounts, verifier_address, initial_model)
    creator, successor = accounts[0], accounts[7]
    app = create_app(anvil.rpc_url, federation.address, notes_path=tmp_path / "notes.sqlite", origin=ORIGIN)
    as_creator, as_successor = TestClient(app), TestClient(app)  # two browsers: two cookie jars
    sign_in(as_creator, creator)
    sign_in(as_successor, successor)
    notes = f"/api/tasks/{task_id}/notes"
    assert as_creator.put(notes, json={"notes": "handover: see ward 7"}).status_code == 200
    assert as_successor.get(notes).status_code == 403

    role = federation.contract.functions.organisationRole(task_id).call()
    send(federation.w3, creator, federation.contract.functions.grantRole(role, successor.address))
    send(federation.w3, successor, federation.contract.functions.revokeRole(role, creator.address))
    assert federation.contract.functions.hasRole(role, successor.address).call()
    assert not federation.contract.functions.hasRole(role, creator.address).call()
    assert federation.task(task_id).organisation == creator.address  # the task still names its creator

    # Same sessions, no new sign-in: the role is read from the chain at each request.
    assert as_successor.get(notes).json() == {"notes": "handover: see ward 7"}
    assert as_successor.put(notes, json={"notes": "taken over"}).status_code == 200
    refused = as_creator.get(notes)
    assert refused.status_code == 403 and "organisation role" in refused.json()["detail"]
    assert as_creator.put(notes, json={"notes": "still mine?"}).status_code == 403
    assert as_successor.get(notes).json() == {"notes": "taken over"}


def test_a_body_too_big_or_too_deep_is_refused_before_any_parser(dashboard) -> None:  # type: ignore[no-untyped-def]
    """60,000 nested '[' would overflow Python's C JSON parser (py_ecc lifts the recursion
    limit) and kill the server; the body guard answers before it is parsed."""
    deep = dashboard.post("/api/auth/challenge", content=b"[" * 60_000, headers={"content-type": "application/json"})
    assert deep.status_code == 400 and "nested" in deep.json()["detail"]
    big = dashboard.post("/api/auth/challenge", content=b" " * 70_000, headers={"content-type": "application/json"})
    assert big.status_code == 413
    assert dashboard.post("/api/auth/challenge", json={"address": "0x" + "ab" * 20}).status_code == 200
