"""Rebuild a task's circuit and keys from its published package, and check them.

Proving keys are large (hundreds of MB for logistic regression, GB for MLPs), so they
are never published. A participant fetches the compiled circuit, the settings, the
SRS and the verifying key by CID, and runs setup itself. Setup is deterministic given
the circuit and the SRS, so the rebuilt verifying key must equal the published one.
The verifier contract regenerated from it must also equal, byte for byte, the code
deployed at the task's verifier address (:mod:`zkfl.contracts.verifiers`). Only then does
the participant prove: otherwise its proofs would be checked against keys it never saw.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from zkfl.artifacts import TaskPackage
from zkfl.errors import ZkflError
from zkfl.paths import build_lock, cache_dir, write_atomically
from zkfl.prover.ezkl.circuit import CircuitArtifacts
from zkfl.prover.ezkl.prove import ensure_keys
from zkfl.store import ContentStore, cid_of


def _fetch(store: ContentStore, cid: str, target: Path) -> None:
    if not target.exists():
        write_atomically(target, store.get(cid))  # store.get checks the bytes against the CID


#: The package files a rebuilt circuit folder depends on: its name is derived from all of them,
#: so two packages sharing a compiled circuit but not its SRS or key never share derived files.
_KEYED_ROLES = ("compiled", "settings", "srs", "vk")
#: Files made here from the verifying key: stale the moment the key is rebuilt.
_DERIVED_FROM_KEY = ("Verifier.sol", "Verifier.gen.sol", "Verifier.gen.sol.tmp", "verifier.abi", "vka.bytes",
                     "vka.bytes.tmp")


def package_root(package: TaskPackage, circuit: str = "step") -> Path:
    cids = package.circuit_cids(circuit)
    key = hashlib.sha256(json.dumps([cids[role] for role in _KEYED_ROLES]).encode()).hexdigest()[:32]
    return cache_dir("packages") / f"ezkl-{key}"


def artifacts_from_package(package: TaskPackage, store: ContentStore, circuit: str = "step") -> CircuitArtifacts:
    """One of the package's circuits (``step`` or ``aggregation``) with locally rebuilt
    keys, cached by the CIDs of everything the keys depend on."""
    cids = package.circuit_cids(circuit)
    root = package_root(package, circuit)
    srs = cache_dir("srs", "published") / f"{cids['srs']}.srs"
    slots = package.aggregation_slots if circuit == "aggregation" else 0
    artifacts = CircuitArtifacts(package.spec, root, srs_file=srs, slots=slots)
    root.mkdir(parents=True, exist_ok=True)
    with build_lock(root):
        _fetch(store, cids["settings"], artifacts.settings)
        _fetch(store, cids["compiled"], artifacts.compiled)
        _fetch(store, cids["srs"], srs)
    if circuit == "step":
        check_step_layout(artifacts)
    ensure_keys(artifacts)
    if cid_of(artifacts.vk.read_bytes()) != cids["vk"]:
        # A stale or corrupt local key: rebuild once before declaring a mismatch.
        with build_lock(root):
            for stale in ("vk.key", "pk.key", *_DERIVED_FROM_KEY):
                (root / stale).unlink(missing_ok=True)
        ensure_keys(artifacts)
        if cid_of(artifacts.vk.read_bytes()) != cids["vk"]:
            raise ZkflError("the verifying key rebuilt from the package differs from the published one")
    return artifacts


def check_step_layout(artifacts: CircuitArtifacts) -> None:
    """The step's settings must have the layout its spec names: hashed inputs and two outputs where
    it commits to data, private inputs and six outputs where it does not. A package whose spec
    misstates this (or one from before circuit version 6 read as another) is refused here, with the
    reason, instead of failing at its first proof. It checks the settings, not what the compiled
    circuit computes: see docs/security.md, known limits."""
    settings, spec = artifacts.settings_json(), artifacts.spec
    private = settings["run_args"]["input_visibility"] == "Private"
    outputs = len(settings["model_output_scales"])
    if private == spec.commits_data or outputs != len(spec.step_outputs):
        states = "commits to the data" if spec.commits_data else "keeps the data private"
        raise ZkflError(f"the package's step circuit has {'private' if private else 'hashed'} inputs and {outputs} "
                        f"outputs, but its spec says it {states} ({len(spec.step_outputs)} outputs)")


def drop_cached_keys(package: TaskPackage) -> None:
    """Forget the circuit and keys rebuilt from this package (to time a cold start)."""
    shutil.rmtree(package_root(package), ignore_errors=True)
    if package.aggregation_slots:
        shutil.rmtree(package_root(package, "aggregation"), ignore_errors=True)
