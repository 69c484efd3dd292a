"""Typed artifacts kept in the content store: task packages and model tensors."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from zkfl.circuits.spec import ModelSpec
from zkfl.errors import ZkflError
from zkfl.field.quantize import IntArray
from zkfl.store import ContentStore, cid_bytes, cid_from_bytes

log = logging.getLogger(__name__)

PACKAGE_SCHEMA = "zkfl.task-package/1"
MANIFEST_SCHEMA = "zkfl.aggregation/1"
MODEL_SCHEMA = "zkfl.model/1"


@contextmanager
def _well_formed(kind: str, data: Any, schema: str) -> Iterator[None]:
    """Anything fetched by CID may be malformed on purpose: every parse error is one ZkflError
    naming the artifact, never a crash of whoever reads it (aggregator, client, auditor)."""
    if not isinstance(data, dict) or data.get("schema") != schema:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ZkflError(f"not a zkfl {kind} (schema {found!r})")
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, ZkflError) as exc:
        raise ZkflError(f"malformed {kind}: {type(exc).__name__}: {exc}") from None


def _artifact_cid(role: object, cid: object) -> str:
    """A package names its artifacts by CID, written as zkfl writes CIDs: nothing else, since
    a name is used as a cache folder (a crafted one would be a path)."""
    if not isinstance(cid, str):
        raise ValueError(f"artifact {role!r} is not named by a CID")
    cid_bytes(cid)
    if cid_from_bytes(cid_bytes(cid)) != cid:
        raise ValueError(f"artifact {role!r}: {cid!r} is not a base32 CIDv1")
    return cid


@dataclass(frozen=True)
class ModelArtifact:
    """A global model or an update: integers at a fixed-point scale."""

    spec_hash: str
    scale: int
    values: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"schema": MODEL_SCHEMA, "spec_hash": self.spec_hash, "scale": self.scale, "values": self.values}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelArtifact:
        with _well_formed("model artifact", data, MODEL_SCHEMA):
            values = [int(v) for v in data["values"]]
            if any(not -(2**63) <= v < 2**63 for v in values):
                raise ValueError("values must fit in 64 bits")
            return cls(str(data["spec_hash"]), int(data["scale"]), values)

    def array(self) -> IntArray:
        return np.array(self.values, dtype=np.int64)

    def put(self, store: ContentStore) -> str:
        return store.put_json(self.to_json())

    @classmethod
    def get(cls, store: ContentStore, cid: str) -> ModelArtifact:
        return cls.from_json(store.get_json(cid))


@dataclass(frozen=True)
class TaskPackage:
    """What a participant needs to take part: the model, data set and circuit artifacts.

    Its CID's digest is stored on chain with the task, so a participant can check it
    got the package the organisation posted.
    """

    spec: ModelSpec
    dataset: str
    backend: str
    update_scale: int
    # role -> CID: the step circuit's settings, compiled, vk, srs, verifier_sol, and the
    # FedAvg circuit's under "aggregation.<role>"
    artifacts: dict[str, str]
    proof_bytes: int | None = None  # every proof of this circuit has exactly this length
    aggregation_slots: int = 0  # K: the FedAvg circuit averages up to K updates

    def circuit_cids(self, circuit: str = "step") -> dict[str, str]:
        """The CIDs of one circuit's artifacts by role (``step`` or ``aggregation``)."""
        if circuit == "step":
            return {k: v for k, v in self.artifacts.items() if "." not in k}
        prefix = f"{circuit}."
        cids = {k.removeprefix(prefix): v for k, v in self.artifacts.items() if k.startswith(prefix)}
        if not cids:
            raise ZkflError(f"the task package has no {circuit} circuit")
        return cids

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": PACKAGE_SCHEMA,
            "model": self.spec.to_dict(),
            "spec_hash": self.spec.spec_hash(),
            "dataset": self.dataset,
            "backend": self.backend,
            "update_scale": self.update_scale,
            "artifacts": dict(sorted(self.artifacts.items())),
            "proof_bytes": self.proof_bytes,
            "aggregation_slots": self.aggregation_slots,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskPackage:
        with _well_formed("task package", data, PACKAGE_SCHEMA):
            proof_bytes = data.get("proof_bytes")
            artifacts = {str(role): _artifact_cid(role, cid) for role, cid in dict(data["artifacts"]).items()}
            return cls(ModelSpec.from_dict(data["model"]), str(data["dataset"]), str(data["backend"]),
                       int(data["update_scale"]), artifacts,
                       int(proof_bytes) if proof_bytes is not None else None, int(data.get("aggregation_slots", 0)))

    def put(self, store: ContentStore) -> str:
        return store.put_json(self.to_json())

    @classmethod
    def get(cls, store: ContentStore, cid: str) -> TaskPackage:
        return cls.from_json(store.get_json(cid))


