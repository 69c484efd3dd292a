"""The organisation's side: build the task's circuit, publish its package, post the task."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from eth_account.signers.local import LocalAccount
from web3 import Web3

from zkfl.artifacts import ModelArtifact, TaskPackage
from zkfl.circuits.aggregation import build_aggregation_circuit
from zkfl.circuits.cache import CircuitArtifacts, build_circuit
from zkfl.circuits.registry import default_spec, initial_parameters
from zkfl.circuits.spec import DEFAULT_FEATURE_BOUND, DEFAULT_SLOTS, ModelSpec
from zkfl.contracts.federation import (
    DEFAULT_COLLECTION_WINDOW,
    EIP170_LIMIT,
    Deployment,
    Federation,
    TaskParams,
    deploy_reusable_adapter,
    deploy_verifier,
)
from zkfl.contracts.solc import compile_contract
from zkfl.datasets import load
from zkfl.errors import ZkflError
from zkfl.prover.backends import StepCircuit, backend_of, deploy_step_verifier, package_files, prepare_step_circuit
from zkfl.prover.backends import proof_length as step_proof_length
from zkfl.prover.commit import commit
from zkfl.prover.evm import reusable_verifier_source, verifier_source, vka_words
from zkfl.prover.ezkl_backend import ensure_keys
from zkfl.prover.quantize import Quantizer
from zkfl.store import ContentStore, open_store


@dataclass(frozen=True)
class PostedTask:
    task_id: int
    federation: str
    verifier: str
    package_cid: str
    initial_model_cid: str
    aggregation_verifier: str = ""


def prepare_circuit(spec: ModelSpec) -> CircuitArtifacts:
    artifacts = build_circuit(spec)
    ensure_keys(artifacts)
    verifier_source(artifacts)
    return artifacts


def prepare_aggregation_circuit(step: StepCircuit, slots: int) -> CircuitArtifacts:
    """The FedAvg circuit over ``slots`` updates of ``step``'s model, with keys and verifier."""
    artifacts = build_aggregation_circuit(step.spec, slots, step.update_scale)
    ensure_keys(artifacts)
    verifier_source(artifacts)
    return artifacts


def _circuit_files(artifacts: CircuitArtifacts) -> dict[str, Path]:
    return {"settings": artifacts.settings, "compiled": artifacts.compiled, "vk": artifacts.vk,
            "srs": artifacts.srs, "verifier_sol": artifacts.verifier_sol}


def publish_package(store: ContentStore, artifacts: StepCircuit, dataset: str,
                    aggregation: CircuitArtifacts) -> str:
    """Put both circuits' public artifacts in the store. ezkl's proving keys stay out:
    each party rebuilds its own from the circuit and the SRS. A Groth16 proving key
    comes out of the task's trusted setup, so a ZoKrates package carries it."""
    cids = {role: store.put_file(path) for role, path in package_files(artifacts).items()}
    cids |= {f"aggregation.{role}": store.put_file(path) for role, path in _circuit_files(aggregation).items()}
    package = TaskPackage(artifacts.spec, dataset, backend_of(artifacts), artifacts.update_scale, cids,
                          step_proof_length(artifacts), aggregation_slots=aggregation.slots)
    return package.put(store)


def uses_reusable_verifier(artifacts: CircuitArtifacts) -> bool:
    """Circuits whose own verifier exceeds the contract size limit go through ezkl's
    reusable verifier (softmax and MLP: their lookup tables make it about 37 KB)."""
    return compile_contract(artifacts.verifier_sol, "Halo2Verifier").deployed_size > EIP170_LIMIT


def deploy_circuit_verifier(w3: Web3, account: LocalAccount, artifacts: CircuitArtifacts,
                            reusable: str | None = None) -> tuple[str, str | None]:
    """The circuit's own verifier, or an adapter over ezkl's reusable one when its own is too
    large for a contract. Returns the address to verify with and the reusable verifier's."""
    if uses_reusable_verifier(artifacts):
        adapter, reusable, _ = deploy_reusable_adapter(
            w3, account, reusable_verifier_source(artifacts), vka_words(artifacts), reusable)
        return adapter, reusable
    address, _ = deploy_verifier(w3, account, artifacts.verifier_sol)
    return address, reusable


def ensure_deployment(w3: Web3, account: LocalAccount, artifacts: StepCircuit,
                      federation: str | None = None) -> tuple[Federation, str]:
    """The Federation and this circuit's verifier on this chain, deploying what is missing."""
    deployment = Deployment.load(w3)
    if federation:
        deployment.federation = federation
    if deployment.federation is None or len(w3.eth.get_code(deployment.federation)) == 0:
        deployment.federation = Federation.deploy(w3, account).address  # canonical: found from the chain
    key = artifacts.key
    verifier = deployment.verifiers.get(key)
    if verifier is None or len(w3.eth.get_code(verifier)) == 0:
        verifier, deployment.reusable = deploy_step_verifier(w3, account, artifacts, deployment.reusable)
        deployment.verifiers[key] = verifier
    deployment.save(w3)
    return Federation(w3, deployment.federation), verifier


def post_task(
    w3: Web3,
    account: LocalAccount,
    *,
    model: str,
    dataset: str,
    rounds: int,
    reward_wei: int,
    min_stake_wei: int,
    deadline_seconds: int,
    aggregator: str | None = None,
    store: ContentStore | None = None,
    federation: str | None = None,
    local_steps: int = 1,
    pin_data: bool = False,
    slots: int = DEFAULT_SLOTS,
    backend: str = "ezkl",
    collection_window: int = DEFAULT_COLLECTION_WINDOW,
    feature_bound: float = DEFAULT_FEATURE_BOUND,
) -> PostedTask:
    store = store or open_store()
    data = load(dataset)
    if model == "logreg" and data.classes != 2:
        raise ZkflError(f"logreg is binary; {dataset} has {data.classes} classes (use softmax or mlp)")
    spec = replace(default_spec(model, data.features, data.classes, local_steps=local_steps),
                   feature_bound=feature_bound)
    spec.check_bounds()
    artifacts = prepare_step_circuit(spec, backend)
    aggregation = prepare_aggregation_circuit(artifacts, slots)
    fed, verifier = ensure_deployment(w3, account, artifacts, federation)
    fed, aggregation_verifier = ensure_deployment(w3, account, aggregation, fed.address)
    initial_values = Quantizer(spec.scale).to_int(initial_parameters(spec))
    initial = ModelArtifact(spec.spec_hash(), spec.scale, [int(v) for v in initial_values])
    initial_cid = initial.put(store)
    package_cid = publish_package(store, artifacts, dataset, aggregation)
    params = TaskParams(
        aggregator=Web3.to_checksum_address(aggregator or account.address),
        verifier=verifier,
        aggregation_verifier=aggregation_verifier,
        aggregation_slots=slots,
        deadline=int(w3.eth.get_block("latest")["timestamp"]) + deadline_seconds,
        rounds=rounds,
        samples_per_update=spec.batch,
        min_stake=min_stake_wei,
        global_commitment=commit(np.array(initial.values, dtype=np.int64)),
        model_cid=initial_cid,
        package_cid=package_cid,
        pin_data=pin_data,
        collection_window=collection_window,
        update_values=spec.param_count,
    )
    task_id = fed.create_task(account, params, reward_wei)
    return PostedTask(task_id, fed.address, verifier, package_cid, initial_cid, aggregation_verifier)
