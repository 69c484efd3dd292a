"""The participants' portal over the real chain: the task list, the package by CID, and the
transactions a browser wallet signs (here signed with the wallet's key, as a wallet would).

The portal prepares calls and never sends one: every state change below is a transaction
this test signs and sends itself, and every figure checked is read back from the chain.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from dataclasses import replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from multiformats import CID
from web3 import Web3

from tests.conftest import advance_chain_time, aggregation_verifier_for, task_params
from tests.test_federation_contract import REWARD, STAKE
from tests.test_incentives import TEST_CONTRACTS
from zkfl.artifacts import MAX_PACKAGE_BYTES, PackageReader
from zkfl.contracts.chain import connect, send, start_anvil
from zkfl.contracts.federation import Federation, TaskState, deploy
from zkfl.contracts.solc import compile_contract
from zkfl.dashboard.app import create_app
from zkfl.dashboard.context import shareable_rpc
from zkfl.dashboard.gateway import Gateway
from zkfl.dashboard.portal import TaskPhase, _shown_symbol, task_phase
from zkfl.errors import ZkflError
from zkfl.ipfs.unixfs import CHUNK_SIZE, assemble, parse_file_node
from zkfl.middleware.client import currency_units
from zkfl.organisation import publish_package
from zkfl.store import LocalStore, cid_of


def send_prepared(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> None:
    """What a wallet does with a prepared call once its user confirms: sign, send, wait."""
    call: Any = {"from": account.address, "to": tx["to"], "data": tx["data"], "value": int(tx["value"], 16)}
    call |= {"nonce": w3.eth.get_transaction_count(account.address), "chainId": w3.eth.chain_id,
             "gas": w3.eth.estimate_gas(call) + 50_000, "gasPrice": w3.eth.gas_price}
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(call).raw_transaction))
    assert receipt["status"] == 1


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return LocalStore(Path(tmp_path_factory.mktemp("portal-store")))


@pytest.fixture(scope="module")
def package_cid(store, artifacts, aggregation) -> str:  # type: ignore[no-untyped-def]
    return publish_package(store, artifacts, "breast_cancer", aggregation.artifacts)


def post(federation, accounts, verifier_address, initial_model, package_cid: str, reward: int = REWARD,  # type: ignore[no-untyped-def]
         **kw: object) -> int:
    # The latest block may be minutes old on a quiet chain: mine one, so "now" is the chain's now.
    federation.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    params = task_params(accounts[1].address, verifier_address, initial_model,
                         now=int(federation.w3.eth.get_block("latest")["timestamp"]),
                         aggregation_verifier=aggregation_verifier_for(federation), **kw)  # type: ignore[arg-type]
    return int(federation.create_task(accounts[0], replace(params, package_cid=package_cid), reward))


@pytest.fixture(scope="module")
def portal(anvil, federation, store) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(anvil.rpc_url, federation.address, store=store))


def test_tasks_are_listed_with_their_terms_filtered_and_sorted(portal, federation, accounts, verifier_address,  # type: ignore[no-untyped-def]
                                                               initial_model, package_cid) -> None:
    rich = post(federation, accounts, verifier_address, initial_model, package_cid, reward=3 * REWARD, deadline_in=7200)
    soon = post(federation, accounts, verifier_address, initial_model, package_cid, reward=REWARD, deadline_in=1800)
    gone = post(federation, accounts, verifier_address, initial_model, package_cid)
    federation.cancel(accounts[0], gone)
    rows = {row["task_id"]: row for row in portal.get("/api/tasks").json()}
    listed = rows[rich]
    assert listed["state"] == "open" and listed["joinable"] and listed["package_cid"] == package_cid
    assert listed["reward_pool"] == 3 * REWARD and listed["min_stake"] == STAKE and listed["token"]["symbol"] == "ETH"
    assert 7000 < listed["seconds_left"] <= 7200 and listed["slots"] > 0
    model = listed["model"]  # from the package the chain names, fetched by its CID
    assert (model["family"], model["features"], model["parameters"], model["dataset"], model["backend"]) == (
        "logreg", 30, 31, "breast_cancer", "ezkl")
    assert model["feature_bound"] > 0 and model["labels"] == "0 or 1"
    assert rows[gone]["state"] == "settled" and rows[gone]["cancelled"] and not rows[gone]["joinable"]
    # Anyone may post a task naming any CID as its package: one that is no package is listed without a model.
    big = next(cid for cid in portal.get(f"/ipfs/{package_cid}").json()["artifacts"].values()
               if len(portal.get(f"/ipfs/{cid}").content) > 1 << 20)
    odd = post(federation, accounts, verifier_address, initial_model, big)
    assert next(row for row in portal.get("/api/tasks").json() if row["task_id"] == odd)["model"] is None

    open_ids = [row["task_id"] for row in portal.get("/api/tasks?state=open").json()]
    assert rich in open_ids and soon in open_ids and gone not in open_ids
    assert gone in [row["task_id"] for row in portal.get("/api/tasks?state=settled").json()]
    by_reward = [row["task_id"] for row in portal.get("/api/tasks?state=open&sort=reward").json()]
    assert by_reward.index(rich) < by_reward.index(soon)
    by_deadline = [row["task_id"] for row in portal.get("/api/tasks?state=open&sort=deadline").json()]
    assert by_deadline.index(soon) < by_deadline.index(rich)
    assert portal.get("/api/tasks?state=sleeping").status_code == 422


def test_task_phase_follows_the_chain_rules() -> None:
    task = TaskState(*([0] * 29))  # type: ignore[arg-type]
    task = replace(task, deadline=100, rounds=2, current_round=0, settled=False)
    assert task_phase(task, now=100) is TaskPhase.OPEN
    assert task_phase(task, now=101) is TaskPhase.RUNNING  # past the deadline: join would revert
    assert task_phase(replace(task, current_round=2), now=50) is TaskPhase.RUNNING  # every round published
    assert task_phase(replace(task, settled=True), now=50) is TaskPhase.SETTLED


def test_the_package_is_served_by_cid_whole_and_block_by_block(portal, store, package_cid) -> None:  # type: ignore[no-untyped-def]
    whole = portal.get(f"/ipfs/{package_cid}")
    assert whole.status_code == 200 and cid_of(whole.content) == package_cid
    assert whole.headers["content-type"] == "application/octet-stream"
    package = whole.json()
    big = next(cid for cid in package["artifacts"].values() if len(store.get(cid)) > CHUNK_SIZE)
    root = portal.get(f"/ipfs/{big}?format=raw")
    assert root.headers["content-type"] == "application/vnd.ipld.raw"

    def block(cid: CID) -> bytes:  # a trustless gateway's client: every block is checked by `assemble`
        response = portal.get(f"/ipfs/{cid}", headers={"Accept": "application/vnd.ipld.raw"})
        assert response.status_code == 200
        return response.content

    assert assemble(CID.decode(big), block) == store.get(big)
    # One URL, two bodies: caches must tell them apart.
    assert root.headers["vary"] == "Accept" and root.headers["etag"] != whole.headers["etag"]
    assert portal.get(f"/ipfs/{cid_of(b'never stored here')}").status_code == 404
    too_long = portal.get("/ipfs/z" + "2" * 50_000)  # base58 decoding is quadratic: refused by length first
    assert too_long.status_code == 400 and "over the 100" in too_long.json()["detail"]
    assert portal.get("/ipfs/not-a-cid").status_code == 400
    assert portal.get(f"/ipfs/{package_cid}?format=car").status_code == 400


def test_a_wallet_joins_leaves_and_withdraws_through_prepared_transactions(portal, federation, accounts,  # type: ignore[no-untyped-def]
                                                                           verifier_address, initial_model,
                                                                           package_cid) -> None:
    w3, wallet, other = federation.w3, accounts[7], accounts[8]
    task_id = post(federation, accounts, verifier_address, initial_model, package_cid)
    prepare = f"/api/tasks/{task_id}/transactions"
    low = portal.get(f"{prepare}/join", params={"wallet": wallet.address, "stake": STAKE - 1})
    assert low.status_code == 400 and "at least the task's minimum" in low.json()["detail"]
    assert portal.get(f"{prepare}/join", params={"wallet": "0x1234", "stake": STAKE}).status_code == 400
    assert portal.get(f"{prepare}/withdraw", params={"wallet": wallet.address}).status_code == 400  # not joined

    prepared = portal.get(f"{prepare}/join", params={"wallet": wallet.address, "stake": STAKE}).json()
    assert prepared["chain_id"] == w3.eth.chain_id and prepared["wallet"] == wallet.address
    [join] = prepared["transactions"]
    assert join["to"] == federation.address and int(join["value"], 16) == STAKE
    assert not federation.participant(task_id, wallet.address).joined  # prepared, never sent by the server
    send_prepared(w3, wallet, join)
    view = portal.get(f"/api/tasks/{task_id}/participants/{wallet.address}").json()
    assert view["joined"] and view["stake"] == STAKE and view["rounds"] == [] and not view["can_withdraw"]
    assert int(view["binding"], 16) == federation.binding_of(task_id, wallet.address)
    again = portal.get(f"{prepare}/join", params={"wallet": wallet.address, "stake": STAKE})
    assert again.status_code == 400 and "already joined" in again.json()["detail"]
    early = portal.get(f"{prepare}/withdraw", params={"wallet": wallet.address})
    assert early.status_code == 400 and "not settled" in early.json()["detail"]

    send_prepared(w3, other, portal.get(f"{prepare}/join", params={"wallet": other.address, "stake": STAKE})
                  .json()["transactions"][0])
    send_prepared(w3, other, portal.get(f"{prepare}/leave", params={"wallet": other.address})
                  .json()["transactions"][0])
    assert not federation.participant(task_id, other.address).joined
    federation.join(other, task_id, STAKE)  # back again: still one participant
    typo = wallet.address[:-1] + ("A" if wallet.address[-1] != "A" else "B")
    bad = portal.get(f"/api/tasks/{task_id}/participants/{typo}")
    assert bad.status_code == 400 and "EIP-55" in bad.json()["detail"]

    federation.cancel(accounts[0], task_id)  # settles: stakes come back, nobody earned a reward
    balance = w3.eth.get_balance(wallet.address)
    send_prepared(w3, wallet, portal.get(f"{prepare}/withdraw", params={"wallet": wallet.address})
                  .json()["transactions"][0])
    view = portal.get(f"/api/tasks/{task_id}/participants/{wallet.address}").json()
    assert view["withdrawn"] and view["withdrawn_amount"] == STAKE and not view["can_withdraw"]
    assert w3.eth.get_balance(wallet.address) > balance  # the stake came back, less gas
    contributions = portal.get(f"/api/tasks/{task_id}/contributions").json()
    assert [(c["wallet"], c["verified_samples"], c["reward"]) for c in contributions] == [(wallet.address, 0, 0),
                                                                                          (other.address, 0, 0)]
    assert portal.get(f"/api/tasks/{task_id}").json()["participants"] == [wallet.address, other.address]


def test_a_slashed_wallet_is_offered_no_withdrawal(portal, federation, accounts, verifier_address,  # type: ignore[no-untyped-def]
                                                   initial_model, package_cid) -> None:
    """A wallet slashed for a bad submission has nothing left: the page shows no withdraw button
    and the portal prepares no transaction that would pay it nothing for its gas."""
    cheat, honest = accounts[8], accounts[9]
    task_id = post(federation, accounts, verifier_address, initial_model, package_cid, deadline_in=600)
    for wallet in (cheat, honest):
        federation.join(wallet, task_id, STAKE)
    update, public_values, proof = [0] * 31, [0] * 6, b"\x00" * 64  # a proof of nothing, for another model
    signature = federation.sign_submission(cheat, task_id, 0, 1, update, public_values, proof)
    assert not federation.submit_update(accounts[1], task_id, 0, cheat.address, 1, update, proof, public_values,
                                        signature).accepted
    advance_chain_time(federation.w3, 601)
    federation.settle(accounts[0], task_id)
    view = portal.get(f"/api/tasks/{task_id}/participants/{cheat.address}").json()
    assert view["slashed"] and view["stake"] == 0 and not view["can_withdraw"]
    refused = portal.get(f"/api/tasks/{task_id}/transactions/withdraw", params={"wallet": cheat.address})
    assert refused.status_code == 400 and "nothing to withdraw" in refused.json()["detail"]
    kept = portal.get(f"/api/tasks/{task_id}/participants/{honest.address}").json()
    assert kept["can_withdraw"] and kept["stake"] == STAKE  # joined, never slashed: its stake comes back


def test_an_idle_chain_does_not_keep_a_task_open_past_its_deadline(accounts, initial_model, store) -> None:  # type: ignore[no-untyped-def]
    """On a chain nobody is using, the latest block is older than the clock: a task whose
    deadline has passed since must not be listed as open, nor a join prepared that would revert."""
    with start_anvil() as chain:
        w3 = connect(chain.rpc_url)
        fed = Federation.deploy(w3, accounts[0])
        params = task_params(accounts[1].address, fed.address, initial_model, now=int(time.time()), deadline_in=3,
                             aggregation_verifier=fed.address)  # any contract stands in for the verifiers here
        task_id = fed.create_task(accounts[0], params, REWARD)
        time.sleep(max(0.0, params.deadline + 1 - time.time()))  # past the deadline; no block mined since
        assert int(w3.eth.get_block("latest")["timestamp"]) <= params.deadline  # the chain's latest block is stale
        app = TestClient(create_app(chain.rpc_url, fed.address, store=store))
        terms = app.get(f"/api/tasks/{task_id}/terms").json()
        assert terms["state"] == "running" and not terms["joinable"] and terms["seconds_left"] == 0
        join = app.get(f"/api/tasks/{task_id}/transactions/join",
                       params={"wallet": accounts[7].address, "stake": STAKE})
        assert join.status_code == 400 and "not open for joining" in join.json()["detail"]


def test_an_erc20_join_is_an_approval_then_the_join(portal, w3, federation, accounts, verifier_address,  # type: ignore[no-untyped-def]
                                                    initial_model, package_cid) -> None:
    compiled = compile_contract(TEST_CONTRACTS, "TestToken")
    token, _ = deploy(w3, accounts[0], compiled)
    erc20 = w3.eth.contract(address=token, abi=compiled.abi)
    wallet = accounts[9]
    for account in (accounts[0], wallet):
        send(w3, accounts[0], erc20.functions.mint(account.address, 10 * REWARD))
    task_id = post(federation, accounts, verifier_address, initial_model, package_cid, token=token)
    listed = next(row for row in portal.get("/api/tasks").json() if row["task_id"] == task_id)
    assert listed["token"] == {"address": token, "symbol": "ZKT", "decimals": 18}
    poor = portal.get(f"/api/tasks/{task_id}/transactions/join", params={"wallet": accounts[6].address,
                                                                          "stake": STAKE})
    assert poor.status_code == 400 and "holds less" in poor.json()["detail"]
    approve, join = portal.get(f"/api/tasks/{task_id}/transactions/join",
                               params={"wallet": wallet.address, "stake": STAKE}).json()["transactions"]
    assert approve["to"] == token and join["to"] == federation.address and int(join["value"], 16) == 0
    send_prepared(w3, wallet, approve)
    send_prepared(w3, wallet, join)
    assert federation.participant(task_id, wallet.address).stake == STAKE
    assert erc20.functions.balanceOf(wallet.address).call() == 10 * REWARD - STAKE


def test_round_figures_download_as_csv_and_json(portal, federation, accounts, verifier_address, initial_model,  # type: ignore[no-untyped-def]
                                                package_cid) -> None:
    task_id = post(federation, accounts, verifier_address, initial_model, package_cid)
    rounds = portal.get(f"/api/tasks/{task_id}/rounds").json()
    assert [r["round"] for r in rounds] == [0] and rounds[0]["accepted"] == []
    response = portal.get(f"/api/tasks/{task_id}/rounds.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    [row] = list(csv.DictReader(io.StringIO(response.text)))
    assert row["round"] == "0" and row["accepted"] == "0" and row["accuracy"] == ""
    assert portal.get("/api/tasks/9999/rounds.csv").status_code == 404


def test_a_hostile_token_neither_passes_for_eth_nor_breaks_the_join(portal, w3, federation, accounts,  # type: ignore[no-untyped-def]
                                                                    verifier_address, initial_model,
                                                                    package_cid) -> None:
    compiled = compile_contract(TEST_CONTRACTS, "LookalikeToken")
    token, _ = deploy(w3, accounts[0], compiled)
    send(w3, accounts[0], w3.eth.contract(address=token, abi=compiled.abi).functions.mint(accounts[0].address, REWARD))
    task_id = post(federation, accounts, verifier_address, initial_model, package_cid, token=token)
    terms = portal.get(f"/api/tasks/{task_id}/terms").json()
    assert terms["token"]["address"] == token and terms["token"]["symbol"] == f"token {token[:10]}"
    refused = portal.get(f"/api/tasks/{task_id}/transactions/join", params={"wallet": accounts[6].address,
                                                                             "stake": STAKE})
    assert refused.status_code == 400 and "does not answer balanceOf" in refused.json()["detail"]


def test_the_page_is_never_told_an_rpc_url_with_credentials(anvil, federation, store) -> None:  # type: ignore[no-untyped-def]
    assert shareable_rpc("https://rpc.example.org") == "https://rpc.example.org"
    for secret in ("https://user:pass@rpc.example.org", "https://rpc.example.org/v3/KEY",
                   "https://rpc.example.org/?apikey=KEY"):
        assert shareable_rpc(secret) is None
    keyed = anvil.rpc_url.replace("http://", "http://portal:hunter2@")
    info = TestClient(create_app(keyed, federation.address, store=store)).get("/api/portal").json()
    assert info["rpc_url"] is None and info["federation"] == federation.address
    public = TestClient(create_app(keyed, federation.address, store=store, public_rpc="https://rpc.example.org"))
    assert public.get("/api/portal").json()["rpc_url"] == "https://rpc.example.org"


def test_a_package_reader_reads_once_and_at_most_a_package(store, package_cid) -> None:  # type: ignore[no-untyped-def]
    big = next(cid for cid in store.get_json(package_cid)["artifacts"].values()
               if len(store.get(cid)) > MAX_PACKAGE_BYTES)
    reads: list[str] = []

    class Counted(LocalStore):
        def get(self, cid: str, max_size: int = 1 << 31) -> bytes:
            reads.append(cid)
            return super().get(cid, max_size)

    reader = PackageReader(Counted(store.root))
    assert reader.get(package_cid) is not None and reader.get(package_cid) is not None
    assert reader.get(big) is None and reader.get(big) is None  # refused by its size, then not asked again
    assert reads == [package_cid, big]


def test_stake_amounts_convert_exactly_or_not_at_all() -> None:
    assert currency_units(Decimal("0.1"), 18) == 10**17
    assert currency_units(Decimal("123456789012345678901234567891"), 0) == 123456789012345678901234567891
    assert currency_units(Decimal("12345678901.000000000000000001"), 18) == 12345678901 * 10**18 + 1
    with pytest.raises(ZkflError, match="more decimals"):
        currency_units(Decimal("1.0000000000000000000000000001"), 0)  # 29 digits: Decimal would round it
    with pytest.raises(ZkflError, match="base units"):
        currency_units(Decimal("1"), 78)


def test_only_plain_ascii_symbols_are_shown_and_never_eth() -> None:
    address = "0x" + "ab" * 20
    assert _shown_symbol("USDC", address) == "USDC"
    for lookalike in ("ETH", "eth", "Ether", "ΕΤΗ", "ЕТН", "ＥＴＨ", "ETH\u034f", "ᴇᴛʜ", " ", "", "<b>x</b>"):
        assert _shown_symbol(lookalike, address) == f"token {address[:10]}", lookalike


def test_an_rpc_that_answers_errors_is_a_503_not_a_500(store) -> None:  # type: ignore[no-untyped-def]
    class TooManyRequests(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server hook's name)
            self.send_response(429)
            self.end_headers()
            self.wfile.write(b"<html>slow down</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), TooManyRequests)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = TestClient(create_app(f"http://127.0.0.1:{server.server_port}", "0x" + "11" * 20, store=store))
        for path in ("/api/tasks", "/api/tasks/1", "/api/tasks/1/terms", "/api/portal"):
            assert app.get(path).status_code == 503, path
    finally:
        server.shutdown()


def test_the_gateway_rechecks_a_file_changed_in_place_and_reindexes_evicted_blocks(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    big = bytes(range(256)) * 4096  # four leaves
    root = store.put(big)
    gateway = Gateway(store)
    leaves = [str(cid) for cid in parse_file_node(CID.decode(root), gateway.block(root)).links]
    assert gateway.block(leaves[0]) == big[:CHUNK_SIZE]
    for i in range(70):  # more roots than the gateway keeps indexes of
        gateway.block(store.put(f"small file {i}".encode()))
    assert gateway.block(leaves[1]) == big[CHUNK_SIZE : 2 * CHUNK_SIZE]  # its root's index is rebuilt

    small = store.put(b'{"backend": "ezkl"}')
    path = gateway.file(small)
    stat = path.stat()
    path.write_bytes(b'{"backend": "EVIL"}')  # same length, written in place
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and its mtime put back
    with pytest.raises(ZkflError, match="corrupt"):
        gateway.file(small)  # checked again: the change time cannot be put back


def test_a_package_not_shaped_like_zkfl_s_is_not_described(portal, store, federation, accounts,  # type: ignore[no-untyped-def]
                                                          verifier_address, initial_model, package_cid) -> None:
    package = store.get_json(package_cid)
    bloated = store.put_json({**package, "dataset": "x" * 100_000})  # echoed into every listing if read
    task_id = post(federation, accounts, verifier_address, initial_model, bloated)
    assert portal.get(f"/api/tasks/{task_id}/terms").json()["model"] is None
