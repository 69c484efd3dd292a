"""The messages clients send, as versioned, typed records, validated at the edge.

A submission carries header fields (task, round, wallet, commitments, sample count,
backend, schema version, idempotency key) and the binary payloads (the update's
integers, the proof, the participant's EIP-712 signature). Decoding checks
everything a message can get wrong by itself and raises :class:`MessageError` with
one clear reason; the aggregator sends such messages to the dead-letter queue.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from zkfl.errors import MessageError, ZkflError
from zkfl.jsonsafe import loads_bounded

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
MAX_PROOF_BYTES = 256 * 1024
MAX_UPDATE_VALUES = 1_000_000
#: Updates with more values than this travel through the content store, by CID.
MAX_INLINE_UPDATE_VALUES = 100_000

_HEX = re.compile(r"^0x[0-9a-fA-F]*$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_CID = re.compile(r"^baf(krei|ybei)[a-z2-7]{52}$")  # raw (one chunk) or dag-pb (a chunked file), sha2-256


@dataclass(frozen=True)
class ClientMetrics:
    """What a client reports about its own step (not proven; shown as self-reported)."""

    loss: float | None = None
    accuracy: float | None = None
    prove_seconds: float | None = None


@dataclass(frozen=True)
class UpdateSubmission:
    task_id: int
    round: int
    wallet: str
    chain_id: int
    federation: str
    backend: str
    num_samples: int
    update_scale: int
    update: list[int]
    update_commitment: str  # 0x + 64 hex: H(update)
    public_values: list[str]  # 0x + 64 hex each, in the step's public layout
    proof: str  # 0x hex
    signature: str  # 0x hex, 65 bytes: the participant's EIP-712 signature
    metrics: ClientMetrics = field(default_factory=ClientMetrics)
    update_cid: str | None = None  # set (and `update` empty) when the update is in the content store
    schema_version: int = SCHEMA_VERSION

    @property
    def idempotency_key(self) -> str:
        """One effect per (chain, federation, task, round, wallet): the contract allows one."""
        return f"{self.chain_id}:{self.federation.lower()}:{self.task_id}:{self.round}:{self.wallet.lower()}"

    @property
    def proof_bytes(self) -> bytes:
        return bytes.fromhex(self.proof[2:])

    @property
    def signature_bytes(self) -> bytes:
        return bytes.fromhex(self.signature[2:])

    @property
    def public_value_ints(self) -> list[int]:
        return [int(v, 16) for v in self.public_values]

    @property
    def update_commitment_int(self) -> int:
        return int(self.update_commitment, 16)

    def encode(self, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
        body = json.dumps(asdict(self), separators=(",", ":")).encode()
        if len(body) > max_bytes:
            raise MessageError(
                f"submission is {len(body)} bytes, over the {max_bytes}-byte limit; "
                "publish large artifacts to the content store and send their CID"
            )
        return body


def _require(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in data:
        raise MessageError(f"missing field {name!r}")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise MessageError(f"field {name!r} has the wrong type")
    return value


def _hex(data: dict[str, Any], name: str, nbytes: int | None = None, max_bytes: int | None = None) -> str:
    value = _require(data, name, str)
    if not _HEX.match(value) or len(value) % 2:
        raise MessageError(f"field {name!r} is not 0x-prefixed hex")
    size = (len(value) - 2) // 2
    if nbytes is not None and size != nbytes:
        raise MessageError(f"field {name!r} must be {nbytes} bytes, got {size}")
    if max_bytes is not None and size > max_bytes:
        raise MessageError(f"field {name!r} is {size} bytes, over the {max_bytes}-byte limit")
    return value


def decode_submission(body: bytes) -> UpdateSubmission:
    """The submission in ``body``, or :class:`MessageError` naming the first thing wrong with it.
    The checks run in a fixed order, so a message with several faults always gets the same reason."""
    data = _message_object(body)
    wallet = _address(data, "wallet")
    federation = _address(data, "federation")
    update = _update_values(data)
    public_values = _public_values(data)
    metrics = _metrics(data)
    update_cid = _update_cid(data, update)
    submission = UpdateSubmission(
        task_id=_require(data, "task_id", int),
        round=_require(data, "round", int),
        wallet=wallet,
        chain_id=_require(data, "chain_id", int),
        federation=federation,
        backend=_require(data, "backend", str),
        num_samples=_require(data, "num_samples", int),
        update_scale=_require(data, "update_scale", int),
        update=update,
        update_commitment=_hex(data, "update_commitment", nbytes=32),
        public_values=public_values,
        proof=_hex(data, "proof", max_bytes=MAX_PROOF_BYTES),
        signature=_hex(data, "signature", nbytes=65),
        metrics=metrics,
        update_cid=update_cid,
    )
    _check_contract_ranges(submission)
    if not submission.proof_bytes:
        raise MessageError("proof is empty")
    return submission


def _message_object(body: bytes) -> dict[str, Any]:
    """The message's JSON object, bounded in size and of the schema version this code speaks."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageError(f"message is {len(body)} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        data = loads_bounded(body, "message")
    except ZkflError as exc:
        raise MessageError(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageError("message is not a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise MessageError(f"unsupported schema version {version!r} (this aggregator speaks {SCHEMA_VERSION})")
    return data


def _address(data: dict[str, Any], name: str) -> str:
    value: str = _require(data, name, str)
    if not _ADDRESS.match(value):
        raise MessageError(f"field {name!r} is not an address")
    return value


def _update_values(data: dict[str, Any]) -> list[int]:
    """The inline update: at most MAX_UPDATE_VALUES integers, each fitting the int64 the circuits use."""
    update: list[int] = _require(data, "update", list)
    if len(update) > MAX_UPDATE_VALUES:
        raise MessageError(f"update has {len(update)} values, over the limit of {MAX_UPDATE_VALUES}")
    for value in update:
        if isinstance(value, float) and not math.isfinite(value):
            raise MessageError("update contains NaN or infinite values")
        if isinstance(value, bool) or not isinstance(value, int):
            raise MessageError("update values must be integers (fixed point)")
        if not -(2**63) <= value < 2**63:
            raise MessageError("update values must fit in 64 bits")
    return update


def _public_values(data: dict[str, Any]) -> list[str]:
    public_values: list[str] = _require(data, "public_values", list)
    for index, value in enumerate(public_values):
        name = f"public_values[{index}]"
        _hex({name: value}, name, nbytes=32)
    return public_values


def _metrics(data: dict[str, Any]) -> ClientMetrics:
    """The client's self-reported metrics; a value that is not a finite number is dropped, not refused."""
    metrics_raw = data.get("metrics") or {}
    if not isinstance(metrics_raw, dict):
        raise MessageError("field 'metrics' is not an object")
    return ClientMetrics(**{k: _finite_or_none(metrics_raw.get(k)) for k in ("loss", "accuracy", "prove_seconds")})


def _update_cid(data: dict[str, Any], update: list[int]) -> str | None:
    """The update's CID when it travels through the content store; exactly one of it and the
    inline update is given."""
    update_cid = data.get("update_cid")
    if update_cid is not None and (not isinstance(update_cid, str) or not _CID.match(update_cid)):
        raise MessageError("field 'update_cid' is not a CIDv1 (base32, raw or dag-pb, sha2-256)")
    if update_cid is not None and update:
        raise MessageError("a submission carries its update inline or by CID, not both")
    if update_cid is None and not update:
        raise MessageError("update is empty (and no update_cid is given)")
    return update_cid


def _check_contract_ranges(submission: UpdateSubmission) -> None:
    # Within the contract's types (uint256 task, uint32 counts): a value past them would reach web3's
    # ABI encoder and crash the consumer on every redelivery.
    if not (1 <= submission.task_id < 2**256 and 0 <= submission.round < 2**32 and 1 <= submission.num_samples < 2**32):
        raise MessageError("task_id, round or num_samples out of range")


def _finite_or_none(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
