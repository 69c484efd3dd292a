from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkfl.errors import MessageError, ZkflError
from zkfl.middleware.messages import MAX_MESSAGE_BYTES, UpdateSubmission, decode_submission
from zkfl.store import LocalStore, cid_bytes, cid_from_bytes, cid_of


def test_cid_matches_ipfs_raw_leaves() -> None:
    # `ipfs add --cid-version 1 --raw-leaves` of the 5 bytes "hello"
    assert cid_of(b"hello") == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    assert cid_from_bytes(cid_bytes(cid_of(b"x"))) == cid_of(b"x")


def test_store_detects_corruption(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    cid = store.put(b"model bytes")
    assert store.get(cid) == b"model bytes"
    (tmp_path / cid).write_bytes(b"tampered")
    with pytest.raises(ZkflError, match="corrupt"):
        store.get(cid)


def valid_submission() -> UpdateSubmission:
    return UpdateSubmission(
        task_id=1, round=0, wallet="0x" + "ab" * 20, chain_id=31337, federation="0x" + "cd" * 20, backend="ezkl",
        num_samples=16, update_scale=43, update=[1, -2, 3], update_commitment="0x" + "00" * 32,
        public_values=["0x" + "01" * 32] * 4, proof="0x" + "ee" * 100, signature="0x" + "11" * 65)


def mutated(**changes: object) -> bytes:
    data = asdict(valid_submission())
    data.update(changes)
    return json.dumps(data).encode()


def test_valid_submission_roundtrips() -> None:
    submission = valid_submission()
    assert decode_submission(submission.encode()) == submission


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (mutated(schema_version=2), "unsupported schema version"),
        (mutated(update=[1.5, 2]), "integers"),
        (mutated(update="nope"), "wrong type"),
        (mutated(update=[2**70]), "64 bits"),
        (mutated(update=[]), "update is empty"),
        (mutated(proof="0x"), "proof is empty"),
        (mutated(proof="0xabc"), "hex"),
        (mutated(signature="0x" + "11" * 10), "65 bytes"),
        (mutated(wallet="alice"), "not an address"),
        (mutated(public_values=["0x01"]), "32 bytes"),
        (b"[1, 2]", "not a JSON object"),
        (b"x" * (MAX_MESSAGE_BYTES + 1), "over the"),
    ],
)
def test_bad_messages_get_one_clear_reason(body: bytes, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode_submission(body)


def test_nan_in_update_is_refused() -> None:
    body = mutated().replace(b"[1, -2, 3]", b"[1, NaN, 3]")
    with pytest.raises(MessageError, match="NaN"):
        decode_submission(body)


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_decoder_never_crashes_on_random_bytes(body: bytes) -> None:
    with contextlib.suppress(MessageError):
        decode_submission(body)
