"""Rebuild a task's circuit and keys from its published package, and check them.

Proving keys are large (hundreds of MB for logistic regression, GB for MLPs), so they
are never published. A participant fetches the compiled circuit, the settings, the
SRS and the verifying key by CID, and runs setup itself. Setup is deterministic given
the circuit and the SRS, so the rebuilt verifying key must equal the published one.
The verifier contract regenerated from it must also equal, byte for byte, the code
deployed at the task's verifier address. Only then does the participant prove:
otherwise its proofs would be checked against keys it never saw.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from web3 import Web3

from zkfl.artifacts import TaskPackage
from zkfl.circuits.cache import CircuitArtifacts, build_lock
from zkfl.contracts.federation import adapter_contract
from zkfl.contracts.solc import compile_contract
from zkfl.errors import ZkflError
from zkfl.paths import cache_dir
from zkfl.prover.evm import reusable_verifier_source, verifier_source, vka_words
from zkfl.prover.ezkl_backend import ensure_keys
from zkfl.store import ContentStore, cid_of


def _fetch(store: ContentStore, cid: str, target: Path) -> None:
    if not target.exists():
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(store.get(cid))  # store.get checks the bytes against the CID
        tmp.replace(target)


def package_root(package: TaskPackage, circuit: str = "step") -> Path:
    return cache_dir("packages") / package.circuit_cids(circuit)["compiled"]


def artifacts_from_package(package: TaskPackage, store: ContentStore, circuit: str = "step") -> CircuitArtifacts:
    """One of the package's circuits (``step`` or ``aggregation``) with locally rebuilt
    keys, cached by the compiled circuit's CID."""
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
    ensure_keys(artifacts)
    if cid_of(artifacts.vk.read_bytes()) != cids["vk"]:
        # A stale or corrupt local key: rebuild once before declaring a mismatch.
        with build_lock(root):
            artifacts.vk.unlink(missing_ok=True)
            artifacts.pk.unlink(missing_ok=True)
        ensure_keys(artifacts)
        if cid_of(artifacts.vk.read_bytes()) != cids["vk"]:
            raise ZkflError("the verifying key rebuilt from the package differs from the published one")
    return artifacts


def _code(w3: Web3, address: str) -> str:
    return ("0x" + bytes(w3.eth.get_code(Web3.to_checksum_address(address))).hex()).lower()


def check_verifier_on_chain(w3: Web3, verifier: str, artifacts: CircuitArtifacts) -> None:
    """The contract at ``verifier`` verifies with exactly these keys.

    A per-circuit verifier must be, byte for byte, the one generated from the rebuilt
    verifying key. An adapter over ezkl's reusable verifier must be the known adapter
    code, point at the known reusable verifier code, and hold the VKA generated from the
    rebuilt verifying key.
    """
    deployed = _code(w3, verifier)
    if deployed == adapter_contract().runtime.lower():
        adapter = w3.eth.contract(address=Web3.to_checksum_address(verifier), abi=adapter_contract().abi)
        reusable = adapter.functions.reusable().call()
        expected_reusable = compile_contract(reusable_verifier_source(artifacts), "Halo2VerifierReusable").runtime
        if _code(w3, reusable) != expected_reusable.lower():
            raise ZkflError(f"the reusable verifier behind {verifier} is not ezkl's")
        if [bytes(w) for w in adapter.functions.vka().call()] != vka_words(artifacts):
            raise ZkflError(f"the verifier at {verifier} holds another circuit's verifying key")
        return
    expected = compile_contract(verifier_source(artifacts), "Halo2Verifier").runtime
    if deployed != expected.lower():
        raise ZkflError(f"the verifier at {verifier} was not generated from this task's verifying key")


def drop_cached_keys(package: TaskPackage) -> None:
    """Forget the circuit and keys rebuilt from this package (to time a cold start)."""
    shutil.rmtree(package_root(package), ignore_errors=True)
    if package.aggregation_slots:
        shutil.rmtree(package_root(package, "aggregation"), ignore_errors=True)
