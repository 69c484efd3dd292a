"""UnixFS files as IPFS builds them: zkfl's CIDs equal `ipfs add --cid-version 1 --raw-leaves`.

A file of one chunk (262,144 bytes or less) is a single raw block, CID codec ``raw``.
A longer file is a balanced DAG: raw leaves of 262,144 bytes, and dag-pb nodes of at
most 174 links above them, the root's CID codec ``dag-pb``. Kubo and Helia build the
same tree, so an organisation can pin an artifact anywhere and a participant can fetch
it from any gateway, checking every block against the hash that names it.

Only what zkfl needs is here: building a file's blocks, and reading one back from
blocks fetched one by one (each checked before it is parsed, and read only in the shape
`build` gives a file of the size the root claims).
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
MAX_FILE_SIZE = 1 << 31  # no zkfl artifact comes near 2 GiB: a bigger claim is refused before fetching
MAX_BLOCK_SIZE = CHUNK_SIZE  # a raw leaf; a dag-pb node of 174 links is under 10 KB


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
#
# Only the DAG `build` makes is read. Its shape follows from the file size its root
# claims (full subtrees left to right, one short leaf at the end), so every node is
# checked against that shape before anything under it is fetched: a DAG that claims one
# size and holds another (a node that links one child a million times, empty leaves, a
# size over the limit, inline data beside links) is refused at the first node that
# differs. A read therefore fetches at most the blocks of the size claimed, each at most
# MAX_BLOCK_SIZE bytes, and returns exactly that many bytes. The caller still compares
# the bytes with the CID (`LocalStore.keep`), which rules out any DAG but `build`'s.

_ZKFL_CID_PREFIXES = (bytes([1, RAW, SHA2_256, 32]), bytes([1, DAG_PB, SHA2_256, 32]))


@dataclass(frozen=True)
class FileNode:
    """A dag-pb UnixFS file node as `build` writes it: its children and the file bytes under each."""

    links: list[CID]
    sizes: list[int]
    file_size: int


def check_block(cid: CID, data: bytes) -> None:
    """Raise unless ``data`` is the block ``cid`` names (a gateway is never trusted)."""
    if hashlib.sha256(data).digest() != sha256_digest(cid):
        raise ZkflError(f"block {cid} does not match its CID (the bytes served for it were altered)")


def sha256_digest(cid: CID) -> bytes:
    """The digest of a CID zkfl reads (CIDv1, raw or dag-pb, sha2-256); anything else is refused
    before it is fetched, whatever the multiformats library would make of it."""
    encoded = bytes(cid)
    if len(encoded) != 36 or encoded[:4] not in _ZKFL_CID_PREFIXES:
        raise ZkflError(f"CID {cid} is not a CIDv1 (raw or dag-pb, sha2-256) as `ipfs add --raw-leaves` gives")
    return encoded[4:]


def assemble(root: CID, fetch: Callable[[CID], bytes], max_size: int = MAX_FILE_SIZE) -> bytes:
    """The file under ``root``, from blocks ``fetch`` returns, each checked before use."""
    data = _fetched(root, fetch)
    if root.codec.code == RAW:
        return _leaf(root, data, len(data))
    node = parse_file_node(root, data)
    if node.file_size > max_size:
        raise ZkflError(f"artifact {root} claims {node.file_size} bytes, over the {max_size}-byte limit")
    parts: list[bytes] = []
    _descend(root, node, node.file_size, _height(node.file_size), fetch, parts)
    return b"".join(parts)


def _descend(cid: CID, node: FileNode, size: int, height: int, fetch: Callable[[CID], bytes],
             parts: list[bytes]) -> None:
    if height == 0 or node.file_size != size or node.sizes != _split(size, height):
        raise ZkflError(f"block {cid} is not the node `ipfs add` makes for {size} bytes: not a zkfl artifact")
    for link, child_size in zip(node.links, node.sizes, strict=True):
        data = _fetched(link, fetch)
        if height == 1:
            parts.append(_leaf(link, data, child_size))
        else:
            _descend(link, parse_file_node(link, data), child_size, height - 1, fetch, parts)


def _fetched(cid: CID, fetch: Callable[[CID], bytes]) -> bytes:
    sha256_digest(cid)  # refuse a foreign CID before asking anyone for it
    data = fetch(cid)
    check_block(cid, data)
    return data


def _leaf(cid: CID, data: bytes, size: int) -> bytes:
    if cid.codec.code != RAW or len(data) != size or size > CHUNK_SIZE:
        raise ZkflError(f"block {cid} is not the {size}-byte raw leaf its parent names: not a zkfl artifact")
    return data


def _height(size: int) -> int:
    """Levels of dag-pb nodes `build` puts above the leaves of a ``size``-byte file (0: one raw block)."""
    nodes, height = -(-size // CHUNK_SIZE), 0
    while nodes > 1:
        nodes, height = -(-nodes // MAX_LINKS), height + 1
    return height


def _split(size: int, height: int) -> list[int]:
    """The file bytes under each child of a node ``height`` levels above the leaves: full
    subtrees, then what is left."""
    full = CHUNK_SIZE * MAX_LINKS ** (height - 1)
    return [full] * (size // full) + ([size % full] if size % full else [])


def parse_file_node(cid: CID, data: bytes) -> FileNode:
    """A dag-pb UnixFS file node, in exactly the layout `build` writes (links, then Data
    holding type File, filesize and one blocksize per link); any other layout is refused."""
    if cid.codec.code != DAG_PB:
        raise ZkflError(f"block {cid} is not a dag-pb node")
    fields = list(_fields(data, cid))
    links = [value for number, value in fields[:-1] if number == 2 and isinstance(value, bytes)]
    unixfs = fields[-1][1] if fields and fields[-1][0] == 1 else None
    if not isinstance(unixfs, bytes) or len(links) != len(fields) - 1:
        raise ZkflError(f"block {cid} is not a dag-pb node as `ipfs add` writes it (links, then data)")
    file_size, sizes = _file_data(cid, unixfs)
    if not 0 < len(links) <= MAX_LINKS or len(sizes) != len(links) or sum(sizes) != file_size:
        raise ZkflError(f"block {cid} has {len(links)} links for {len(sizes)} sizes: not a zkfl artifact")
    return FileNode([_link_cid(link, cid) for link in links], sizes, file_size)


def _file_data(cid: CID, unixfs: bytes) -> tuple[int, list[int]]:
    """filesize and blocksizes from UnixFS Data written as `build` writes it: Type File,
    filesize, blocksizes; no inline data, no other field, nothing packed."""
    fields = list(_fields(unixfs, cid))
    numbers = [number for number, _ in fields]
    values = [value for _, value in fields if isinstance(value, int)]
    if len(values) != len(fields) or numbers[:2] != [1, 3] or values[0] != UNIXFS_FILE \
            or any(number != 4 for number in numbers[2:]):
        raise ZkflError(f"block {cid} is not a UnixFS file node as `ipfs add` writes it")
    return values[1], values[2:]


def _link_cid(encoded: bytes, parent: CID) -> CID:
    for number, value in _fields(encoded, parent):
        if number == 1 and isinstance(value, bytes):
            try:
                return CID.decode(value).set(base="base32")  # named as zkfl names CIDs, in every message
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
