"""A ZoKrates task's circuit, fetched from its package and checked, for participants and auditors.

Unlike ezkl's, a Groth16 proving key cannot be rebuilt by each party: it comes out of
the task's trusted setup, so the package publishes it. What a party checks:

* the program's source is exactly what zkfl generates for the task's spec (so the
  statement is the advertised one), and the compiled program is addressed by CID;
* the verifying key has one bound point per public value (no malleable input);
* the Solidity verifier is the one generated from that verifying key and, on chain,
  the deployed code is its compilation, byte for byte;
* the proving key works with that verifying key: every proof is verified locally
  before it is submitted (:func:`zkfl.prover.zokrates.backend.prove_step`).
"""

from __future__ import annotations

from web3 import Web3

from zkfl.artifacts import TaskPackage
from zkfl.circuits.cache import build_lock
from zkfl.circuits.zokrates_step import step_source
from zkfl.contracts.solc import compile_contract
from zkfl.errors import ZkflError
from zkfl.paths import cache_dir
from zkfl.prover.zokrates.backend import ROLES, ZokratesCircuit, check_key, write_verifier
from zkfl.store import ContentStore


def circuit_from_package(package: TaskPackage, store: ContentStore) -> ZokratesCircuit:
    cids = package.circuit_cids("step")
    missing = [role for role in ROLES if role not in cids]
    if missing:
        raise ZkflError(f"the zokrates task package lacks {', '.join(missing)}")
    root = cache_dir("packages", cids["program"] + "-" + cids["pk"][-12:])
    circuit = ZokratesCircuit(package.spec, root)
    with build_lock(root):
        for role in ROLES:
            target = circuit.path(role)
            if not target.exists():
                tmp = target.with_suffix(target.suffix + ".tmp")
                tmp.write_bytes(store.get(cids[role]))  # checked against the CID
                tmp.replace(target)
    if circuit.path("source").read_text() != step_source(package.spec):
        raise ZkflError("the package's ZoKrates program is not the one zkfl generates for the task's model")
    check_key(circuit)  # pure Python: verifying a proof with this circuit needs no Node and no chain
    return circuit


def check_verifier_on_chain(w3: Web3, verifier: str, circuit: ZokratesCircuit) -> None:
    """The package's verifier is generated from its verifying key (zokrates-js' export, then
    zkfl's adaptation), and the code at ``verifier`` is its compilation, byte for byte."""
    expected = circuit.root / "Verifier.expected.sol"
    with build_lock(circuit.root):  # clients on one machine share the folder
        if not expected.exists():
            write_verifier(circuit, expected)
    if expected.read_text() != circuit.verifier_sol.read_text():
        raise ZkflError("the package's verifier contract was not generated from its verifying key")
    deployed = "0x" + bytes(w3.eth.get_code(Web3.to_checksum_address(verifier))).hex()
    if deployed.lower() != compile_contract(circuit.verifier_sol, "Verifier").runtime.lower():
        raise ZkflError(f"the verifier at {verifier} was not generated from this task's verifying key")
