from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiformats import CID

from zkfl.aggregator.records import RoundRecord, load_rounds, save_rounds
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


def test_hostile_json_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """Nesting deep enough to overflow the C parser's stack (a SIGSEGV no except clause
    catches), in a broker message or an artifact."""
    with pytest.raises(MessageError, match="nested"):
        decode_submission(b"[" * 100_000)
    store = LocalStore(tmp_path)
    with pytest.raises(ZkflError, match="nested"):
        store.get_json(store.put(b"[" * 100_000))


def test_a_package_names_its_artifacts_by_cid_only(tmp_path: Path) -> None:
    """A package's artifact names become cache folders: a path there is refused."""
    from zkfl.artifacts import ModelArtifact, TaskPackage
    from zkfl.circuits.registry import default_spec

    store = LocalStore(tmp_path)
    good = {"compiled": cid_of(b"circuit")}
    package = TaskPackage(default_spec("logreg", 30), "breast_cancer", "ezkl", 43, good)
    assert TaskPackage.get(store, package.put(store)).artifacts == good
    for bad in ("/tmp/zkatk/victim", "../../x", "QmaeEJUmV9PLjnxea9dEYQdVJVrKb9PZwj2YZWTv8cknjk", 7):
        data = {**package.to_json(), "artifacts": {"compiled": bad}}
        with pytest.raises(ZkflError, match="malformed task package"):
            TaskPackage.get(store, store.put_json(data))
    huge = {"schema": ModelArtifact("h", 12, []).to_json()["schema"], "spec_hash": "h", "scale": 12}
    with pytest.raises(ZkflError, match="malformed model artifact"):
        ModelArtifact.get(store, store.put(json.dumps({**huge, "values": [1]}).replace("[1]", "[1e400]").encode()))


def test_a_local_store_takes_cids_in_zkfl_spelling_only(tmp_path: Path) -> None:
    """The same CID in base64 may hold '/': a store file name is only ever base32."""
    store = LocalStore(tmp_path)
    cid = store.put(b"x")
    other_spelling = str(CID.decode(cid).set(base="base64"))
    with pytest.raises(ZkflError, match="not written as zkfl writes CIDs"):
        store.get(other_spelling)


def test_a_corrupt_cache_entry_is_removed_so_the_next_read_can_refetch(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    cid = store.put(b"model bytes")
    (tmp_path / cid).write_bytes(b"tampered")
    with pytest.raises(ZkflError, match="corrupt"):
        store.get(cid)
    assert not store.has(cid)
    assert store.put(b"model bytes") == cid and store.get(cid) == b"model bytes"


def test_an_update_over_one_chunk_travels_by_its_dag_pb_cid() -> None:
    big = cid_of(b"\x01" * 800_008)  # a 100,001-value update as int64: chunked, bafybei...
    data = {**asdict(valid_submission()), "update": [], "update_cid": big}
    assert decode_submission(json.dumps(data).encode()).update_cid == big


def test_a_bundle_sends_the_proof_its_tools_check(tmp_path: Path) -> None:
    """``client submit`` sends public.json's proof; ezkl's own tools read proof.json's hex_proof.
    A bundle in which the two differ (or with no proof at all) is refused when loaded."""
    from zkfl.middleware.bundle import UpdateBundle

    proof = bytes(range(1, 65))
    bundle = UpdateBundle(task_id=1, round=0, num_samples=16, update_scale=24, update=[1, -2], public_values=[3, 4],
                          proof_bytes=proof, proof={"hex_proof": "0x" + proof.hex()})
    folder = bundle.save(tmp_path / "bundle")
    assert UpdateBundle.load(folder).proof_bytes == proof
    public = json.loads((folder / "public.json").read_text())
    (folder / "public.json").write_text(json.dumps({**public, "proof": "0x" + bytes(64).hex()}))
    with pytest.raises(ZkflError, match="hex_proof differs"):
        UpdateBundle.load(folder)
    (folder / "public.json").write_text(json.dumps({k: v for k, v in public.items() if k != "proof"}))
    assert UpdateBundle.load(folder).proof_bytes == proof  # a bundle from before public.json held the proof
    (folder / "proof.json").write_text(json.dumps({"proof": {"a": []}}))  # ZoKrates' document: no bytes in it
    with pytest.raises(ZkflError, match="no proof"):
        UpdateBundle.load(folder)


def test_concurrent_writers_of_one_file_never_rename_each_others_temporary_file(tmp_path: Path) -> None:
    # Competing aggregator workers in one process save the same task's metrics file: with one
    # shared temporary name, one writer's rename took the other's file away (FileNotFoundError).
    target = tmp_path / "metrics.json"
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for attempt in range(200):
                save_rounds(target, [RoundRecord(round=worker * 1000 + attempt, start_commitment="0x00")])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert len(load_rounds(target)) == 1  # the file is always one whole writer's rounds
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left behind


def test_a_read_names_its_size_limit_before_reading(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    cid = store.put(b"[" + b"1," * 1000 + b"1]")
    assert len(store.get_json(cid)) == 1001
    with pytest.raises(ZkflError, match="over the 100-byte limit"):
        store.get(cid, max_size=100)
    with pytest.raises(ZkflError, match="over the 100-byte limit"):
        store.get_json(cid, max_size=100)
