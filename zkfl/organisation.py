"""The organisation's side: build the task's circuit, publish its package, post the task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from eth_account.signers.local import LocalAccount
from web3 import Web3

from zkfl.artifacts import ModelArtifact, TaskPackage
from zkfl.circuits.registry import default_spec, family, initial_parameters
from zkfl.circuits.spec import DEFAULT_FEATURE_BOUND, DEFAULT_SLOTS, ModelSpec
from zkfl.contracts.chain import latest_block_time
from zkfl.contracts.federation import (
    DEFAULT_COLLECTION_WINDOW,
    Deployment,
    Federation,
    TaskParams,
)
from zkfl.contracts.verifiers import deploy_circuit_verifier
from zkfl.datasets import load
from zkfl.errors import ZkflError
from zkfl.field.commit import commit
from zkfl.field.quantize import Quantizer
from zkfl.prover.ezkl.aggregation import build_aggregation_circuit
from zkfl.prover.ezkl.backend import circuit_files, prepare
from zkfl.prover.ezkl.circuit import CircuitArtifacts
from zkfl.prover.records import StepCircuit, VerifierSource
from zkfl.prover.registry import DEFAULT_BACKEND, backend_of, get_backend
from zkfl.store import ContentStore, open_store


@dataclass(frozen=True)
class PostedTask:
    task_id: int
    federation: str
    verifier: str
    package_cid: str
    initial_model_cid: str
    aggregation_verifier: str = ""


def prepare_circuit(spec: ModelSpec, backend: str = DEFAULT_BACKEND) -> StepCircuit:
    """The task's step circuit with its keys and verifier source, from the named backend."""
    return get_backend(backend).build_step(spec)


def prepare_aggregation_circuit(step: StepCircuit, slots: int) -> CircuitArtifacts:
    """The FedAvg circuit over ``slots`` updates of ``step``'s model, with keys and verifier
    (FedAvg is proven with ezkl whichever backend proves the steps)."""
    return prepare(build_aggregation_circuit(step.spec, slots, step.update_scale))


def publish_package(store: ContentStore, artifacts: StepCircuit, dataset: str,
                    aggregation: CircuitArtifacts) -> str:
    """Put both circuits' public artifacts in the store. ezkl's proving keys stay out:
    each party rebuilds its own from the circuit and the SRS. A Groth16 proving key
    comes out of the task's trusted setup, so a ZoKrates package carries it."""
    backend = backend_of(artifacts)
    cids = {role: store.put_file(path) for role, path in backend.package_files(artifacts).items()}
    cids |= {f"aggregation.{role}": store.put_file(path) for role, path in circuit_files(aggregation).items()}
    package = TaskPackage(artifacts.spec, dataset, backend.name, artifacts.update_scale, cids,
                          backend.proof_length(artifacts), aggregation_slots=aggregation.slots)
    return package.put(store)


def circuit_verifier(circuit: StepCircuit) -> VerifierSource:
    """The Solidity verifier of a step circuit or of the FedAvg circuit."""
    return backend_of(circuit).verifier(circuit)


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
        verifier, deployment.reusable = deploy_circuit_verifier(w3, account, circuit_verifier(artifacts),
                                                                 deployment.reusable)
        deployment.verifiers[key] = verifier
    deployment.save(w3)
    return Federation(w3, deployment.federation), verifier


@dataclass(frozen=True)
class PreparedTask:
    """A task's circuits built and its package and initial model in the store: everything
    but the chain (what `post_task` deploys and funds, and what an off-chain run needs)."""

    spec: ModelSpec
    step: StepCircuit
    aggregation: CircuitArtifacts
    initial: ModelArtifact
    initial_cid: str
    package_cid: str


def prepare_task(model: str, dataset: str, *, store: ContentStore | None = None, local_steps: int = 1,
                 slots: int = DEFAULT_SLOTS, backend: str = DEFAULT_BACKEND,
                 feature_bound: float = DEFAULT_FEATURE_BOUND, pin_data: bool = False) -> PreparedTask:
    """The circuits, initial model and package of a task. Only a task that pins data gets a step
    that commits to the data (``ModelSpec.commits_data``): everywhere else the data leaves no hash."""
    store = store or open_store()
    data = load(dataset)
    if model == "logreg" and data.classes != 2:
        raise ZkflError(f"logreg is binary; {dataset} has {data.classes} classes (use softmax or mlp)")
    spec = replace(default_spec(model, data.features, data.classes, local_steps=local_steps),
                   feature_bound=feature_bound, commits_data=pin_data)
    spec.check_bounds()
    step = prepare_circuit(spec, backend)
    aggregation = prepare_aggregation_circuit(step, slots)
    initial_values = Quantizer(spec.scale).to_int(initial_parameters(spec))
    initial = ModelArtifact(spec.spec_hash(), spec.scale, [int(v) for v in initial_values])
    return PreparedTask(spec, step, aggregation, initial, initial.put(store),
                        publish_package(store, step, dataset, aggregation))


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
    backend: str = DEFAULT_BACKEND,
    collection_window: int = DEFAULT_COLLECTION_WINDOW,
    feature_bound: float = DEFAULT_FEATURE_BOUND,
) -> PostedTask:
    prepared = prepare_task(model, dataset, store=store, local_steps=local_steps, slots=slots, backend=backend,
                            feature_bound=feature_bound, pin_data=pin_data)
    spec, artifacts, aggregation = prepared.spec, prepared.step, prepared.aggregation
    fed, verifier = ensure_deployment(w3, account, artifacts, federation)
    fed, aggregation_verifier = ensure_deployment(w3, account, aggregation, fed.address)
    initial, initial_cid, package_cid = prepared.initial, prepared.initial_cid, prepared.package_cid
    params = TaskParams(
        aggregator=Web3.to_checksum_address(aggregator or account.address),
        verifier=verifier,
        aggregation_verifier=aggregation_verifier,
        aggregation_slots=slots,
        deadline=latest_block_time(w3) + deadline_seconds,
        rounds=rounds,
        samples_per_update=spec.batch,
        min_stake=min_stake_wei,
        global_commitment=commit(np.array(initial.values, dtype=np.int64)),
        model_cid=initial_cid,
        package_cid=package_cid,
        pin_data=spec.commits_data,
        collection_window=collection_window,
        update_values=spec.param_count,
    )
    task_id = fed.create_task(account, params, reward_wei)
    return PostedTask(task_id, fed.address, verifier, package_cid, initial_cid, aggregation_verifier)


def held_out_evaluator(spec: ModelSpec, dataset: str) -> Callable[[list[int]], tuple[float, float]]:
    """Loss and accuracy of a global model on the data set's held-out part: the organisation's
    own test data, which the aggregator scores each published model on (never the participants')."""
    data, fam, quantizer = load(dataset), family(spec.family), Quantizer(spec.scale)

    def evaluate(values: list[int]) -> tuple[float, float]:
        return fam.loss_and_accuracy(spec, quantizer.to_float(values), data.x_test, data.y_test)

    return evaluate
