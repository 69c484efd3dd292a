"""zkfl's own IPFS node (Helia, zkfl/ipfs/node.mjs) as real processes: two peered nodes.

A adds; B, peered to A only, serves A's files over its RPC and its trustless gateway,
fetched over bitswap. Nothing is mocked and nothing reaches past 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from multiformats import CID, multihash

from zkfl.errors import ConfigError, ZkflError
from zkfl.ipfs.node import IpfsNodeProcess, ipfs_down, ipfs_running, ipfs_up, start_ipfs_node
from zkfl.ipfs.unixfs import assemble
from zkfl.store import cid_of

TOKEN = "test-pin-token"
RAW_BLOCK = "application/vnd.ipld.raw"


@dataclass
class Nodes:
    a: IpfsNodeProcess
    b: IpfsNodeProcess
    files: dict[str, tuple[bytes, str]]  # name -> (bytes, CID A named them)


def add(node: IpfsNodeProcess, data: bytes, name: str, **params: str) -> httpx.Response:
    query = {"cid-version": "1", "raw-leaves": "true", "pin": "true", **params}
    return httpx.post(f"{node.api_url}/api/v0/add", params=query, files={"file": (name, data)}, timeout=60)


def rpc(node: IpfsNodeProcess, command: str, **params: str) -> httpx.Response:
    """A Kubo-style RPC call; a ``timeout`` here is the node's own (a query parameter)."""
    return httpx.post(f"{node.api_url}/api/v0/{command}", params=params, timeout=60)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    root = tmp_path_factory.mktemp("ipfs")
    started = time.monotonic()
    a = start_ipfs_node(root / "a", pin_token=TOKEN)
    startup = time.monotonic() - started
    b = start_ipfs_node(root / "b", peers=[a.addresses[0]])
    files = {"small": os.urandom(100), "large": os.urandom(3_000_000)}
    added = {}
    for name, data in files.items():
        response = add(a, data, name)
        assert response.status_code == 200, response.text
        added[name] = (data, response.json()["Hash"])
    print(f"node start-up {startup:.2f} s")
    group = Nodes(a=a, b=b, files=added)
    yield group
    group.a.stop()
    group.b.stop()


def test_add_names_files_as_zkfl_does(nodes: Nodes) -> None:
    for name, (data, cid) in nodes.files.items():
        assert cid == cid_of(data), name  # CIDv1, raw leaves, 256 KiB chunks, 174 links
    response = add(nodes.a, b"named", "model.onnx")
    assert response.json()["Name"] == "model.onnx"
    assert response.json()["Size"] == "5"


def test_unsupported_add_options_are_refused(nodes: Nodes) -> None:
    for params in ({"cid-version": "0"}, {"raw-leaves": "false"}, {"chunker": "rabin"}):
        response = add(nodes.a, b"x" * 10, "x", **params)
        assert response.status_code == 400, params
        assert response.json()["Type"] == "error"
    assert "CIDv1" in add(nodes.a, b"x", "x", **{"cid-version": "0"}).json()["Message"]


def test_peer_serves_added_files_over_rpc_and_gateway(nodes: Nodes) -> None:
    for name, (data, cid) in nodes.files.items():
        started = time.monotonic()
        cat = rpc(nodes.b, "cat", arg=cid)
        print(f"B fetched {name} ({len(data)} bytes) from A in {time.monotonic() - started:.3f} s")
        assert cat.status_code == 200 and cat.content == data, name
        page = httpx.get(f"{nodes.b.gateway_url}/ipfs/{cid}", timeout=30)
        assert page.status_code == 200 and page.content == data, name
        assert page.headers["content-length"] == str(len(data))


def test_raw_blocks_match_their_cids(nodes: Nodes) -> None:
    def fetch(cid: CID) -> bytes:
        response = httpx.get(f"{nodes.b.gateway_url}/ipfs/{cid}", params={"format": "raw"}, timeout=30)
        assert response.status_code == 200
        assert response.headers["content-type"] == RAW_BLOCK
        hasher = multihash.from_digest(cid.digest)
        assert hasher.name == "sha2-256"
        assert hashlib.sha256(response.content).digest() == bytes(multihash.unwrap(cid.digest))
        return response.content

    for data, cid in nodes.files.values():
        assert assemble(CID.decode(cid), fetch) == data  # every block, each checked against its CID
    _, large = nodes.files["large"]
    by_accept = httpx.get(f"{nodes.b.gateway_url}/ipfs/{large}", headers={"Accept": RAW_BLOCK}, timeout=30)
    assert by_accept.content == fetch(CID.decode(large))
    block = rpc(nodes.b, "block/get", arg=large)
    assert block.status_code == 200 and block.content == by_accept.content


