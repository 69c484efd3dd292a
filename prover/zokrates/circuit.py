"""The ZoKrates backend: build the step program, run its setup, prove and verify.

A circuit folder holds the artifacts by role, like ezkl's::

    step.zok  program.bin  abi.json  vk.json  pk.bin  Verifier.sol  setup.json

Trusted setup: Groth16 needs a setup per circuit, and whoever knows its randomness
(the "toxic waste") can forge proofs. zkfl runs a single-party setup on the
organisation's machine (:func:`build_circuit`) with fresh OS randomness that is never
written down, and publishes the proving and verifying keys with the task. The
verifying key's hash is on chain through the task's package digest, and the verifier
contract embeds the key itself. A production task should replace this step with a
multi-party ceremony (see docs/protocol.md): then the keys are sound unless every
participant of the ceremony kept its randomness.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from py_ecc.optimized_bn128 import is_inf

from zkfl.circuits.spec import ModelSpec
from zkfl.circuits.zokrates_step import step_source
from zkfl.errors import ProofError, ZkflError
from zkfl.field.poseidon import poseidon_commit
from zkfl.field.quantize import IntArray
from zkfl.paths import build_lock, cache_dir
from zkfl.prover.records import STEP_PUBLIC_LAYOUT, UPDATE_INDEX, StepProof
from zkfl.prover.zokrates import groth16
from zkfl.prover.zokrates.driver import run
from zkfl.prover.zokrates.evm import adapt_verifier
from zkfl.prover.zokrates.step import linear_step

ROLES = ("source", "program", "abi", "vk", "pk", "verifier_sol")


@dataclass(frozen=True)
class ZokratesCircuit:
    spec: ModelSpec
    root: Path
    backend: ClassVar[str] = "zokrates"
    slots: ClassVar[int] = 0  # a step circuit (FedAvg is always proven with ezkl)

    @property
    def update_scale(self) -> int:
        return self.spec.scale

    @property
    def key(self) -> str:
        """Names the circuit among a chain's deployed verifiers: the key is per setup."""
        return f"zokrates-{hashlib.sha256(self.vk.read_bytes()).hexdigest()[:16]}"

    def path(self, role: str) -> Path:
        names = {"source": "step.zok", "program": "program.bin", "abi": "abi.json", "vk": "vk.json",
                 "pk": "pk.bin", "verifier_sol": "Verifier.sol", "setup": "setup.json"}
        return self.root / names[role]

    @property
    def vk(self) -> Path:
        return self.path("vk")

    @property
    def verifier_sol(self) -> Path:
        return self.path("verifier_sol")

    def files(self) -> dict[str, Path]:
        return {role: self.path(role) for role in ROLES}

    def verifying_key(self) -> groth16.VerifyingKey:
        return _verifying_key(self.vk.read_bytes())

    def setup_record(self) -> dict[str, Any]:
        path = self.path("setup")
        return json.loads(path.read_text()) if path.exists() else {}


@lru_cache(maxsize=16)
def _verifying_key(document: bytes) -> groth16.VerifyingKey:
    """Parsed and checked once per key (the G2 subgroup checks are not free in Python)."""
    return groth16.VerifyingKey.from_zokrates(json.loads(document))


def build_circuit(spec: ModelSpec) -> ZokratesCircuit:
    """Compile the step program and run its (single-party) setup, once per program text."""
    source = step_source(spec)
    root = cache_dir("zokrates", hashlib.sha256(source.encode()).hexdigest()[:16])
    circuit = ZokratesCircuit(spec, root)
    with build_lock(root):
        if not circuit.path("source").exists():
            circuit.path("source").write_text(source)
        if not circuit.path("program").exists():
            info = run("compile", source=circuit.path("source"), program=root / "program.tmp",
                       abi=circuit.path("abi"))
            (root / "program.tmp").replace(circuit.path("program"))
            (root / "compile.json").write_text(json.dumps(info))
        if not circuit.vk.exists() or not circuit.path("pk").exists():
            started = time.perf_counter()
            # The randomness lives only in this call: nobody, not even this machine, keeps it.
            run("setup", program=circuit.path("program"), entropy=secrets.token_hex(32),
                pk=root / "pk.tmp", vk=root / "vk.tmp")
            (root / "pk.tmp").replace(circuit.path("pk"))
            (root / "vk.tmp").replace(circuit.vk)
            circuit.path("setup").write_text(json.dumps({
                "kind": "single-party Groth16 setup (zokrates-js, OS randomness, discarded)",
                "seconds": round(time.perf_counter() - started, 2),
                "vk_sha256": hashlib.sha256(circuit.vk.read_bytes()).hexdigest()}))
            (root / EXPORTED_VERIFIER).unlink(missing_ok=True)
        write_verifier(circuit, circuit.verifier_sol)  # re-adapted: a cached one may come from an older zkfl
    check_key(circuit)
    return circuit


