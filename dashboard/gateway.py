"""A read-only IPFS gateway over this machine's content store, at the gateway path
convention (``/ipfs/{cid}``): how a participant downloads a task's client package from
the portal, and how its zkfl fetches it (``ZKFL_IPFS_GATEWAYS=<portal>``).

Whole files are served as their bytes, re-checked against the CID by the store on every
read. ``?format=raw`` (or ``Accept: application/vnd.ipld.raw``) serves single blocks as a
trustless gateway does: the root block of any file here, and the blocks under a root
that was asked for first, rebuilt with IPFS's own chunking, so their CIDs are IPFS's.
Only what the store already holds is served: the portal never fetches for a stranger.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from multiformats import CID

from zkfl.ipfs.unixfs import build, sha256_digest
from zkfl.store import ContentStore, cid_bytes, cid_from_bytes

RAW_BLOCK = "application/vnd.ipld.raw"
_FILES_KEPT = 4  # block maps of the files most recently read block by block


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


class Gateway:
    def __init__(self, store: ContentStore) -> None:
        self.store = store
        self._blocks: OrderedDict[str, dict[str, bytes]] = OrderedDict()  # root CID -> its blocks
        self._lock = threading.Lock()

    def file(self, cid: str) -> bytes:
        if not self.store.has(cid):
            raise NotHere(f"{cid} is not pinned on this portal")
        return self.store.get(cid)  # checked against the CID

    def block(self, cid: str) -> bytes:
        with self._lock:
            for blocks in self._blocks.values():
                if cid in blocks:
                    return blocks[cid]
        data = self.file(cid)
        blocks = {str(b.cid): b.data for b in build(data)}
        with self._lock:
            self._blocks[cid] = blocks
            while len(self._blocks) > _FILES_KEPT:
                self._blocks.popitem(last=False)
        return blocks[cid]
