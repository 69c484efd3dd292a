"""A ZoKrates task's circuit, fetched from its package and checked, for participants and auditors.

Unlike ezkl's, a Groth16 proving key cannot be rebuilt by each party: it comes out of
the task's trusted setup, so the package publishes it. What a party checks:

* the program's source is exactly what zkfl generates for the task's spec, and the
  compiled program is that source's compilation, byte for byte (so the statement the
  keys were made for is the advertised one);
* the verifying key has one bound point per public value (no malleable input);
* the Solidity verifier is the one generated from that verifying key (and, on chain,
  :mod:`zkfl.contracts.verifiers` checks the deployed code is its compilation, byte for byte);
* the proving key works with that verifying key: every proof is verified locally
  before it is submitted (:func:`zkfl.prover.zokrates.circuit.prove_step`).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from zkfl.artifacts import TaskPackage
from zkfl.circuits.zokrates_step import step_source
from zkfl.errors import ZkflError
from zkfl.paths import build_lock, cache_dir, write_atomically
from zkfl.prover.zokrates.circuit import ROLES, ZokratesCircuit, check_key, write_verifier
from zkfl.prover.zokrates.driver import run
from zkfl.store import ContentStore


def circuit_from_package(package: TaskPackage, store: ContentStore) -> ZokratesCircuit:
    cids = package.circuit_cids("step")
    missing = [role for role in ROLES if role not in cids]
    if missing:
        raise ZkflError(f"the zokrates task package lacks {', '.join(missing)}")
    # Keyed by every role's CID: another vk or verifier with the same program is another folder.
    key = hashlib.sha256(json.dumps([cids[role] for role in ROLES]).encode()).hexdigest()[:24]
    root = cache_dir("packages", f"zokrates-{key}")
    circuit = ZokratesCircuit(package.spec, root)
    with build_lock(root):
        for role in ROLES:
            target = circuit.path(role)
            if not target.exists():
                write_atomically(target, store.get(cids[role]))  # checked against the CID
    try:
        source = step_source(package.spec)
    except ValueError as exc:
        raise ZkflError(f"the task package's model cannot be a ZoKrates step: {exc}") from None
    if circuit.path("source").read_text() != source:
        raise ZkflError("the package's ZoKrates program is not the one zkfl generates for the task's model")
    check_program(circuit)
    check_key(circuit)  # pure Python: verifying a proof with this circuit needs no Node and no chain
    return circuit


def check_program(circuit: ZokratesCircuit) -> None:
    """The compiled program is the source's compilation: the keys were made for this
    program, so a weaker one shipped beside the right source would be the real statement.
    Compiling takes seconds to minutes, once per package per machine."""
    marker = circuit.root / "program.checked"
    if marker.exists():
        return
    with build_lock(circuit.root), tempfile.TemporaryDirectory(dir=circuit.root) as tmp:
        program, abi = Path(tmp) / "program.bin", Path(tmp) / "abi.json"
        run("compile", source=circuit.path("source"), program=program, abi=abi)
        if program.read_bytes() != circuit.path("program").read_bytes():
            raise ZkflError("the package's compiled ZoKrates program is not the compilation of its source")
        if json.loads(abi.read_text()) != json.loads(circuit.path("abi").read_text()):
            raise ZkflError("the package's program ABI is not the one its source compiles to")
        marker.write_text("compiled from step.zok and compared, byte for byte\n")


def checked_verifier(circuit: ZokratesCircuit) -> Path:
    """The package's verifier, checked to be generated from its verifying key (zokrates-js'
    export, then zkfl's adaptation); the contracts layer compares the code on chain with
    its compilation, byte for byte."""
    expected = circuit.root / "Verifier.expected.sol"
    with build_lock(circuit.root):  # clients on one machine share the folder
        write_verifier(circuit, expected)  # from this zkfl's adaptation, whatever an older one left
    if expected.read_text() != circuit.verifier_sol.read_text():
        raise ZkflError("the package's verifier contract was not generated from its verifying key")
    return circuit.verifier_sol
