"""Artifacts on IPFS: added to this role's node, read from any node or gateway.

Writes go to a Kubo-RPC-compatible node (``/api/v0/add``, the same options as
`ipfs add --cid-version 1 --raw-leaves`), and to a remote pinning service when one is
configured (the IPFS Pinning Service API). Reads fetch one block at a time, from the
node (``/api/v0/block/get``) or any trustless gateway (``/ipfs/{cid}?format=raw``), and
check each block against its hash before parsing it, so a gateway is never trusted.
Checked artifacts are cached in the role's own folder.

A source can only waste bounded time and memory: each request ends within
``ZKFL_IPFS_TIMEOUT`` seconds (a timer cuts its socket, so an answer trickled a byte
at a time ends too) and carries at most one block (``MAX_BLOCK_SIZE``, never decoded
from a compressed body); a read makes at most ``ZKFL_IPFS_RETRIES`` failed passes over
its sources, for all its blocks together, and tries a source that failed last.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import urllib3.connection
from multiformats import CID
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from zkfl.errors import StoreUnavailable, ZkflError
from zkfl.ipfs.config import IpfsConfig
from zkfl.ipfs.unixfs import CHUNK_SIZE, MAX_BLOCK_SIZE, MAX_FILE_SIZE, assemble, check_block
from zkfl.jsonsafe import loads_bounded
from zkfl.store import MAX_JSON_BYTES, ContentStore, LocalStore, cid_bytes, cid_of

log = logging.getLogger(__name__)
RAW_BLOCK = "application/vnd.ipld.raw"
BLOCK_HEADERS = {"Accept": RAW_BLOCK, "Accept-Encoding": "identity"}


class IpfsStore(ContentStore):
    def __init__(self, config: IpfsConfig, cache: LocalStore) -> None:
        if not config.configured:
            raise ZkflError("an IPFS store needs a node (ZKFL_IPFS_API) or a gateway (ZKFL_IPFS_GATEWAYS)")
        self.config = config
        self.cache = cache
        self.session = requests.Session()
        adapter = _DeadlineAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"IpfsStore({self.config!r})"

    # -------------------------------------------------------------- writes

    def put(self, data: bytes) -> str:
        cid = cid_of(data)
        self.cache.keep(cid, data)
        if self.config.api is not None:
            self._add(cid, data)
        if self.config.pinning_url is not None:
            self.pin_remote(cid)
        return cid

    def _add(self, cid: str, data: bytes) -> None:
        params = {"cid-version": "1", "raw-leaves": "true", "pin": "true", "chunker": f"size-{CHUNK_SIZE}"}
        response = self._retry(lambda: self.session.post(
            f"{self.config.api}/api/v0/add", params=params, files={"file": (cid, data)},
            timeout=self.config.timeout), f"adding {cid} to the IPFS node at {self.config.api}")
        added = next((line["Hash"] for line in reversed(_json_lines(response.text)) if "Hash" in line), None)
        if added != cid:
            raise ZkflError(f"the IPFS node at {self.config.api} named an artifact {added!r}, zkfl names it {cid}: "
                            "the node does not add with --cid-version 1 --raw-leaves and 256 KiB chunks")

    def pin_remote(self, cid: str, name: str | None = None) -> None:
        """Ask the pinning service to keep ``cid`` (it fetches it from the network)."""
        url = f"{self.config.pinning_url}/pins"
        headers = {"Authorization": f"Bearer {self.config.pinning_token}"}
        response = self._retry(lambda: self.session.post(
            url, json={"cid": cid, "name": name or cid}, headers=headers, timeout=self.config.timeout),
            f"pinning {cid} at {self.config.pinning_url}")
        status = _json_object(response.text).get("status")
        if status not in ("queued", "pinning", "pinned"):
            raise ZkflError(f"the pinning service at {self.config.pinning_url} answered status {status!r} for {cid}")

    # -------------------------------------------------------------- reads

    def has(self, cid: str) -> bool:
        return self.cache.has(cid)

    def get(self, cid: str, max_size: int = MAX_FILE_SIZE) -> bytes:
        root = _canonical(cid)
        if self.cache.has(cid):
            with contextlib.suppress(ZkflError):  # a damaged cache entry is removed and fetched again
                return self.cache.get(cid, max_size)
        read = _Read(order=list(range(len(self._bases()))))
        data = assemble(root, lambda block: self._block(block, read), max_size)
        self.cache.keep(cid, data)
        return data

    def get_json(self, cid: str, max_size: int = MAX_JSON_BYTES) -> Any:
        """Checked bytes are still whatever their author wrote: not JSON is a ZkflError, not a crash."""
        return loads_bounded(self.get(cid, max_size), f"artifact {cid}")

    def path_of(self, cid: str) -> Path:
        self.get(cid)
        return self.cache.path_of(cid)

    def local_path(self, cid: str) -> Path | None:
        return self.cache.local_path(cid)

    def _bases(self) -> list[str]:
        return ([self.config.api] if self.config.api is not None else []) + list(self.config.gateways)

    def _request(self, index: int, cid: CID) -> tuple[str, str]:
        text = str(cid.set(base="base32"))  # the form every gateway parses, whatever base named it
        if index == 0 and self.config.api is not None:
            return "POST", f"{self.config.api}/api/v0/block/get?arg={text}"
        return "GET", f"{self._bases()[index]}/ipfs/{text}?format=raw"

    def _block(self, cid: CID, read: _Read) -> bytes:
        """One block, from the first source that serves bytes matching its hash."""
        while True:
            for index in list(read.order):
                try:
                    return self._fetch(*self._request(index, cid), cid)
                except _Refused as why:
                    read.problems[self._bases()[index]] = str(why)
                    read.order.remove(index)
                    read.order.append(index)  # a source that failed is asked last from now on
            read.failed += 1
            if read.failed >= self.config.retries:
                detail = "; ".join(f"{url}: {why}" for url, why in read.problems.items())
                raise StoreUnavailable(
                    f"artifact block {cid} could not be fetched after {read.failed} tries ({detail})")
            time.sleep(min(2 ** (read.failed - 1), 8))

    def _fetch(self, method: str, url: str, cid: CID) -> bytes:
        late = f"no whole answer within {self.config.timeout:g} s"
        with _deadline(self.config.timeout) as watch:
            try:
                with self.session.request(method, url, headers=BLOCK_HEADERS, timeout=self.config.timeout,
                                          stream=True) as response:
                    body = _one_block(response)
            except requests.RequestException as exc:
                raise _Refused(late if watch.fired else f"unreachable ({type(exc).__name__})") from None
        if watch.fired:
            raise _Refused(late)  # what came before the cut may look like a whole (short) answer
        try:
            check_block(cid, body)
        except ZkflError as exc:
            log.warning("%s served altered bytes for %s", url, cid)
            raise _Refused(str(exc)) from None  # an altered block: try the other sources, never use it
        return body

    def _retry(self, call: Callable[[], requests.Response], what: str) -> requests.Response:
        last = ""
        for attempt in range(self.config.retries):
            try:
                response = call()
            except requests.RequestException as exc:
                last = f"unreachable ({type(exc).__name__})"
            else:
                if response.status_code in (200, 201, 202):
                    return response
                last = f"HTTP {response.status_code}: {self._redact(response.text[:200])}"
                if response.status_code in (400, 401, 403, 404):
                    break  # the request itself is wrong: trying again will not help
            if attempt + 1 < self.config.retries:
                time.sleep(min(2 ** attempt, 8))
        raise StoreUnavailable(f"{what} failed: {last}")

    def _redact(self, text: str) -> str:
        """A service's error text with our token masked: one that echoes the request must not put it in a log."""
        token = self.config.pinning_token
        return text.replace(token, "***") if token else text