def test_bad_and_unknown_cids(nodes: Nodes) -> None:
    assert httpx.get(f"{nodes.b.gateway_url}/ipfs/not-a-cid", timeout=10).status_code == 400
    unknown = cid_of(b"nobody has added this " + os.urandom(8))
    missing = httpx.get(f"{nodes.b.gateway_url}/ipfs/{unknown}", params={"timeout": "1s"}, timeout=10)
    assert missing.status_code == 504 and "timed out" in missing.text
    failed = rpc(nodes.b, "block/get", arg=unknown, timeout="1s")
    assert failed.status_code == 500 and "timed out" in failed.json()["Message"]
    assert httpx.get(f"{nodes.b.api_url}/api/v0/id", timeout=10).status_code == 405  # RPC is POST only


def test_identity_version_and_peers(nodes: Nodes) -> None:
    ident = rpc(nodes.b, "id").json()
    assert ident["ID"] == nodes.b.peer_id and ident["Addresses"] == nodes.b.addresses
    assert rpc(nodes.b, "version").json()["Version"].startswith("helia-7.")
    peers = rpc(nodes.b, "swarm/peers").json()["Peers"]
    assert nodes.a.peer_id in [p["Peer"] for p in peers]
    connect = rpc(nodes.a, "swarm/connect", arg=nodes.b.addresses[0]).json()
    assert connect["Strings"] == [f"connect {nodes.b.peer_id} success"]


def test_pin_add_fetches_the_whole_dag(nodes: Nodes) -> None:
    _, large = nodes.files["large"]
    assert rpc(nodes.b, "pin/add", arg=large).json() == {"Pins": [large]}


def test_pinning_service_needs_the_token(nodes: Nodes) -> None:
    data = os.urandom(400_000)  # on B only: A's pinning service fetches it from the origin it is given
    cid = add(nodes.b, data, "on-b").json()["Hash"]
    url = f"{nodes.a.api_url}/pins"
    request = {"cid": cid, "name": "from-b", "origins": [nodes.b.addresses[0]], "meta": {}}
    assert httpx.post(url, json=request, timeout=10).status_code == 401
    assert httpx.post(url, json=request, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    # B was started without a token: it refuses every remote pin.
    refused = httpx.post(f"{nodes.b.api_url}/pins", json=request, headers={"Authorization": f"Bearer {TOKEN}"})
    assert refused.status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    pinned = httpx.post(url, json=request, headers=auth, timeout=30)
    assert pinned.status_code == 202
    status = pinned.json()
    assert status["status"] == "pinned" and status["pin"] == request
    listed = httpx.get(url, params={"cid": cid}, headers=auth, timeout=10).json()
    assert listed["count"] == 1 and listed["results"][0]["requestid"] == status["requestid"]
    one = httpx.get(f"{url}/{status['requestid']}", headers=auth, timeout=10).json()
    assert one == status
    assert rpc(nodes.a, "cat", arg=cid).content == data
    bad = httpx.post(url, json={"cid": "not-a-cid"}, headers=auth, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["reason"] == "BAD_REQUEST"


def test_restart_keeps_content_identity_and_peering(nodes: Nodes, tmp_path: Path) -> None:
    a = nodes.a
    a.stop()
    _, large = nodes.files["large"]
    assert rpc(nodes.b, "cat", arg=large).status_code == 200  # pinned on B: served without A
    nodes.a = start_ipfs_node(a.repo, pin_token=TOKEN)
    assert nodes.a.peer_id == a.peer_id and nodes.a.addresses == a.addresses  # B's --peer still names it
    for data, cid in nodes.files.values():
        assert rpc(nodes.a, "cat", arg=cid).content == data
    fresh = os.urandom(50_000)
    cid = add(nodes.a, fresh, "fresh").json()["Hash"]
    started = time.monotonic()
    assert rpc(nodes.b, "cat", arg=cid, timeout="20s").content == fresh  # B redialled A
    print(f"B fetched from the restarted A in {time.monotonic() - started:.2f} s")
    with pytest.raises(ZkflError, match="in use"):
        start_ipfs_node(a.repo)  # one node per repo


def test_launcher_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZKFL_TOOLS", str(tmp_path / "no-tools"))
    with pytest.raises(ConfigError, match="make setup"):
        start_ipfs_node(tmp_path / "repo")


def test_ipfs_up_is_detached_and_single(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZKFL_HOME", str(tmp_path / "home"))
    node = ipfs_up()
    try:
        assert node.repo == tmp_path / "home" / "ipfs" / "repo"
        again = ipfs_up()
        assert (again.pid, again.api_url) == (node.pid, node.api_url)
        assert ipfs_running() is not None
    finally:
        assert ipfs_down() is True
    assert ipfs_down() is False and ipfs_running() is None
