"""ZoKrates (Groth16 on BN254) behind the :class:`~zkfl.prover.backend.ProvingBackend` hooks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zkfl.circuits.spec import ModelSpec
from zkfl.circuits.zokrates_step import step_source
from zkfl.errors import ZkflError
from zkfl.field.quantize import IntArray
from zkfl.prover.backend import ProvingBackend
from zkfl.prover.records import StepCircuit, StepProof, VerifierSource
from zkfl.prover.zokrates import circuit as groth
from zkfl.prover.zokrates.groth16 import PROOF_BYTES
from zkfl.prover.zokrates.package import checked_verifier, circuit_from_package

if TYPE_CHECKING:
    from zkfl.artifacts import TaskPackage
    from zkfl.store import ContentStore


def _own(circuit: StepCircuit) -> groth.ZokratesCircuit:
    if not isinstance(circuit, groth.ZokratesCircuit):
        raise ZkflError(f"a {circuit.backend} circuit given to the zokrates backend")
    return circuit


class ZokratesBackend(ProvingBackend):
    name = "zokrates"
    parallel_provers = 2  # zokrates-js proves on one thread: two provers use both cores
    batch_verifies = True  # its verifier's verifyProofs: one random linear combination, N + 3 pairings

    def unsupported(self, spec: ModelSpec) -> str | None:
        try:
            step_source(spec)
        except ValueError as exc:
            return str(exc)
        return None

    def build_step(self, spec: ModelSpec) -> StepCircuit:
        try:
            return groth.build_circuit(spec)
        except ValueError as exc:
            raise ZkflError(str(exc)) from None

    def step_from_package(self, package: TaskPackage, store: ContentStore) -> StepCircuit:
        return circuit_from_package(package, store)

    def package_files(self, circuit: StepCircuit) -> dict[str, Path]:
        return _own(circuit).files()

    def prove_step(self, circuit: StepCircuit, global_model: IntArray, x: IntArray, y: IntArray,
                   binding: IntArray) -> StepProof:
        return groth.prove_step(_own(circuit), global_model, x, y, binding)

    def verify_step(self, circuit: StepCircuit, proof: bytes, public_values: list[int]) -> tuple[bool, str]:
        return groth.verify_step(_own(circuit), proof, public_values)

    def proof_length(self, circuit: StepCircuit) -> int:
        return PROOF_BYTES

    def verifier(self, circuit: StepCircuit) -> VerifierSource:
        return VerifierSource(checked_verifier(_own(circuit)), "Verifier")
