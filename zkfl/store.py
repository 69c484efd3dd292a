"""Content stores: artifacts addressed by the CID IPFS gives them.

Artifacts (models, updates, task packages, compiled circuits, SRS) are named by the
CID `ipfs add --cid-version 1 --raw-leaves` gives their bytes (`zkfl.ipfs.unixfs`), so
anyone holding the bytes can check them against the CID recorded on chain, and any IPFS
node, gateway or pinning service can hold them. Every read is checked against its CID.

``ContentStore`` is the one interface; ``LocalStore`` keeps artifacts in a folder (the
one-machine default) and ``zkfl.ipfs.store.IpfsStore`` puts them on an IPFS node and
reads them from any node or gateway. ``open_store`` picks one from the environment.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from multiformats import CID

from zkfl.errors import ZkflError
from zkfl.ipfs.unixfs import DAG_PB, MAX_FILE_SIZE, RAW, SHA2_256, cid_of_bytes
from zkfl.jsonsafe import loads_bounded
from zkfl.paths import write_atomically, zkfl_home


def cid_of(data: bytes) -> str:
    return cid_of_bytes(data)


#: Longer than any spelling of a 36-byte CID (base16 takes 73 characters): refused before decoding,
#: whose cost grows with the square of the length in some bases.
MAX_CID_TEXT = 100


def cid_bytes(cid: str) -> bytes:
    """The binary CID the chain records (36 bytes: version, codec, sha2-256 multihash)."""
    if len(cid) > MAX_CID_TEXT:
        raise ZkflError(f"not a CID: {len(cid)} characters, over the {MAX_CID_TEXT} any CID zkfl reads takes")
    try:
        parsed = CID.decode(cid)
    except Exception as exc:  # multiformats raises several types for malformed text
        raise ZkflError(f"not a CID: {cid!r}") from exc
    if parsed.version != 1 or parsed.codec.code not in (RAW, DAG_PB) or parsed.hashfun.code != SHA2_256:
        raise ZkflError(f"CID {cid} is not a CIDv1 (raw or dag-pb, sha2-256) as `ipfs add --raw-leaves` gives")
    encoded = bytes(parsed)
    if len(encoded) != 36:
        raise ZkflError(f"CID {cid} does not carry a 32-byte sha2-256 digest")
    return encoded


def cid_from_bytes(encoded: bytes) -> str:
    """The CID the chain recorded, as text; raises on anything but a zkfl artifact CID."""
    try:
        text = str(CID.decode(bytes(encoded)).set(base="base32"))
    except Exception as exc:
        raise ZkflError(f"the chain records no valid CID here ({bytes(encoded).hex() or 'empty'})") from exc
    cid_bytes(text)
    return text


def canonical_json(obj: Any) -> bytes:
    """One byte string per value, so equal artifacts get equal CIDs."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


#: Largest JSON artifact (package, model, manifest) read: the biggest model zkfl proves is a few MB of JSON.
MAX_JSON_BYTES = 64 << 20


class ContentStore(ABC):
    """Where artifacts live: put bytes, get them back by CID, checked."""

    @abstractmethod
    def put(self, data: bytes) -> str:
        """Store the bytes and return their CID."""

    @abstractmethod
    def get(self, cid: str, max_size: int = MAX_FILE_SIZE) -> bytes:
        """The bytes named by ``cid``; raises ZkflError if they cannot be found, do not match, or
        are more than ``max_size`` bytes (checked before they are fetched where the store can)."""

    @abstractmethod
    def has(self, cid: str) -> bool:
        """Whether the bytes are at hand without a network fetch."""

    @abstractmethod
    def path_of(self, cid: str) -> Path:
        """A local file holding the checked artifact, for tools that read files (ezkl)."""

    @abstractmethod
    def local_path(self, cid: str) -> Path | None:
        """Where this machine holds the bytes, unchecked (None if it does not): for a reader that
        checks them itself, or remembers having checked that file (the portal's gateway)."""

    def put_json(self, obj: Any) -> str:
        return self.put(canonical_json(obj))

    def put_file(self, path: Path) -> str:
        return self.put(Path(path).read_bytes())

    def get_json(self, cid: str, max_size: int = MAX_JSON_BYTES) -> Any:
        return loads_bounded(self.get(cid, max_size), f"artifact {cid}")


class LocalStore(ContentStore):
    """Artifacts in a folder, one file per CID: the one-machine default, and every
    networked store's cache."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else zkfl_home() / "store"
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, cid: str) -> Path:
        # Never a path from an arbitrary string: only a CID as zkfl writes it (base32, no '/')
        if cid_from_bytes(cid_bytes(cid)) != cid:
            raise ZkflError(f"{cid!r} is not written as zkfl writes CIDs (base32 CIDv1)")
        return self.root / cid

    def put(self, data: bytes) -> str:
        cid = cid_of(data)
        self._write(cid, data)
        return cid

    def _write(self, cid: str, data: bytes) -> None:
        path = self._path(cid)
        if path.exists():
            return
        write_atomically(path, data)

    def keep(self, cid: str, data: bytes) -> None:
        """Cache bytes fetched elsewhere, once they match the CID."""
        if cid_of(data) != cid:
            raise ZkflError(f"artifact {cid}: the bytes fetched for it do not match the CID")
        self._write(cid, data)

    def has(self, cid: str) -> bool:
        return self._path(cid).exists()

    def get(self, cid: str, max_size: int = MAX_FILE_SIZE) -> bytes:
        path = self._path(cid)
        if not path.exists():
            raise ZkflError(f"artifact {cid} is not in the content store at {self.root}")
        if path.stat().st_size > max_size:
            raise ZkflError(f"artifact {cid} is over the {max_size}-byte limit for what was asked")
        data = path.read_bytes()
        if cid_of(data) != cid:
            path.unlink(missing_ok=True)  # so the next read fetches it again instead of failing forever
            raise ZkflError(f"artifact {cid} in {self.root} was corrupt (its hash did not match): removed")
        return data

    def path_of(self, cid: str) -> Path:
        self.get(cid)
        return self._path(cid)

    def local_path(self, cid: str) -> Path | None:
        path = self._path(cid)
        return path if path.exists() else None


def open_store() -> ContentStore:
    """The store this process's configuration names (``zkfl.ipfs.config``): an IPFS node
    or gateways when ``ZKFL_IPFS_API`` or ``ZKFL_IPFS_GATEWAYS`` is set, else the local folder."""
    from zkfl.ipfs.config import IpfsConfig

    config = IpfsConfig.from_env()
    if not config.configured:
        return LocalStore()
    from zkfl.ipfs.store import IpfsStore

    return IpfsStore(config, cache=LocalStore())
