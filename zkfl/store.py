"""A local content store addressed by IPFS-compatible CIDv1 (raw codec, sha2-256).

Artifacts (models, updates, task packages, compiled circuits, SRS) are stored under
their CID, so anyone holding the bytes can check them against the digest recorded on
chain. The CID of a file up to 1 MiB equals what an IPFS node (raw leaves) gives, so
an IPFS node can serve the same artifacts; none is required.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from multiformats import CID, multihash

from zkfl.errors import ZkflError
from zkfl.paths import zkfl_home


def cid_of(data: bytes) -> str:
    return str(CID("base32", 1, "raw", multihash.digest(data, "sha2-256")))


def digest_of_cid(cid: str) -> bytes:
    """The 32-byte sha2-256 digest a CID carries (what the chain stores)."""
    parsed = CID.decode(cid)
    codec = multihash.from_digest(parsed.digest)
    digest = multihash.unwrap(parsed.digest)
    if codec.name != "sha2-256" or len(digest) != 32:
        raise ZkflError(f"CID {cid} is not a sha2-256 CID")
    return bytes(digest)


def cid_from_digest(digest: bytes) -> str:
    return str(CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256")))


def canonical_json(obj: Any) -> bytes:
    """One byte string per value, so equal artifacts get equal CIDs."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class ContentStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else zkfl_home() / "store"
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, cid: str) -> Path:
        return self.root / cid

    def put(self, data: bytes) -> str:
        cid = cid_of(data)
        path = self._path(cid)
        if not path.exists():
            # Write then rename, so a reader never sees a half-written artifact.
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        return cid

    def put_json(self, obj: Any) -> str:
        return self.put(canonical_json(obj))

    def put_file(self, path: Path) -> str:
        return self.put(Path(path).read_bytes())

    def has(self, cid: str) -> bool:
        return self._path(cid).exists()

    def get(self, cid: str) -> bytes:
        path = self._path(cid)
        if not path.exists():
            raise ZkflError(f"artifact {cid} is not in the content store at {self.root}")
        data = path.read_bytes()
        if cid_of(data) != cid:
            raise ZkflError(f"artifact {cid} in {self.root} is corrupt (its hash does not match)")
        return data

    def get_json(self, cid: str) -> Any:
        return json.loads(self.get(cid))

    def path_of(self, cid: str) -> Path:
        """A path to the verified artifact, for tools that read files (ezkl)."""
        self.get(cid)
        return self._path(cid)
