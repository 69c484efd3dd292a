"""Artifacts over real IPFS nodes (Helia, started by zkfl): CIDs equal a real IPFS
implementation's for one-block and multi-block files, every fetched block is checked
against its CID (a gateway is never trusted), a node that is down gives a clear error
after bounded retries and works again when it is back, and remote pinning speaks the
IPFS Pinning Service API without leaking its token."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from zkfl.contracts.chain import free_port
from zkfl.errors import ZkflError
from zkfl.ipfs.config import IpfsConfig
from zkfl.ipfs.node import IpfsNodeProcess, start_ipfs_node
from zkfl.ipfs.store import IpfsStore
from zkfl.ipfs.unixfs import CHUNK_SIZE, MAX_LINKS
from zkfl.store import LocalStore, cid_of

TOKEN = "zkfl-test-pinning-token"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IpfsNodeProcess, IpfsNodeProcess]]:
    root = tmp_path_factory.mktemp("ipfs")
    with start_ipfs_node(root / "a") as a, start_ipfs_node(root / "b", peers=[a.addresses[0]],
                                                           pin_token=TOKEN) as b:
        yield a, b


def store(tmp_path: Path, name: str, **config: object) -> IpfsStore:
    return IpfsStore(IpfsConfig(**config), cache=LocalStore(tmp_path / name))  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 5, CHUNK_SIZE, CHUNK_SIZE + 1, 3_000_000, MAX_LINKS * CHUNK_SIZE + 1])
def test_cids_equal_a_real_ipfs_implementation(nodes: tuple[IpfsNodeProcess, IpfsNodeProcess], size: int) -> None:
    """Helia's importer, with `ipfs add --cid-version 1 --raw-leaves`'s options, names every
    size as zkfl does: one raw block up to 256 KiB, then a balanced dag-pb tree (two levels
    past 174 chunks)."""
    data = os.urandom(size)
    response = requests.post(f"{nodes[0].api_url}/api/v0/add", params={"cid-version": "1", "raw-leaves": "true"},
                             files={"file": ("f", data)}, timeout=120)
    assert response.status_code == 200, response.text
    assert response.json()["Hash"] == cid_of(data)


def test_artifacts_cross_between_parties_only_through_ipfs(nodes: tuple[IpfsNodeProcess, IpfsNodeProcess],
                                                          tmp_path: Path) -> None:
    a, b = nodes
    data = os.urandom(1_500_000)
    cid = store(tmp_path, "producer", api=a.api_url).put(data)
    consumer = store(tmp_path, "consumer", api=b.api_url)  # its own node, its own empty cache
    assert not consumer.has(cid)
    assert consumer.get(cid) == data and consumer.has(cid)
    reader = store(tmp_path, "auditor", gateways=(a.gateway_url,))  # no node: a gateway only
    assert reader.get(cid) == data


class _AlteringGateway(http.server.BaseHTTPRequestHandler):
    """A hostile gateway: it serves the real block with one byte changed."""

    upstream = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        real = requests.get(self.upstream + self.path, headers={"Accept": "application/vnd.ipld.raw"}, timeout=30)
        body = bytearray(real.content)
        body[len(body) // 2] ^= 1
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.ipld.raw")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(bytes(body))

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile_gateway(nodes: tuple[IpfsNodeProcess, IpfsNodeProcess]) -> Iterator[str]:
    handler = type("Altering", (_AlteringGateway,), {"upstream": nodes[0].gateway_url})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_altered_bytes_from_a_gateway_are_refused(nodes: tuple[IpfsNodeProcess, IpfsNodeProcess],
                                                  hostile_gateway: str, tmp_path: Path) -> None:
    a, _ = nodes
    data = os.urandom(700_000)  # three blocks under a dag-pb root: the root and the leaves are checked
    cid = store(tmp_path, "producer", api=a.api_url).put(data)
    fooled = store(tmp_path, "fooled", gateways=(hostile_gateway,), retries=1)
    with pytest.raises(ZkflError, match="does not match its CID"):
        fooled.get(cid)
    assert not fooled.has(cid)  # nothing altered is kept
    careful = store(tmp_path, "careful", gateways=(hostile_gateway, a.gateway_url), retries=1)
    assert careful.get(cid) == data  # the honest gateway's bytes are used, the altered ones never


def test_a_node_that_is_down_fails_clearly_then_recovers(tmp_path: Path) -> None:
    port = free_port()
    with start_ipfs_node(tmp_path / "node", port=port) as node:
        cid = store(tmp_path, "producer", api=node.api_url).put(os.urandom(400_000))
    reader = store(tmp_path, "reader", api=f"http://127.0.0.1:{port}", retries=2, timeout=5.0)
    with pytest.raises(ZkflError, match=r"could not be fetched after 2 tries .*unreachable"):
        reader.get(cid)
    with start_ipfs_node(tmp_path / "node", port=port):  # back, with the same repo
        assert cid_of(reader.get(cid)) == cid


def test_remote_pinning_speaks_the_pinning_service_api(nodes: tuple[IpfsNodeProcess, IpfsNodeProcess],
                                                       tmp_path: Path) -> None:
    a, b = nodes  # b plays the pinning service: it fetches what it is asked to pin from a
    pinned = store(tmp_path, "organisation", api=a.api_url, pinning_url=b.gateway_url, pinning_token=TOKEN)
    cid = pinned.put(os.urandom(300_000))
    listed = requests.get(f"{b.gateway_url}/pins", params={"cid": cid},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
    assert listed["count"] == 1 and listed["results"][0]["pin"]["cid"] == cid
    wrong = store(tmp_path, "intruder", api=a.api_url, pinning_url=b.gateway_url, pinning_token="not-the-token")
    with pytest.raises(ZkflError, match="401") as refused:
        wrong.put(os.urandom(10))
    assert "not-the-token" not in str(refused.value) and "not-the-token" not in repr(wrong)


def test_a_local_store_takes_only_cids(tmp_path: Path) -> None:
    with pytest.raises(ZkflError, match="not a CID"):
        LocalStore(tmp_path).get("../../etc/passwd")