@dataclass(frozen=True)
class ManifestEntry:
    wallet: str
    update_cid: str
    update_commitment: str
    samples: int


@dataclass(frozen=True)
class AggregationManifest:
    """Which updates, with which weights, made a published global model.

    Its digest goes on chain with the model, so an auditor can fetch the updates by CID
    and recompute the average without asking the aggregator anything."""

    round: int
    model_cid: str
    entries: list[ManifestEntry]

    def to_json(self) -> dict[str, Any]:
        return {"schema": MANIFEST_SCHEMA, "round": self.round, "model_cid": self.model_cid,
                "updates": [e.__dict__ for e in sorted(self.entries, key=lambda e: e.wallet)]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AggregationManifest:
        with _well_formed("aggregation manifest", data, MANIFEST_SCHEMA):
            return cls(int(data["round"]), str(data["model_cid"]),
                       [ManifestEntry(str(e["wallet"]), str(e["update_cid"]), str(e["update_commitment"]),
                                      int(e["samples"])) for e in data["updates"]])

    def put(self, store: ContentStore) -> str:
        return store.put_json(self.to_json())

    @classmethod
    def get(cls, store: ContentStore, cid: str) -> AggregationManifest:
        return cls.from_json(store.get_json(cid))


#: A task package is a few KB of JSON: a task may name any CID as its package, so readers that
#: list strangers' tasks read at most this much.
MAX_PACKAGE_BYTES = 1 << 20


class PackageReader:
    """Task packages by CID for readers that serve many requests (the portal, task status):
    read at most MAX_PACKAGE_BYTES, only if shaped like a package zkfl writes, kept once read
    (a CID's bytes never change); a failed read is retried after ``retry_after`` seconds,
    doubling with each failure up to an hour, so neither a missing package nor a hostile one
    costs a fetch per request. With ``fetch=False``, only what the store holds is read."""

    def __init__(self, store: ContentStore, *, fetch: bool = True, retry_after: float = 60.0,
                 kept: int = 1024) -> None:
        self.store, self.fetch, self.retry_after, self.kept = store, fetch, retry_after, kept
        self._read: OrderedDict[str, TaskPackage] = OrderedDict()
        self._failed: dict[str, tuple[int, float]] = {}  # CID -> (failures, not before)
        self._lock = threading.Lock()

    def get(self, cid: str) -> TaskPackage | None:
        with self._lock:
            if cid in self._read:
                self._read.move_to_end(cid)
                return self._read[cid]
            failures, not_before = self._failed.get(cid, (0, 0.0))
            if time.monotonic() < not_before:
                return None
        package = self._load(cid)
        with self._lock:
            if package is None:
                wait = min(self.retry_after * 2**failures, 3600.0)
                self._failed[cid] = (failures + 1, time.monotonic() + wait)
                return None
            self._failed.pop(cid, None)
            self._read[cid] = package
            while len(self._read) > self.kept:
                self._read.popitem(last=False)
        return package

    def _load(self, cid: str) -> TaskPackage | None:
        if not self.fetch and not self.store.has(cid):
            return None
        try:
            package = TaskPackage.from_json(self.store.get_json(cid, MAX_PACKAGE_BYTES))
        except (ZkflError, OSError, KeyError, ValueError, TypeError) as exc:
            log.info("package %s is not readable here: %s", cid, exc)
            return None
        if not _package_shaped(package):
            log.info("package %s is not shaped like a package zkfl writes", cid)
            return None
        return package


def _package_shaped(package: TaskPackage) -> bool:
    """Small where zkfl's are small: its strings are names, its model a few layers. A package
    that is not would be echoed into every listing and status its readers serve."""
    names = [package.dataset, package.backend, package.spec.family, *package.artifacts]
    return (all(len(name) <= 64 for name in names) and len(package.spec.hidden) <= 8
            and len(package.artifacts) <= 64)
