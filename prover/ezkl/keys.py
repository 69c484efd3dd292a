"""Rebuild a task's circuit and keys from its published package, and check them.

Proving keys are large (hundreds of MB for logistic regression, GB for MLPs), so they
are never published. Nor is the package's compiled circuit used: it could compute
anything (an update that carries a row of the data, say) under public values that look
right. A participant (an aggregator, an auditor) builds the circuit from the package's
spec itself, checks that the package's settings are the ones that build derives, and
compiles its own graph with them. It fetches the settings, the SRS and the verifying key
by CID and runs setup itself. Setup is deterministic given the circuit, its settings
and the SRS, so the rebuilt verifying key must equal the published one: then the keys
the chain verifies with are those of the spec's circuit. The verifier contract
regenerated from them must also equal, byte for byte, the code deployed at the task's
verifier address (:mod:`zkfl.contracts.verifiers`). Only then does the participant
prove: otherwise its proofs would be checked against keys it never saw.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from zkfl.artifacts import TaskPackage
from zkfl.errors import ZkflError
from zkfl.field.ezkl_api import ezkl
from zkfl.paths import build_lock, cache_dir, own_temp_path, write_atomically
from zkfl.prover.ezkl.aggregation import build_aggregation_circuit
from zkfl.prover.ezkl.circuit import CircuitArtifacts, build_circuit, quiet_stdout
from zkfl.prover.ezkl.prove import setup_keys_locked
from zkfl.store import ContentStore, cid_of


def _fetch(store: ContentStore, cid: str, target: Path) -> None:
    if not target.exists():
        write_atomically(target, store.get(cid))  # store.get checks the bytes against the CID


#: The package files the keys in a rebuilt circuit folder depend on; the folder's name also holds
#: the circuit's role, its slots and its spec's hash, so that no folder checked for one package
#: is reused for another that names the same files (the step's files as the FedAvg circuit, or
#: another spec's: a spec's hash includes zkfl's circuit version).
_KEYED_ROLES = ("settings", "srs", "vk")
#: Names the way the circuit in a package folder was made: folders made before circuits were
#: compiled from the spec hold the package's own compiled circuit and must not be reused.
_FOLDER_LAYOUT = "compiled-from-spec-2"
#: Written in a folder whose published key is not the one its spec's circuit sets up: setup is
#: deterministic, so loading the package again refuses it at once instead of setting up again.
_REFUSED = "refused.txt"
#: Settings entries that differ between two builds of the same circuit: a timestamp, and lists
#: whose order follows a hash map's (the order still fixes the layout, hence the published
#: settings are the ones compiled with).
_UNORDERED_SETTINGS = ("required_range_checks", "required_lookups")
#: Files made here from the verifying key: stale the moment the key is rebuilt.
_DERIVED_FROM_KEY = ("Verifier.sol", "Verifier.gen.sol", "Verifier.gen.sol.tmp", "verifier.abi", "vka.bytes",
                     "vka.bytes.tmp")


def _slots(package: TaskPackage, circuit: str) -> int:
    return package.aggregation_slots if circuit == "aggregation" else 0


def package_root(package: TaskPackage, circuit: str = "step") -> Path:
    cids = package.circuit_cids(circuit)
    named = [_FOLDER_LAYOUT, circuit, _slots(package, circuit), package.spec.spec_hash(),
             *(cids[role] for role in _KEYED_ROLES)]
    return cache_dir("packages") / f"ezkl-{hashlib.sha256(json.dumps(named).encode()).hexdigest()[:32]}"


def artifacts_from_package(package: TaskPackage, store: ContentStore, circuit: str = "step") -> CircuitArtifacts:
    """One of the package's circuits (``step`` or ``aggregation``), compiled here from its spec,
    with locally rebuilt keys, cached by everything the keys depend on."""
    cids = package.circuit_cids(circuit)
    root = package_root(package, circuit)
    srs = cache_dir("srs", "published") / f"{cids['srs']}.srs"
    artifacts = CircuitArtifacts(package.spec, root, srs_file=srs, slots=_slots(package, circuit))
    root.mkdir(parents=True, exist_ok=True)
    # One lock over the whole load: another process loading the same package waits for this
    # one's setup, and never reads a key this one is deleting or a marker it is writing.
    with build_lock(root):
        if (root / _REFUSED).exists():
            raise ZkflError((root / _REFUSED).read_text())
        _fetch(store, cids["settings"], artifacts.settings)
        _fetch(store, cids["srs"], srs)
        if circuit == "step":
            check_step_layout(artifacts)
        local = check_settings(artifacts, circuit)  # on every load: the cache is not trusted either
        if not artifacts.compiled.exists():
            staged = own_temp_path(artifacts.compiled)
            with quiet_stdout():
                ezkl.compile_circuit(str(local.onnx), str(staged), str(artifacts.settings))
            staged.replace(artifacts.compiled)
        _set_up_published_key(artifacts, cids["vk"], circuit)
    return artifacts


def _set_up_published_key(artifacts: CircuitArtifacts, published_vk: str, circuit: str) -> None:
    """Set up (unless cached) and require the published verifying key; the caller holds the lock."""
    if artifacts.vk.exists() and artifacts.pk.exists() and cid_of(artifacts.vk.read_bytes()) != published_vk:
        # A stale or corrupt cached key: rebuild once before declaring a mismatch (a key set up
        # just now would only come out the same).
        for stale in ("vk.key", "pk.key", *_DERIVED_FROM_KEY):
            (artifacts.root / stale).unlink(missing_ok=True)
    setup_keys_locked(artifacts)
    if cid_of(artifacts.vk.read_bytes()) != published_vk:
        reason = (f"the verifying key of the {circuit} circuit built from the package's spec differs from the "
                  "published one: the package's keys are not its spec's circuit (or were built by another zkfl "
                  "circuit version)")
        write_atomically(artifacts.root / _REFUSED, reason.encode())
        raise ZkflError(reason)


def check_settings(artifacts: CircuitArtifacts, circuit: str) -> CircuitArtifacts:
    """The spec's own circuit, built here (and cached by the spec's hash), once the package's
    settings are found to be the ones zkfl derives from the spec (up to the order of entries
    that follows a hash map's); the package's own compiled circuit is never used."""
    spec = artifacts.spec
    local = (build_circuit(spec) if circuit == "step" else
             build_aggregation_circuit(spec, artifacts.slots, build_circuit(spec).update_scale))
    differences = settings_differences(local.settings_json(), artifacts.settings_json())
    if differences:
        raise ZkflError(f"the package's {circuit} circuit settings are not the ones zkfl derives from its spec: "
                        f"{'; '.join(differences[:4])}")
    return local


def settings_differences(derived: dict[str, Any], published: dict[str, Any]) -> list[str]:
    """Where ``published`` settings differ from ``derived`` ones, by entry (``run_args.logrows``),
    ignoring the build's timestamp and the order of hash-map-ordered lists."""
    def canonical(settings: dict[str, Any]) -> dict[str, Any]:
        flat = {k: v for k, v in settings.items() if k not in ("timestamp", "run_args")}
        for key in _UNORDERED_SETTINGS:
            if isinstance(flat.get(key), list):
                flat[key] = sorted(flat[key], key=lambda entry: json.dumps(entry, sort_keys=True))
        flat.update({f"run_args.{k}": v for k, v in settings.get("run_args", {}).items()})
        return flat

    ours, theirs = canonical(derived), canonical(published)
    return [f"{key} is {json.dumps(theirs.get(key))[:80]}, not {json.dumps(ours.get(key))[:80]}"
            for key in sorted(ours.keys() | theirs.keys()) if ours.get(key) != theirs.get(key)]


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
