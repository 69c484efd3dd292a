"""The two proving backends behind one set of functions: a task picks one at creation.

``ezkl`` (halo2, KZG) proves every model family; ``zokrates`` (Groth16) proves the
logistic- and (small) softmax-regression steps, with the cheapest on-chain verification. Both produce the
same public values, ``[H(G), data commitments..., H(b), H(W)]`` with ezkl's Poseidon,
so the contract, the aggregator, the FedAvg proof and the dashboard never ask which
one made a proof. Everything that does depend on the backend goes through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeAlias

from web3 import Web3

from zkfl.artifacts import TaskPackage
from zkfl.circuits.cache import CircuitArtifacts
from zkfl.circuits.spec import ModelSpec
from zkfl.errors import ZkflError
from zkfl.prover.ezkl_backend import StepProof
from zkfl.prover.quantize import IntArray, uint_to_felt
from zkfl.prover.zokrates.backend import ZokratesCircuit
from zkfl.store import ContentStore

BACKENDS = ("ezkl", "zokrates")
StepCircuit: TypeAlias = CircuitArtifacts | ZokratesCircuit


def backend_of(circuit: StepCircuit) -> str:
    return "zokrates" if isinstance(circuit, ZokratesCircuit) else "ezkl"


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ZkflError(f"unknown proving backend {name!r}; known: {', '.join(BACKENDS)}")
    return name


def prepare_step_circuit(spec: ModelSpec, backend: str = "ezkl") -> StepCircuit:
    """The organisation's side: build the step circuit, its keys and its verifier source."""
    if check_backend(backend) == "zokrates":
        from zkfl.prover.zokrates.backend import build_circuit

        try:
            return build_circuit(spec)
        except ValueError as exc:
            raise ZkflError(str(exc)) from None
    from zkfl.organisation import prepare_circuit

    return prepare_circuit(spec)


def step_circuit_from_package(package: TaskPackage, store: ContentStore) -> StepCircuit:
    if check_backend(package.backend) == "zokrates":
        from zkfl.prover.zokrates.package import circuit_from_package

        return circuit_from_package(package, store)
    from zkfl.prover.keys import artifacts_from_package

    return artifacts_from_package(package, store)


def prove_step(circuit: StepCircuit, global_model: IntArray, x: IntArray, y: IntArray,
               binding: IntArray) -> StepProof:
    if isinstance(circuit, ZokratesCircuit):
        from zkfl.prover.zokrates.backend import prove_step as prove_zokrates

        return prove_zokrates(circuit, global_model, x, y, binding)
    from zkfl.prover.ezkl_backend import prove_step as prove_ezkl

    return prove_ezkl(circuit, global_model, x, y, binding)


def ezkl_proof_json(proof: bytes, public_values: list[int]) -> dict[str, Any]:
    """ezkl's proof.json, rebuilt from a proof's calldata and public values."""
    return {"protocol": None, "instances": [[uint_to_felt(v) for v in public_values]], "proof": list(proof),
            "hex_proof": "0x" + proof.hex(), "split": None, "pretty_public_inputs": None, "timestamp": None,
            "version": None}


def verify_step(circuit: StepCircuit, proof: bytes, public_values: list[int]) -> tuple[bool, str]:
    """Off-chain verification of a step proof in its calldata form: (ok, reason)."""
    if isinstance(circuit, ZokratesCircuit):
        from zkfl.prover.zokrates.backend import verify_step as verify_zokrates

        return verify_zokrates(circuit, proof, public_values)
    from zkfl.prover.ezkl_backend import verify_proof

    return verify_proof(circuit, ezkl_proof_json(proof, public_values))


def package_files(circuit: StepCircuit) -> dict[str, Path]:
    if isinstance(circuit, ZokratesCircuit):
        return circuit.files()
    return {"settings": circuit.settings, "compiled": circuit.compiled, "vk": circuit.vk,
            "srs": circuit.srs, "verifier_sol": circuit.verifier_sol}


def proof_length(circuit: StepCircuit) -> int:
    if isinstance(circuit, ZokratesCircuit):
        from zkfl.prover.zokrates.groth16 import PROOF_BYTES

        return PROOF_BYTES
    from zkfl.prover.evm import proof_length as ezkl_proof_length

    return ezkl_proof_length(circuit)


def check_verifier_on_chain(w3: Web3, verifier: str, circuit: StepCircuit) -> None:
    if isinstance(circuit, ZokratesCircuit):
        from zkfl.prover.zokrates.package import check_verifier_on_chain as check_zokrates

        check_zokrates(w3, verifier, circuit)
        return
    from zkfl.prover.keys import check_verifier_on_chain as check_ezkl

    check_ezkl(w3, verifier, circuit)


def deploy_step_verifier(w3: Web3, account: Any, circuit: StepCircuit, reusable: str | None) -> tuple[str, str | None]:
    if isinstance(circuit, ZokratesCircuit):
        from zkfl.contracts.federation import deploy
        from zkfl.contracts.solc import compile_contract

        address, _ = deploy(w3, account, compile_contract(circuit.verifier_sol, "Verifier"))
        return address, reusable
    from zkfl.organisation import deploy_circuit_verifier

    return deploy_circuit_verifier(w3, account, circuit, reusable)
