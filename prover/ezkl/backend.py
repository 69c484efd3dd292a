"""ezkl (halo2, KZG on BN254) behind the :class:`~zkfl.prover.backend.ProvingBackend` hooks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zkfl.circuits.spec import ModelSpec
from zkfl.errors import ZkflError
from zkfl.field.quantize import IntArray
from zkfl.prover.backend import ProvingBackend
from zkfl.prover.ezkl import prove
from zkfl.prover.ezkl.circuit import CircuitArtifacts, build_circuit
from zkfl.prover.ezkl.evm import proof_length, verifier, verifier_source
from zkfl.prover.ezkl.keys import artifacts_from_package
from zkfl.prover.records import StepCircuit, StepProof, VerifierSource

if TYPE_CHECKING:
    from zkfl.artifacts import TaskPackage
    from zkfl.store import ContentStore


def _own(circuit: StepCircuit) -> CircuitArtifacts:
    if not isinstance(circuit, CircuitArtifacts):
        raise ZkflError(f"a {circuit.backend} circuit given to the ezkl backend")
    return circuit


def circuit_files(artifacts: CircuitArtifacts) -> dict[str, Path]:
    """What a package publishes of an ezkl circuit: never the proving key (each party rebuilds it)."""
    return {"settings": artifacts.settings, "compiled": artifacts.compiled, "vk": artifacts.vk,
            "srs": artifacts.srs, "verifier_sol": artifacts.verifier_sol}


def prepare(artifacts: CircuitArtifacts) -> CircuitArtifacts:
    """Keys and verifier source for a built circuit (the step's or FedAvg's)."""
    prove.ensure_keys(artifacts)
    verifier_source(artifacts)
    return artifacts


class EzklBackend(ProvingBackend):
    name = "ezkl"
    # Its own verifier pairs a batch once (zkfl.prover.ezkl.deferred); the reusable adapter (models
    # too large for their own verifier) has no verifyProofs, so the Federation verifies those alone.
    batch_verifies = True

    def build_step(self, spec: ModelSpec) -> StepCircuit:
        return prepare(build_circuit(spec))

    def step_from_package(self, package: TaskPackage, store: ContentStore) -> StepCircuit:
        return artifacts_from_package(package, store)

    def package_files(self, circuit: StepCircuit) -> dict[str, Path]:
        return circuit_files(_own(circuit))

    def prove_step(self, circuit: StepCircuit, global_model: IntArray, x: IntArray, y: IntArray,
                   binding: IntArray) -> StepProof:
        return prove.prove_step(_own(circuit), global_model, x, y, binding)

    def verify_step(self, circuit: StepCircuit, proof: bytes, public_values: list[int]) -> tuple[bool, str]:
        return prove.verify_proof(_own(circuit), prove.proof_json(proof, public_values))

    def proof_length(self, circuit: StepCircuit) -> int:
        return proof_length(_own(circuit))

    def verifier(self, circuit: StepCircuit) -> VerifierSource:
        return verifier(_own(circuit))
