"""Attacks on zkfl's artifacts over IPFS, from outside the SDK: a hostile gateway (crafted
bytes, endless or trickled answers, compressed bombs), hash-valid DAGs that are not the
DAG `ipfs add` makes (a node linking one child thousands of times, inline data, foreign
CIDs), CID strings that are paths or other spellings, artifacts that are not JSON, a
pinning service that echoes its token, and direct contract calls with malformed CIDs.

Every read must end, within a bounded time and memory, in the right bytes or a ZkflError,
and nothing unchecked may reach the cache. Real Helia nodes and a real anvil; the hostile
servers are plain http.server threads.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import http.server
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from eth_account.signers.local import LocalAccount
from multiformats import CID
from web3.logs import DISCARD

from zkfl.artifacts import ModelArtifact
from zkfl.contracts.chain import connect, send, send_data, start_anvil
from zkfl.contracts.federation import CANONICAL_SALT, CREATE2_DEPLOYER, Federation, create2_address, resolve_federation
from zkfl.errors import ChainError, ConfigError, ZkflError
from zkfl.ipfs.config import IpfsConfig
from zkfl.ipfs.node import IpfsNodeProcess, start_ipfs_node
from zkfl.ipfs.store import IpfsStore
from zkfl.ipfs.unixfs import CHUNK_SIZE, MAX_LINKS, build
from zkfl.store import LocalStore, cid_of

TOKEN = "zkfl-attack-test-token-3f9a"
Behaviour = Callable[[http.server.BaseHTTPRequestHandler, str], bool]


# ------------------------------------------------------------------ a hostile gateway

class Hostile:
    """A trustless gateway that serves ``blocks`` (anything else: junk bytes), unless
    ``behave`` takes the request over. It records which CIDs it was asked for."""

    def __init__(self, blocks: dict[str, bytes] | None = None, behave: Behaviour | None = None) -> None:
        self.blocks, self.behave = blocks or {}, behave
        self.hits: list[str] = []
        self.sent = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                text = self.path.split("/ipfs/", 1)[-1].split("?", 1)[0]
                with contextlib.suppress(Exception):  # a gateway parses any spelling of a CID
                    text = str(CID.decode(text).set(base="base32"))
                outer.hits.append(text)
                with contextlib.suppress(OSError):  # the reader may hang up on purpose
                    if outer.behave is None or not outer.behave(self, text):
                        outer.answer(self, outer.blocks.get(text, b"junk"))

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def answer(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        self.sent += len(body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile() -> Iterator[Callable[..., Hostile]]:
    started: list[Hostile] = []

    def start(blocks: dict[str, bytes] | None = None, behave: Behaviour | None = None) -> Hostile:
        started.append(Hostile(blocks, behave))
        return started[-1]

    yield start
    for gateway in started:
        gateway.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsNodeProcess]:
    with start_ipfs_node(tmp_path_factory.mktemp("ipfs") / "node") as started:
        yield started


def reader(tmp_path: Path, *sources: str, retries: int = 1, timeout: float = 5.0, api: str | None = None) -> IpfsStore:
    return IpfsStore(IpfsConfig(api=api, gateways=sources, retries=retries, timeout=timeout),
                     cache=LocalStore(tmp_path / "cache"))


def get_within(store: IpfsStore, cid: str, seconds: float) -> bytes | BaseException:
    """The read's result or exception; fails the test if it is still running after ``seconds``."""
    box: list[bytes | BaseException] = []

    def run() -> None:
        try:
            box.append(store.get(cid))
        except BaseException as exc:  # noqa: BLE001 (whatever it is, the test reports it)
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"reading {cid} still runs after {seconds} s"
    return box[0]


# ------------------------------------------------------------------ what a source sends

