"""The organisation's side: build the task's circuit, publish its package, post the task."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from eth_account.signers.local import LocalAccount
from web3 import Web3

from zkfl.artifacts import ModelArtifact, TaskPackage
from zkfl.circuits.cache import CircuitArtifacts, build_circuit
from zkfl.circuits.registry import default_spec, initial_parameters
from zkfl.circuits.spec import ModelSpec
from zkfl.contracts.federation import (
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
from zkfl.prover.commit import commit
from zkfl.prover.evm import proof_length, reusable_verifier_source, verifier_source, vka_words
from zkfl.prover.ezkl_backend import STEP_PUBLIC_LAYOUT, ensure_keys
from zkfl.prover.quantize import Quantizer
from zkfl.store import ContentStore, digest_of_cid


@dataclass(frozen=True)
class PostedTask:
    task_id: int
    federation: str
    verifier: str
    package_cid: str
    initial_model_cid: str


def prepare_circuit(spec: ModelSpec) -> CircuitArtifacts:
    artifacts = build_circuit(spec)
    ensure_keys(artifacts)
    verifier_source(artifacts)
    return artifacts


def publish_package(store: ContentStore, artifacts: CircuitArtifacts, dataset: str) -> str:
    """Put the circuit's public artifacts in the store (not the proving key: clients rebuild it)."""
    roles = {
        "settings": artifacts.settings,
        "compiled": artifacts.compiled,
        "vk": artifacts.vk,
        "srs": artifacts.srs,
        "verifier_sol": artifacts.verifier_sol,
    }
    cids = {role: store.put_file(path) for role, path in roles.items()}
    package = TaskPackage(artifacts.spec, dataset, "ezkl", artifacts.update_scale, cids, proof_length(artifacts))
    return package.put(store)


def uses_reusable_verifier(artifacts: CircuitArtifacts) -> bool:
    """Circuits whose own verifier exceeds the contract size limit go through ezkl's
    reusable verifier (softmax and MLP: their lookup tables make it about 37 KB)."""
    return compile_contract(artifacts.verifier_sol, "Halo2Verifier").deployed_size > EIP170_LIMIT


def ensure_deployment(w3: Web3, account: LocalAccount, artifacts: CircuitArtifacts,
                      federation: str | None = None) -> tuple[Federation, str]:
    """The Federation and this circuit's verifier on this chain, deploying what is missing."""
    deployment = Deployment.load(w3)
    if federation:
        deployment.federation = federation
    if deployment.federation is None or len(w3.eth.get_code(deployment.federation)) == 0:
        deployment.federation = Federation.deploy(w3, account).address
    key = artifacts.spec.spec_hash()
    verifier = deployment.verifiers.get(key)
    if verifier is None or len(w3.eth.get_code(verifier)) == 0:
        if uses_reusable_verifier(artifacts):
            verifier, deployment.reusable, _ = deploy_reusable_adapter(
                w3, account, reusable_verifier_source(artifacts), vka_words(artifacts), deployment.reusable)
        else:
            verifier, _ = deploy_verifier(w3, account, artifacts.verifier_sol)
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
) -> PostedTask:
    store = store or ContentStore()
    data = load(dataset)
    if model == "logreg" and data.classes != 2:
        raise ZkflError(f"logreg is binary; {dataset} has {data.classes} classes (use softmax or mlp)")
    spec = default_spec(model, data.features, data.classes, local_steps=local_steps)
    artifacts = prepare_circuit(spec)
    fed, verifier = ensure_deployment(w3, account, artifacts, federation)
    initial_values = Quantizer(spec.scale).to_int(initial_parameters(spec))
    initial = ModelArtifact(spec.spec_hash(), spec.scale, [int(v) for v in initial_values])
    initial_cid = initial.put(store)
    package_cid = publish_package(store, artifacts, dataset)
    params = TaskParams(
        aggregator=Web3.to_checksum_address(aggregator or account.address),
        verifier=verifier,
        deadline=int(time.time()) + deadline_seconds,
        rounds=rounds,
        samples_per_update=spec.batch,
        public_value_count=len(STEP_PUBLIC_LAYOUT),
        min_stake=min_stake_wei,
        global_commitment=commit(np.array(initial.values, dtype=np.int64)),
        model_digest=digest_of_cid(initial_cid),
        package_digest=digest_of_cid(package_cid),
        pin_data=pin_data,
    )
    task_id = fed.create_task(account, params, reward_wei)
    return PostedTask(task_id, fed.address, verifier, package_cid, initial_cid)
