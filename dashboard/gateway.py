"""A read-only IPFS gateway over this machine's content store, at the gateway path
convention (``/ipfs/{cid}``): how a participant downloads a task's client package from
the portal, and how its zkfl fetches it (``ZKFL_IPFS_GATEWAYS=<portal>``).

It serves what the store holds: this machine's own artifacts, and the packages of the tasks
the portal lists (each at most ``MAX_PACKAGE_BYTES``, fetched in the background). Whole files
stream from disk, hashed against their CID the first time and again whenever the file
changes. ``?format=raw`` serves single blocks as a trustless gateway does: a file's blocks
are indexed once (IPFS's own chunking, so their CIDs are IPFS's), leaves as offsets into
the file, and every block served is checked against its CID as it is read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from multiformats import CID

from zkfl.errors import ZkflError
from zkfl.ipfs.unixfs import CHUNK_SIZE, DAG_PB, RAW, build, check_block, make_cid, sha256_digest
from zkfl.store import ContentStore, cid_bytes, cid_from_bytes

RAW_BLOCK = "application/vnd.ipld.raw"
MAX_SERVED_FILE = 1 << 30  # larger than any artifact zkfl writes (an SRS of logrows 20 is about 64 MiB)
_INDEXES_KEPT = 64  # block indexes of the files most recently read block by block
_ROOTS_KEPT = 1 << 20  # block -> root entries (about 100 MB at most): an evicted index is rebuilt on demand


class NotHere(LookupError):
    """The store does not hold this CID (or block)."""


def canonical_cid(text: str) -> str:
    """The CID as zkfl writes it (base32 CIDv1), or ValueError naming what is wrong."""
    try:
        cid = cid_from_bytes(cid_bytes(text))
        sha256_digest(CID.decode(cid))
    except Exception as exc:  # whatever the multiformats library makes of arbitrary text
        raise ValueError(f"{text[:80]!r} is not a CIDv1 (raw or dag-pb, sha2-256): {exc}") from None
    return cid


@dataclass(frozen=True)
class _Leaf:
    path: Path
    offset: int
    length: int


@dataclass(frozen=True)
class _Stamp:
    """What identifies a file's content on disk without reading it: checked once per stamp."""

    size: int
    mtime_ns: int
    ctime_ns: int  # set by the kernel on any write or utime: no one can restore it
    inode: int

    @classmethod
    def of(cls, path: Path) -> _Stamp:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class Gateway:
    def __init__(self, store: ContentStore) -> None:
        self.store = store
        self._checked: dict[str, _Stamp] = {}  # CID -> the file's stamp when its hash was last checked
        self._blocks: OrderedDict[str, dict[str, bytes | _Leaf]] = OrderedDict()  # root -> its blocks
        self._roots: OrderedDict[str, str] = OrderedDict()  # block -> its root, to re-index after eviction
        self._lock = threading.Lock()
        self._building = threading.Lock()  # one index built at a time: at most one file in memory

    def file(self, cid: str) -> Path:
        """The file holding ``cid``'s bytes, hashed against the CID unless unchanged since it was."""
        path = self.store.local_path(cid)
        if path is None:
            raise NotHere(f"{cid} is not held by this portal")
        stamp = _Stamp.of(path)
        if stamp.size > MAX_SERVED_FILE:
            raise NotHere(f"{cid} is larger than this portal serves")
        if self._checked.get(cid) != stamp:
            path = self.store.path_of(cid)  # reads and checks the bytes (a corrupt file is removed)
            self._checked[cid] = _Stamp.of(path)
        return path

    def block(self, cid: str) -> bytes:
        entry = self._entry(cid)
        try:
            data = entry if isinstance(entry, bytes) else _read(entry)
            check_block(CID.decode(cid), data)
        except (ZkflError, OSError):  # the file changed or went since it was indexed: forget the index
            with self._lock:
                self._blocks.clear()
            raise NotHere(f"{cid} is no longer held as indexed") from None
        return data

    def _entry(self, cid: str) -> bytes | _Leaf:
        with self._lock:
            entry = next((blocks[cid] for blocks in self._blocks.values() if cid in blocks), None)
            root = self._roots.get(cid, cid)  # a block under a root indexed before, or a root itself
        if entry is not None:
            return entry
        blocks = self._index(root)
        if cid not in blocks:
            raise NotHere(f"{cid} is not a block of a file held here")
        return blocks[cid]

    def _index(self, root: str) -> dict[str, bytes | _Leaf]:
        with self._building:
            with self._lock:
                if root in self._blocks:  # built by a request that waited before this one
                    return self._blocks[root]
            path = self.file(root)
            data = path.read_bytes()
            blocks: dict[str, bytes | _Leaf] = {
                str(b.cid): b.data for b in build(data) if b.cid.codec.code == DAG_PB}
            for offset in range(0, max(len(data), 1), CHUNK_SIZE):
                chunk = data[offset : offset + CHUNK_SIZE]
                blocks[str(make_cid(RAW, chunk))] = _Leaf(path, offset, len(chunk))
        with self._lock:
            self._blocks[root] = blocks
            while len(self._blocks) > _INDEXES_KEPT:
                self._blocks.popitem(last=False)
            for block in blocks:
                self._roots[block] = root
            while len(self._roots) > _ROOTS_KEPT:
                self._roots.popitem(last=False)
        return blocks


def _read(leaf: _Leaf) -> bytes:
    with open(leaf.path, "rb") as handle:
        handle.seek(leaf.offset)
        return handle.read(leaf.length)

