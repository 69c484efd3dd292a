"""UnixFS files as IPFS builds them: zkfl's CIDs equal `ipfs add --cid-version 1 --raw-leaves`.

A file of one chunk (262,144 bytes or less) is a single raw block, CID codec ``raw``.
A longer file is a balanced DAG: raw leaves of 262,144 bytes, and dag-pb nodes of at
most 174 links above them, the root's CID codec ``dag-pb``. Kubo and Helia build the
same tree, so an organisation can pin an artifact anywhere and a participant can fetch
it from any gateway, checking every block against the hash that names it.

Only what zkfl needs is here: building a file's blocks, and reading one back from
blocks fetched one by one (each checked before it is parsed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from multiformats import CID, multihash

from zkfl.errors import ZkflError

CHUNK_SIZE = 262_144  # Kubo's and Helia's default fixed-size chunker
MAX_LINKS = 174  # the balanced layout's children per node, in both implementations
RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
UNIXFS_FILE = 2
UNIXFS_RAW = 0
MAX_FILE_SIZE = 1 << 31  # no zkfl artifact comes near 2 GiB: a bigger claim is refused before fetching
MAX_DEPTH = 8


@dataclass(frozen=True)
class Block:
    cid: CID
    data: bytes


@dataclass(frozen=True)
class _Node:
    """A built subtree: its root block's CID, the file bytes under it, and its Tsize."""

    cid: CID
    file_size: int
    tree_size: int


def make_cid(codec: int, data: bytes) -> CID:
    return CID("base32", 1, codec, multihash.digest(data, "sha2-256"))


def cid_of_bytes(data: bytes) -> str:
    """The CID `ipfs add --cid-version 1 --raw-leaves` gives these bytes."""
    return str(build(data)[0].cid) if len(data) > CHUNK_SIZE else str(make_cid(RAW, data))


def build(data: bytes) -> list[Block]:
    """The file's blocks, root first (one raw block for a file of one chunk)."""
    if len(data) <= CHUNK_SIZE:
        return [Block(make_cid(RAW, data), data)]
    blocks: list[Block] = []
    level = []
    for start in range(0, len(data), CHUNK_SIZE):
        leaf = data[start:start + CHUNK_SIZE]
        cid = make_cid(RAW, leaf)
        blocks.append(Block(cid, leaf))
        level.append(_Node(cid, len(leaf), len(leaf)))
    while len(level) > 1:
        parents = []
        for start in range(0, len(level), MAX_LINKS):
            block, node = _parent(level[start:start + MAX_LINKS])
            blocks.append(block)
            parents.append(node)
        level = parents
    blocks.reverse()
    return blocks


def _parent(children: list[_Node]) -> tuple[Block, _Node]:
    unixfs = _field_varint(1, UNIXFS_FILE) + _field_varint(3, sum(c.file_size for c in children))
    unixfs += b"".join(_field_varint(4, c.file_size) for c in children)
    links = b"".join(_field_bytes(2, _link(c)) for c in children)
    encoded = links + _field_bytes(1, unixfs)  # dag-pb's canonical order: Links before Data
    cid = make_cid(DAG_PB, encoded)
    node = _Node(cid, sum(c.file_size for c in children), len(encoded) + sum(c.tree_size for c in children))
    return Block(cid, encoded), node


def _link(child: _Node) -> bytes:
    return _field_bytes(1, bytes(child.cid)) + _field_bytes(2, b"") + _field_varint(3, child.tree_size)


# ------------------------------------------------------------------ reading

def check_block(cid: CID, data: bytes) -> None:
    """Raise unless ``data`` is the block ``cid`` names (a gateway is never trusted)."""
    if hashlib.sha256(data).digest() != sha256_digest(cid):
        raise ZkflError(f"block {cid} does not match its CID (the bytes served for it were altered)")


def sha256_digest(cid: CID) -> bytes:
    hasher = multihash.from_digest(cid.digest)
    if hasher.code != SHA2_256:
        raise ZkflError(f"CID {cid} uses {hasher.name}; zkfl reads sha2-256 CIDs only")
    return bytes(multihash.unwrap(cid.digest))


def assemble(root: CID, fetch: Callable[[CID], bytes]) -> bytes:
    """The file under ``root``, from blocks ``fetch`` returns, each checked before use."""
    return b"".join(_walk(root, fetch, depth=0, budget=[MAX_FILE_SIZE]))


def _walk(cid: CID, fetch: Callable[[CID], bytes], depth: int, budget: list[int]) -> Iterator[bytes]:
    if depth > MAX_DEPTH:
        raise ZkflError(f"artifact DAG deeper than {MAX_DEPTH} levels at {cid}: not a zkfl artifact")
    data = fetch(cid)
    check_block(cid, data)
    if cid.codec.code == RAW:
        yield _spend(budget, data, cid)
        return
    if cid.codec.code != DAG_PB:
        raise ZkflError(f"CID {cid} has codec {cid.codec.name}; an artifact is raw or a dag-pb UnixFS file")
    links, payload = parse_file_node(cid, data)
    yield _spend(budget, payload, cid)
    for link in links:
        yield from _walk(link, fetch, depth + 1, budget)


def _spend(budget: list[int], data: bytes, cid: CID) -> bytes:
    budget[0] -= len(data)
    if budget[0] < 0:
        raise ZkflError(f"artifact {cid} is larger than {MAX_FILE_SIZE} bytes")
    return data


def parse_file_node(cid: CID, data: bytes) -> tuple[list[CID], bytes]:
    """A dag-pb UnixFS file node's child CIDs and the bytes it carries itself."""
    links: list[CID] = []
    unixfs: bytes | None = None
    for number, value in _fields(data, cid):
        if number == 2 and isinstance(value, bytes):
            links.append(_link_cid(value, cid))
        elif number == 1 and isinstance(value, bytes):
            unixfs = value
        else:
            raise ZkflError(f"block {cid} is not a dag-pb node")
    if unixfs is None:
        raise ZkflError(f"block {cid} has no UnixFS data: not a file")
    kind, payload = UNIXFS_RAW, b""
    for number, value in _fields(unixfs, cid):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, bytes):
            payload = value
    if kind not in (UNIXFS_FILE, UNIXFS_RAW):
        raise ZkflError(f"block {cid} is a UnixFS node of type {kind}, not a file")
    return links, payload


def _link_cid(encoded: bytes, parent: CID) -> CID:
    for number, value in _fields(encoded, parent):
        if number == 1 and isinstance(value, bytes):
            try:
                return CID.decode(value)
            except Exception as exc:  # multiformats raises several types for malformed bytes
                raise ZkflError(f"block {parent} links to a malformed CID") from exc
    raise ZkflError(f"block {parent} has a link without a hash")


# ------------------------------------------------------------------ protobuf, the little dag-pb needs

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _read_varint(data: bytes, offset: int, cid: CID) -> tuple[int, int]:
    value = shift = 0
    while offset < len(data) and shift < 64:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
    raise ZkflError(f"block {cid} is truncated or malformed")


def _fields(data: bytes, cid: CID) -> Iterator[tuple[int, int | bytes]]:
    offset = 0
    while offset < len(data):
        key, offset = _read_varint(data, offset, cid)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, offset = _read_varint(data, offset, cid)
            yield number, value
        elif wire == 2:
            length, offset = _read_varint(data, offset, cid)
            if offset + length > len(data):
                raise ZkflError(f"block {cid} is truncated or malformed")
            yield number, data[offset:offset + length]
            offset += length
        else:
            raise ZkflError(f"block {cid} is not a dag-pb node (wire type {wire})")
