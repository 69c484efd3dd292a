"""Artifacts on IPFS: added to this role's node, read from any node or gateway.

Writes go to a Kubo-RPC-compatible node (``/api/v0/add``, the same options as
`ipfs add --cid-version 1 --raw-leaves`), and to a remote pinning service when one is
configured (the IPFS Pinning Service API). Reads fetch one block at a time, from the
node (``/api/v0/block/get``) or any trustless gateway (``/ipfs/{cid}?format=raw``), and
check each block against its hash before parsing it, so a gateway is never trusted.
Checked artifacts are cached in the role's own folder.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import requests
from multiformats import CID

from zkfl.errors import ZkflError
from zkfl.ipfs.config import IpfsConfig
from zkfl.ipfs.unixfs import CHUNK_SIZE, assemble, check_block
from zkfl.store import ContentStore, LocalStore, cid_of

log = logging.getLogger(__name__)
RAW_BLOCK = "application/vnd.ipld.raw"


class IpfsStore(ContentStore):
    def __init__(self, config: IpfsConfig, cache: LocalStore) -> None:
        if not config.configured:
            raise ZkflError("an IPFS store needs a node (ZKFL_IPFS_API) or a gateway (ZKFL_IPFS_GATEWAYS)")
        self.config = config
        self.cache = cache
        self.session = requests.Session()

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
        lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
        added = next((line["Hash"] for line in reversed(lines) if "Hash" in line), None)
        if added != cid:
            raise ZkflError(f"the IPFS node at {self.config.api} named an artifact {added}, zkfl names it {cid}: "
                            "the node does not add with --cid-version 1 --raw-leaves and 256 KiB chunks")

    def pin_remote(self, cid: str, name: str | None = None) -> None:
        """Ask the pinning service to keep ``cid`` (it fetches it from the network)."""
        url = f"{self.config.pinning_url}/pins"
        headers = {"Authorization": f"Bearer {self.config.pinning_token}"}
        response = self._retry(lambda: self.session.post(
            url, json={"cid": cid, "name": name or cid}, headers=headers, timeout=self.config.timeout),
            f"pinning {cid} at {self.config.pinning_url}")
        status = response.json().get("status")
        if status not in ("queued", "pinning", "pinned"):
            raise ZkflError(f"the pinning service at {self.config.pinning_url} answered status {status!r} for {cid}")

    # -------------------------------------------------------------- reads

    def has(self, cid: str) -> bool:
        return self.cache.has(cid)

    def get(self, cid: str) -> bytes:
        if self.cache.has(cid):
            return self.cache.get(cid)
        try:
            root = CID.decode(cid)
        except Exception as exc:  # multiformats raises several types for malformed text
            raise ZkflError(f"not a CID: {cid!r}") from exc
        data = assemble(root, self._block)
        self.cache.keep(cid, data)
        return data

    def path_of(self, cid: str) -> Path:
        self.get(cid)
        return self.cache.path_of(cid)

    def _sources(self, cid: CID) -> list[tuple[str, str]]:
        sources = []
        if self.config.api is not None:
            sources.append(("POST", f"{self.config.api}/api/v0/block/get?arg={cid}"))
        sources += [("GET", f"{gateway}/ipfs/{cid}?format=raw") for gateway in self.config.gateways]
        return sources

    def _block(self, cid: CID) -> bytes:
        """One block, from the first source that serves bytes matching its hash."""
        problems: dict[str, str] = {}
        for attempt in range(self.config.retries):
            for method, url in self._sources(cid):
                try:
                    response = self.session.request(method, url, headers={"Accept": RAW_BLOCK},
                                                    timeout=self.config.timeout)
                except requests.RequestException as exc:
                    problems[url] = f"unreachable ({type(exc).__name__})"
                    continue
                if response.status_code != 200:
                    problems[url] = f"HTTP {response.status_code}"
                    continue
                try:
                    check_block(cid, response.content)
                except ZkflError as exc:
                    problems[url] = str(exc)  # an altered block: try the other sources, never use it
                    log.warning("%s served altered bytes for %s", url, cid)
                    continue
                return response.content
            if attempt + 1 < self.config.retries:
                time.sleep(min(2 ** attempt, 8))
        detail = "; ".join(f"{url}: {why}" for url, why in problems.items())
        raise ZkflError(f"artifact block {cid} could not be fetched after {self.config.retries} tries ({detail})")

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
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code in (400, 401, 403, 404):
                    break  # the request itself is wrong: trying again will not help
            if attempt + 1 < self.config.retries:
                time.sleep(min(2 ** attempt, 8))
        raise ZkflError(f"{what} failed: {last}")