def test_an_endless_answer_is_cut_at_one_block(tmp_path: Path, hostile: Callable[..., Hostile]) -> None:
    def endless(handler: http.server.BaseHTTPRequestHandler, cid: str) -> bool:
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()  # no length: the body runs until the connection closes
        for _ in range(64):
            handler.wfile.write(bytes(1 << 20))
            gateway.sent += 1 << 20
        return True

    gateway = hostile(behave=endless)
    with pytest.raises(ZkflError, match="more than a block"):
        reader(tmp_path, gateway.url).get(cid_of(b"x"))
    assert gateway.sent < 8 << 20  # the reader hung up after one block's worth, it did not take 64 MiB


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_trickled_answer_ends_at_the_timeout(tmp_path: Path, hostile: Callable[..., Hostile], part: str) -> None:
    """requests' timeout bounds each read, not the answer: a byte every 0.25 s never trips a 1 s timeout."""
    def trickle(handler: http.server.BaseHTTPRequestHandler, cid: str) -> bool:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n" + (b"Content-Length: 40\r\n\r\n" if part == "body" else b""))
        for i in range(40):
            handler.wfile.write(b"x" if part == "body" else b"X-%d: y\r\n" % i)
            handler.wfile.flush()
            time.sleep(0.25)
        return True

    started = time.monotonic()
    outcome = get_within(reader(tmp_path, hostile(behave=trickle).url, timeout=1.0), cid_of(b"x"), 20)
    assert isinstance(outcome, ZkflError) and "no whole answer within 1 s" in str(outcome)
    assert time.monotonic() - started < 3


def test_a_compressed_answer_is_never_inflated(tmp_path: Path, hostile: Callable[..., Hostile]) -> None:
    bomb = gzip.compress(bytes(64 << 20), compresslevel=9)  # 64 MiB of zeros in about 64 KB

    def compressed(handler: http.server.BaseHTTPRequestHandler, cid: str) -> bool:
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(bomb)))
        handler.end_headers()
        handler.wfile.write(bomb)
        return True

    with pytest.raises(ZkflError, match="compressed"):
        reader(tmp_path, hostile(behave=compressed).url).get(cid_of(b"x"))


# ------------------------------------------------------------------ hash-valid DAGs that are not zkfl's