EXPORTED_VERIFIER = "Verifier.gen.sol"  # zokrates-js' export, before zkfl's adaptation


def _exported_verifier(circuit: ZokratesCircuit) -> str:
    """zokrates-js' verifier for the key: exported once per folder (it depends on the key alone)."""
    path = circuit.root / EXPORTED_VERIFIER
    if not path.exists():
        with tempfile.TemporaryDirectory(dir=circuit.root) as tmp:
            run("export", vk=circuit.vk, verifier=Path(tmp) / EXPORTED_VERIFIER)
            (Path(tmp) / EXPORTED_VERIFIER).replace(path)
    return path.read_text()


def write_verifier(circuit: ZokratesCircuit, target: Path) -> None:
    """ZoKrates' verifier for the key, adapted (see evm.py), written atomically when it differs."""
    adapted = adapt_verifier(_exported_verifier(circuit), len(STEP_PUBLIC_LAYOUT))
    if target.exists() and target.read_text() == adapted:
        return
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        (Path(tmp) / target.name).write_text(adapted)
        (Path(tmp) / target.name).replace(target)


def check_key(circuit: ZokratesCircuit) -> None:
    """Refuse a verifying key with the wrong arity or an unconstrained public input."""
    vk = circuit.verifying_key()
    if any(is_inf(point) for point in (vk.alpha, vk.beta, vk.gamma, vk.delta)):
        raise ZkflError("the verifying key has a point at infinity among alpha, beta, gamma, delta: any proof passes")
    if vk.inputs != len(STEP_PUBLIC_LAYOUT):
        raise ZkflError(f"the step's verifying key takes {vk.inputs} public values, not {len(STEP_PUBLIC_LAYOUT)}")
    unbound = vk.unbound_inputs()
    if unbound:
        names = ", ".join(STEP_PUBLIC_LAYOUT[i] for i in unbound)
        raise ZkflError(f"the verifying key leaves public values unconstrained (malleable): {names}")


def prove_step(circuit: ZokratesCircuit, global_model: IntArray, x: IntArray, y: IntArray,
               binding: IntArray) -> StepProof:
    started = time.perf_counter()
    witness = linear_step(circuit.spec, global_model, x, y, binding)
    answer = run("prove", program=circuit.path("program"), abi=circuit.path("abi"), pk=circuit.path("pk"),
                 args=witness.args)
    instances = [int(v) for v in answer["output"]]
    if instances[UPDATE_INDEX] != poseidon_commit(witness.update):
        raise ProofError("the circuit's update differs from the host's: the program and zkfl disagree")
    proof = dict(answer["proof"])  # ZoKrates' proof JSON; the verifier takes its 256-byte encoding
    result = StepProof(proof_bytes=groth16.encode_proof(proof["proof"]), instances=instances, update=witness.update,
                       update_scale=circuit.update_scale, proof=proof, timings=dict(answer["timings"]))
    # Check before anyone submits it: a proving key that does not match the published
    # verifying key would otherwise get an honest participant slashed.
    ok, reason = verify_step(circuit, result.proof_bytes, instances)
    if not ok:
        raise ProofError(f"the fresh proof does not verify with the task's verifying key: {reason}")
    result.prove_seconds = time.perf_counter() - started
    return result


def verify_step(circuit: ZokratesCircuit, proof: bytes, public_values: list[int]) -> tuple[bool, str]:
    """py-ecc verification, deciding as the on-chain verifier does."""
    return groth16.verify(circuit.verifying_key(), proof, public_values)