# ------------------------------------------------------------------ reading, bounded

class _Refused(Exception):
    """A source did not serve a block (a reason for the error message); the read tries another."""


@dataclass
class _Read:
    """One artifact's read: the sources in the order to ask them, and the failed passes so far."""

    order: list[int]
    failed: int = 0
    problems: dict[str, str] = field(default_factory=dict)


def _canonical(cid: str) -> CID:
    """The CID as zkfl writes it (CIDv1 base32): another spelling of it is refused, not fetched."""
    cid_bytes(cid)
    root = CID.decode(cid)
    if str(root.set(base="base32")) != cid:
        raise ZkflError(f"{cid!r} is not written as zkfl writes CIDs ({root.set(base='base32')})")
    return root


def _one_block(response: requests.Response) -> bytes:
    if response.status_code != 200:
        raise _Refused(f"HTTP {response.status_code}")
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise _Refused("it sent a compressed body")  # never inflated: a small bomb could fill memory
    body = bytearray()
    for chunk in response.iter_content(1 << 16):
        body += chunk
        if len(body) > MAX_BLOCK_SIZE:
            raise _Refused(f"it sent more than a block ({MAX_BLOCK_SIZE} bytes)")
    return bytes(body)


def _json_object(text: str) -> dict[str, Any]:
    """A service's JSON answer, or {} when it is not a JSON object (never an exception)."""
    try:
        value = loads_bounded(text.encode(), "the answer")
    except ZkflError:
        return {}
    return value if isinstance(value, dict) else {}


def _json_lines(text: str) -> list[dict[str, Any]]:
    """The objects of a newline-delimited JSON answer (Kubo's add); other lines are ignored."""
    return [value for value in map(_json_object, text.split("\n")) if value]


# A request's timeout in requests/urllib3 bounds each socket read, not the answer: a source
# that sends a byte just before each timeout (of the TLS handshake, the headers or the
# body) never times out. A timer per request shuts its socket down at the deadline
# instead; the connections below hand it their socket as they open it (before any TLS
# handshake) and as they wait for an answer (a connection reused from the pool).

class _Watch(threading.local):
    def __init__(self) -> None:
        self.deadline: _Deadline | None = None


_WATCH = _Watch()


@dataclass
class _Deadline:
    """A request's deadline: handles on its sockets (duplicated descriptors, so the timer
    never touches a descriptor closed and reused meanwhile), and whether it has passed."""

    handles: list[socket.socket] = field(default_factory=list)
    fired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sock: socket.socket) -> None:
        with self.lock, contextlib.suppress(OSError):
            self.handles.append(socket.socket(fileno=os.dup(sock.fileno())))
            if self.fired:
                self.handles[-1].shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.lock:
            self.fired = True
            for handle in self.handles:
                with contextlib.suppress(OSError):
                    handle.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self.lock:
            for handle in self.handles:
                handle.close()


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[_Deadline]:
    watch = _WATCH.deadline = _Deadline()
    timer = threading.Timer(seconds, watch.cut)
    timer.daemon = True
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()
        _WATCH.deadline = None
        watch.close()


class _WatchedConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        if _WATCH.deadline is not None:
            _WATCH.deadline.add(sock)
        return sock

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        if _WATCH.deadline is not None and self.sock is not None:
            _WATCH.deadline.add(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter with connections a deadline can cut (not through a proxy: there
    only the per-read timeout and the size limit hold)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