def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def _pb(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _cid(codec: int, block: bytes) -> bytes:
    return bytes([1, codec, 0x12, 32]) + hashlib.sha256(block).digest()


def _node(links: list[bytes], sizes: list[int], kind: int = 2, data: bytes | None = None,
          data_first: bool = False) -> bytes:
    """A dag-pb UnixFS node linking the binary CIDs ``links``, written by hand."""
    unixfs = _pb(1, kind) + (_pb(2, data) if data is not None else b"") + _pb(3, sum(sizes))
    unixfs += b"".join(_pb(4, size) for size in sizes)
    encoded = [_pb(2, _pb(1, link) + _pb(2, b"") + _pb(3, 0)) for link in links]
    return b"".join([_pb(1, unixfs), *encoded] if data_first else [*encoded, _pb(1, unixfs)])


def _dag(*blocks: bytes) -> tuple[str, dict[str, bytes]]:
    """The last block is the root; raw leaves are the blocks that do not parse as nodes here."""
    named = {}
    for block in blocks:
        codec = 0x55 if block in LEAVES else 0x70
        named[_text(_cid(codec, block))] = block
    return _text(_cid(0x70, blocks[-1])), named


def _text(binary: bytes) -> str:
    return str(CID.decode(binary).set(base="base32"))


FULL, SHORT, EMPTY = os.urandom(CHUNK_SIZE), b"short", b""
LEAVES = {FULL, SHORT, EMPTY}
RAW = {leaf: _cid(0x55, leaf) for leaf in LEAVES}


def _amplifier() -> tuple[str, dict[str, bytes]]:
    """Four levels of 1000 links to the node below, over an empty leaf: 176 KB that expand to 10^12 reads."""
    blocks, link = [EMPTY], RAW[EMPTY]
    for _ in range(4):
        blocks.append(_node([link] * 1000, [0] * 1000))
        link = _cid(0x70, blocks[-1])
    return _dag(*blocks)


def _foreign(link: bytes) -> tuple[str, dict[str, bytes]]:
    return _dag(FULL, _node([link, RAW[SHORT]], [CHUNK_SIZE, 5]))


HOSTILE_DAGS: dict[str, tuple[Callable[[], tuple[str, dict[str, bytes]]], int]] = {
    # name: (the DAG, how many blocks a reader may fetch before refusing it)
    "a 10^12-read amplifier": (_amplifier, 1),
    "one leaf linked 3000 times": (lambda: _dag(FULL, _node([RAW[FULL]] * 3000, [CHUNK_SIZE] * 3000)), 1),
    "a claim of 2 TiB": (lambda: _dag(FULL, _node([RAW[FULL]] * 2, [1 << 40] * 2)), 1),
    "inline data beside links": (lambda: _dag(FULL, SHORT, _node([RAW[FULL], RAW[SHORT]], [CHUNK_SIZE, 5],
                                                                  data=b"evil")), 1),
    "a UnixFS raw node": (lambda: _dag(FULL, SHORT, _node([RAW[FULL], RAW[SHORT]], [CHUNK_SIZE, 5], kind=0)), 1),
    "data before links": (lambda: _dag(FULL, SHORT, _node([RAW[FULL], RAW[SHORT]], [CHUNK_SIZE, 5],
                                                           data_first=True)), 1),
    "a one-chunk file as dag-pb": (lambda: _dag(SHORT, _node([RAW[SHORT]], [5])), 1),
    "sizes off the balanced shape": (lambda: _dag(SHORT, FULL, _node([RAW[SHORT], RAW[FULL]], [5, CHUNK_SIZE])), 1),
    "a short leaf where a full one belongs": (
        lambda: _dag(SHORT, FULL, _node([RAW[SHORT], RAW[FULL], RAW[SHORT]], [CHUNK_SIZE, CHUNK_SIZE, 5])), 2),
    "a link to a 64-byte sha2-256 CID": (lambda: _foreign(bytes([1, 0x55, 0x12, 64]) + bytes(64)), 1),
    "a link to a dag-cbor CID": (lambda: _foreign(bytes([1, 0x71, 0x12, 32]) + bytes(32)), 1),
    "a link to a CIDv0": (lambda: _foreign(bytes([0x12, 32]) + bytes(32)), 1),
}


@pytest.mark.parametrize("name", list(HOSTILE_DAGS))
def test_a_dag_that_is_not_ipfs_adds_is_refused_before_it_is_expanded(
        tmp_path: Path, hostile: Callable[..., Hostile], name: str) -> None:
    make, most = HOSTILE_DAGS[name]
    root, blocks = make()
    gateway = hostile(blocks)
    store = reader(tmp_path, gateway.url)
    outcome = get_within(store, root, 10)
    assert isinstance(outcome, ZkflError), f"{name}: {outcome!r}"
    assert gateway.hits[:1] == [root]  # it was read (not refused for its spelling)
    assert len(gateway.hits) <= most, f"{name}: {len(gateway.hits)} blocks fetched before refusing"
    assert not store.has(root)


def test_ipfs_adds_own_dags_read_back_block_by_block(node: IpfsNodeProcess, tmp_path: Path) -> None:
    """The strict reader takes a two-level tree from a real IPFS implementation, one leaf
    linked 174 times included (a file of zeros)."""
    data = bytes(MAX_LINKS * CHUNK_SIZE + 1)
    added = requests.post(f"{node.api_url}/api/v0/add", params={"cid-version": "1", "raw-leaves": "true"},
                          files={"file": ("zeros", data)}, timeout=120).json()["Hash"]
    assert added == cid_of(data) and len({block.cid for block in build(data)}) == 5  # 2 leaves, 3 nodes
    assert reader(tmp_path, node.gateway_url).get(added) == data


# ------------------------------------------------------------------ CID strings

def _spelled_with_a_slash() -> str:
    """A CID of zkfl's kind, written in base64: the text has a '/' (a path separator) in it."""
    for n in range(1000):
        text = str(CID.decode(cid_of(str(n).encode())).set(base="base64"))
        if "/" in text:
            assert str(CID.decode(text).set(base="base32")) == cid_of(str(n).encode())  # a real spelling of it
            return text
    raise AssertionError("no base64 spelling with a slash")


@pytest.mark.parametrize("text", [
    "../../etc/passwd", "/etc/passwd", "bafkrei/../../../tmp/x", "", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
    str(CID.decode(cid_of(b"x")).set(base="base58btc")), cid_of(b"x").upper(), "spelled with a slash",
])
def test_a_cid_string_is_never_a_path_nor_another_spelling(tmp_path: Path, hostile: Callable[..., Hostile],
                                                           text: str) -> None:
    text = _spelled_with_a_slash() if text == "spelled with a slash" else text
    gateway = hostile({cid_of(b"x"): b"x"})
    store = reader(tmp_path, gateway.url)
    with pytest.raises(ZkflError):
        store.get(text)
    assert gateway.hits == []  # refused before anyone is asked
    assert [p.name for p in tmp_path.rglob("*")] == ["cache"]  # and nothing written anywhere


@pytest.mark.parametrize("content", [b"[" * 100_000, b"\xff\xfe not utf-8", b"not json", b'{"cut short": '])
def test_an_artifact_that_is_not_json_is_an_error_not_a_crash(node: IpfsNodeProcess, tmp_path: Path,
                                                              content: bytes) -> None:
    cid = reader(tmp_path / "producer", api=node.api_url).put(content)
    consumer = reader(tmp_path / "consumer", node.gateway_url)
    with pytest.raises(ZkflError, match="not JSON"):
        consumer.get_json(cid)
    with pytest.raises(ZkflError):
        ModelArtifact.get(consumer, cid)


# ------------------------------------------------------------------ slow, dead and flaky sources

def test_a_flaky_source_costs_retries_per_read_not_per_block(tmp_path: Path, hostile: Callable[..., Hostile]) -> None:
    """Each block's first two requests hang, the third is answered: with retries=3 that was
    3 tries x 0.5 s + 1 + 2 s of back-off for every block; the read's retries are now shared."""
    data = os.urandom(3 * CHUNK_SIZE)
    asked: dict[str, int] = {}

    def flaky(handler: http.server.BaseHTTPRequestHandler, cid: str) -> bool:
        asked[cid] = asked.get(cid, 0) + 1
        if asked[cid] < 3:
            time.sleep(2)
            return True
        return False

    gateway = hostile({str(block.cid): block.data for block in build(data)}, flaky)
    started = time.monotonic()
    outcome = get_within(reader(tmp_path, gateway.url, retries=3, timeout=0.5), cid_of(data), 30)
    assert isinstance(outcome, ZkflError) and "could not be fetched after 3 tries" in str(outcome)
    assert time.monotonic() - started < 3 * 0.5 + 1 + 2 + 2  # the bound for the whole read, whatever its size


def test_a_dead_source_is_asked_last(node: IpfsNodeProcess, tmp_path: Path, hostile: Callable[..., Hostile]) -> None:
    def dead(handler: http.server.BaseHTTPRequestHandler, cid: str) -> bool:
        time.sleep(3)
        return True

    data = os.urandom(12 * CHUNK_SIZE)  # 13 blocks: the dead source costs one timeout, not thirteen
    cid = reader(tmp_path / "producer", api=node.api_url).put(data)
    started = time.monotonic()
    assert reader(tmp_path, hostile(behave=dead).url, node.gateway_url, timeout=1.0).get(cid) == data
    assert time.monotonic() - started < 4


# ------------------------------------------------------------------ the pinning token

def test_a_pinning_service_cannot_put_the_token_in_an_error_or_crash_the_writer(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    answers = iter([(500, "proxy error; you sent Authorization: Bearer " + TOKEN), (200, "<html>not json</html>"),
                    (202, '["queued"]')])

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers["Content-Length"]))
            status, body = next(answers)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    store = IpfsStore(IpfsConfig(gateways=("http://127.0.0.1:9",), pinning_url=f"http://127.0.0.1:{server.server_port}",
                                 pinning_token=TOKEN, retries=1), cache=LocalStore(tmp_path))
    caplog.set_level(logging.DEBUG)
    try:
        for _ in range(3):
            with pytest.raises(ZkflError) as refused:
                store.pin_remote(cid_of(b"x"))
            assert TOKEN not in str(refused.value)
    finally:
        server.shutdown()
    assert TOKEN not in caplog.text and TOKEN not in repr(store)


# ------------------------------------------------------------------ the node's HTTP API from a web page

def _post(node: IpfsNodeProcess, headers: dict[str, str]) -> int:
    port = int(node.api_url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/api/v0/id", headers=headers)
    return connection.getresponse().status


def test_the_node_refuses_a_foreign_web_page(node: IpfsNodeProcess) -> None:
    assert _post(node, {"Origin": "http://evil.example"}) == 403
    assert _post(node, {}) == 200  # zkfl itself sends no Origin


def test_the_node_refuses_a_page_that_rebinds_its_name_to_127_0_0_1(node: IpfsNodeProcess) -> None:
    """A page at evil.example whose name resolves to 127.0.0.1 is same-origin with itself: only
    a loopback Host is let through to the RPC API."""
    port = node.api_url.rsplit(":", 1)[1]
    assert _post(node, {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}) == 403
    assert _post(node, {"Host": f"evil.example:{port}"}) == 403
    assert _post(node, {"Host": f"localhost:{port}"}) == 200


# ------------------------------------------------------------------ the chain

def _create_task(federation: Federation, accounts: list[LocalAccount], model: bytes, package: bytes) -> int:
    """createTask called directly, the CIDs as raw bytes: the SDK's own checks are skipped."""
    now = int(federation.w3.eth.get_block("latest")["timestamp"])
    params = (accounts[1].address, federation.address, federation.address, 2, "0x" + "00" * 20, 0, 0, 0, now + 3600,
              2, 10, 60, 4, 1_000_000, False, 0, 1, model, package)
    receipt = send(federation.w3, accounts[0], federation.contract.functions.createTask(params), value=10**15)
    return int(federation.contract.events.TaskCreated().process_receipt(receipt, errors=DISCARD)[0]["args"]["taskId"])


def test_the_chain_records_only_zkfl_cids(federation: Federation, accounts: list[LocalAccount]) -> None:
    good_raw, good_dag = _cid(0x55, b"model"), _cid(0x70, b"package")
    malformed = [bytes([0x12, 32]) + bytes(32), bytes([1, 0x71, 0x12, 32]) + bytes(32), good_raw + b"\0",
                 bytes([1, 0x55, 0x13, 32]) + bytes(32), bytes([1, 0x55, 0x00, 32]) + bytes(32), b"", bytes(36)]
    for bad in malformed:
        for model, package in ((bad, good_dag), (good_raw, bad)):
            with pytest.raises(ChainError, match="InvalidCid"):
                _create_task(federation, accounts, model, package)
    task_id = _create_task(federation, accounts, good_raw, good_dag)
    assert federation.round(task_id, 0).model_cid == _text(good_raw)
    assert federation.task(task_id).package_cid == _text(good_dag)
    assert federation.round(task_id, 1).model_cid is None  # no model yet reads as None, not a crash


def test_nothing_but_the_federation_can_sit_at_its_canonical_address(federation: Federation,
                                                                     accounts: list[LocalAccount]) -> None:
    canonical = resolve_federation(federation.w3)
    assert canonical.address == federation.address
    code = bytes(federation.w3.eth.get_code(canonical.address))
    other = bytes.fromhex("600a600c600039600a6000f3602a60005260206000f3")  # returns 42 for any call
    receipt = send_data(federation.w3, accounts[2], CREATE2_DEPLOYER, CANONICAL_SALT + other)
    assert receipt["status"] == 1 and create2_address(other) != canonical.address  # other code lands elsewhere
    assert bytes(federation.w3.eth.get_code(canonical.address)) == code


def test_code_swapped_in_at_the_canonical_address_is_not_trusted(accounts: list[LocalAccount]) -> None:
    """On a dev chain anyone may overwrite code (anvil_setCode): a party finding the Federation
    from the chain compares the code there with what zkfl's constructors leave."""
    with start_anvil(chain_id=4343) as anvil:
        w3 = connect(anvil.rpc_url)
        deployed = Federation.deploy(w3, accounts[0])
        assert resolve_federation(w3).address == deployed.address
        w3.provider.make_request("anvil_setCode", [deployed.address, "0x602a60005260206000f3"])  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="is not zkfl's Federation"):
            resolve_federation(w3)
