"""Gas of every Federation operation on anvil, with real proofs.

Per model and proving backend: the verifier it deploys with (the circuit's own verifier
when it fits the 24,576-byte limit, else the adapter over the backend's reusable
verifier), the gas of proof verification alone, and of each Federation operation.
`--zokrates` measures only the ZoKrates rows (the others are kept from the last run);
`--all` adds softmax (its proof takes minutes); `--batched` measures only the batched rows.
The batched rows relay the updates of `BATCH` participants in one `submitUpdates` transaction,
their proofs verified together (one random linear combination): ZoKrates (N + 3 pairings
for N proofs) and ezkl logreg's own verifier (one pairing for the batch, see
zkfl.prover.ezkl.deferred); each is split into what the calls to the verifier cost, traced
in the batch itself, and the Federation's own share. Writes bench/results/gas.json and prints a table.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount
from web3 import Web3

from zkfl.aggregator.fedavg import fedavg
from zkfl.circuits.registry import default_spec, family
from zkfl.circuits.spec import DEFAULT_SLOTS, ModelSpec
from zkfl.contracts.chain import account_from_key, connect, dev_keys, send, start_anvil
from zkfl.contracts.federation import Federation, SignedUpdate, TaskParams, deploy
from zkfl.contracts.solc import (
    CompiledContract,
    compile_contract,
    federation_contract,
    federation_extension_contract,
    poseidon_contract,
)
from zkfl.contracts.verifiers import (
    adapter_contract,
    compiled,
    deploy_circuit_verifier,
    deploy_reusable_adapter,
    deploy_verifier,
    needs_shared_verifier,
)
from zkfl.datasets import load
from zkfl.field.binding import binding_value
from zkfl.field.commit import commit
from zkfl.field.quantize import IntArray, Quantizer
from zkfl.organisation import circuit_verifier, prepare_aggregation_circuit, prepare_circuit
from zkfl.prover.ezkl.aggregation import prove_aggregation
from zkfl.prover.ezkl.circuit import CircuitArtifacts
from zkfl.prover.records import ReusableVerifier, StepCircuit, StepProof, VerifierSource
from zkfl.prover.registry import DEFAULT_BACKEND, backend_of
from zkfl.store import cid_of

RESULTS = Path(__file__).resolve().parent / "results" / "gas.json"
STAKE, REWARD = 10**17, 10**18
BASE_GAS = 21_000  # every transaction's base cost, taken off the verification figure
VERIFY_TX_GAS = 10_000_000  # the verification transaction's gas limit: ample, and what it uses does not depend on it


@dataclass(frozen=True)
class Case:
    model: str
    backend: str = DEFAULT_BACKEND
    force_reusable: bool = False  # through the shared verifier even when the circuit's own one fits
    label: str | None = None  # the row's verifier column; None: "per-circuit" or "reusable adapter"


ZOKRATES = Case("logreg", "zokrates", label="zokrates (Groth16)")
EZKL_BATCHED = Case("logreg", label="per-circuit")  # its verifier's verifyProofs pairs the batch once
BATCH = 8  # updates relayed in one submitUpdates transaction (the target: 120k gas each)


@dataclass(frozen=True)
class Setup:
    """A model's step circuit, its verifier and the two batches the bench proves."""

    spec: ModelSpec
    circuit: StepCircuit
    source: VerifierSource
    shared: ReusableVerifier | None  # the shared form it deploys with; None: its own verifier
    initial: IntArray
    batches: list[tuple[IntArray, IntArray]]

    def verifier_contract(self) -> CompiledContract:
        """The contract the task's verifier address holds: the adapter, or the circuit's own verifier."""
        return adapter_contract() if self.shared is not None else compiled(self.source)

    def prove(self, fed: Federation, task_id: int, wallet: str, batch: int) -> StepProof:
        """Proofs are bound to their task and wallet: made once both exist."""
        binding = binding_value(fed.w3.eth.chain_id, fed.address, task_id, wallet)
        return backend_of(self.circuit).prove_step(self.circuit, self.initial, *self.batches[batch], binding)


def set_up(case: Case) -> Setup:
    data = load("breast_cancer" if case.model == "logreg" else "digits")
    spec = default_spec(case.model, data.features, data.classes)
    circuit = prepare_circuit(spec, case.backend)
    source = circuit_verifier(circuit)
    shared = None
    if source.reusable is not None and (case.force_reusable or needs_shared_verifier(source)):
        shared = source.reusable()
    q, fam = Quantizer(12), family(case.model)
    rng = np.random.default_rng(0)
    batches = []
    for _ in (1, 2):
        rows = rng.choice(len(data.x_train), spec.batch, replace=False)
        batches.append((q.to_int(data.x_train[rows]), q.to_int(fam.encode_labels(spec, data.y_train[rows]))))
    return Setup(spec, circuit, source, shared, np.zeros(spec.param_count, dtype=np.int64), batches)


def last_gas(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["gasUsed"])


def deploy_contracts(w3: Web3, owner: LocalAccount, setup: Setup,
                     gas: dict[str, Any]) -> tuple[Federation, str, CircuitArtifacts, str]:
    """Poseidon, the Federation, the step's verifier and FedAvg's: (federation, verifier,
    FedAvg circuit, its verifier)."""
    poseidon, gas["deploy_poseidon"] = deploy(w3, owner, poseidon_contract())
    extension, gas["deploy_federation_extension"] = deploy(w3, owner, federation_extension_contract(), poseidon)
    fed_address, gas["deploy_federation"] = deploy(w3, owner, federation_contract(), poseidon, extension)
    if setup.shared is not None:
        verifier, _, gas["deploy_verifier"] = deploy_reusable_adapter(w3, owner, setup.shared)
        gas["deploy_verifier_note"] = "adapter with its VKA (the reusable verifier is deployed once per chain)"
    else:
        verifier, gas["deploy_verifier"] = deploy_verifier(w3, owner, setup.source)
    aggregation = prepare_aggregation_circuit(setup.circuit, DEFAULT_SLOTS)
    aggregation_verifier, _ = deploy_circuit_verifier(w3, owner, circuit_verifier(aggregation))
    return Federation(w3, fed_address), verifier, aggregation, aggregation_verifier


def task_and_joins(fed: Federation, keys: list[LocalAccount], setup: Setup, verifier: str,
                   aggregation_verifier: str, gas: dict[str, Any]) -> int:
    spec = setup.spec
    params = TaskParams(keys[1].address, verifier, aggregation_verifier, DEFAULT_SLOTS, int(time.time()) + 3600, 1,
                        spec.batch, STAKE, commit(setup.initial), cid_of(b"initial model"), cid_of(b"package"),
                        update_values=spec.param_count)
    task_id = fed.create_task(keys[0], params, REWARD)
    gas["create_task"] = last_gas(fed.w3)
    for wallet in (keys[2], keys[3]):
        fed.join(wallet, task_id, STAKE)
    gas["join"] = last_gas(fed.w3)
    return task_id


def verification_gas(w3: Web3, sender: LocalAccount, setup: Setup, verifier: str, proof: StepProof) -> int:
    """The gas a transaction calling the verifier alone uses, less the base cost, with the
    verifier accepting the proof. Not an estimate: eth_estimateGas finds the least gas limit
    under which the call does not revert, which is above what verification uses when the
    verifier refuses to start on less than it may need (ZoKrates' 250k floor) or passes
    63/64 of its gas on, and below it when starving the inner call turns into a rejection
    instead of a revert (the adapter over ezkl's reusable verifier)."""
    contract = w3.eth.contract(address=Web3.to_checksum_address(verifier), abi=setup.verifier_contract().abi)
    call = contract.functions.verifyProof(proof.proof_bytes, proof.instances)
    assert call.call({"from": sender.address, "gas": VERIFY_TX_GAS}) is True
    return int(send(w3, sender, call, gas=VERIFY_TX_GAS)["gasUsed"]) - BASE_GAS


def submissions(fed: Federation, keys: list[LocalAccount], setup: Setup, task_id: int, verifier: str,
                gas: dict[str, Any]) -> StepProof:
    """A valid update, and one whose claimed commitment is not the proven one: the valid proof."""
    good, bad = setup.prove(fed, task_id, keys[2].address, 0), setup.prove(fed, task_id, keys[3].address, 1)
    gas["verify_proof_only"] = verification_gas(fed.w3, keys[0], setup, verifier, good)
    signature = fed.sign_submission(keys[2], task_id, 0, good.update_commitment, good.update, good.instances,
                                    good.proof_bytes)
    result = fed.submit_update(keys[1], task_id, 0, keys[2].address, good.update_commitment, good.update,
                               good.proof_bytes, good.instances, signature)
    assert result.accepted, result
    gas["submit_accepted"] = result.gas_used
    signature = fed.sign_submission(keys[3], task_id, 0, 12345, bad.update, bad.instances, bad.proof_bytes)
    result = fed.submit_update(keys[1], task_id, 0, keys[3].address, 12345, bad.update, bad.proof_bytes,
                               bad.instances, signature)
    assert not result.accepted
    gas["submit_rejected_update_mismatch"] = result.gas_used
    return good


def publish_settle_withdraw(fed: Federation, keys: list[LocalAccount], setup: Setup, task_id: int,
                            aggregation: CircuitArtifacts, good: StepProof, gas: dict[str, Any]) -> None:
    spec = setup.spec
    model = fedavg([good.update], [spec.batch], good.update_scale, spec.scale)
    proof = prove_aggregation(aggregation, [good.update], [spec.batch], model)
    gas["publish_with_fedavg_proof"] = fed.publish_global_model(
        keys[1], task_id, 0, commit(np.array(model)), cid_of(b"model"), cid_of(b"manifest"), proof.proof_bytes,
        proof.instances).gas_used
    gas["fedavg_verifier_bytes"] = compiled(circuit_verifier(aggregation)).deployed_size
    send(fed.w3, keys[4], fed.contract.functions.settle(task_id))
    gas["settle"] = last_gas(fed.w3)
    fed.withdraw(keys[2], task_id)
    gas["withdraw"] = last_gas(fed.w3)


def sizes(setup: Setup, gas: dict[str, Any]) -> None:
    gas["federation_bytes"] = federation_contract().deployed_size
    gas["federation_extension_bytes"] = federation_extension_contract().deployed_size
    gas["verifier_bytes"] = setup.verifier_contract().deployed_size
    if setup.shared is not None:
        gas["reusable_verifier_bytes"] = compile_contract(setup.shared.solidity, setup.shared.contract).deployed_size


def measure(case: Case) -> dict[str, Any]:
    setup = set_up(case)
    label = case.label or ("reusable adapter" if setup.shared is not None else "per-circuit")
    gas: dict[str, Any] = {"model": case.model, "params": setup.spec.param_count, "verifier": label}
    keys = [account_from_key(k) for k in dev_keys()]
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        fed, verifier, aggregation, aggregation_verifier = deploy_contracts(w3, keys[0], setup, gas)
        task_id = task_and_joins(fed, keys, setup, verifier, aggregation_verifier, gas)
        good = submissions(fed, keys, setup, task_id, verifier, gas)
        publish_settle_withdraw(fed, keys, setup, task_id, aggregation, good, gas)
        sizes(setup, gas)
    return gas


def measure_batch(case: Case, size: int = BATCH) -> dict[str, Any]:
    """`size` participants' accepted updates relayed in one transaction, proofs verified together."""
    setup = set_up(case)
    gas: dict[str, Any] = {"model": case.model, "params": setup.spec.param_count,
                           "verifier": f"{case.label or case.backend}, batched", "batch": size}
    keys = [account_from_key(k) for k in dev_keys()]  # the organisation, the relayer, then the participants
    if len(keys) < size + 2:
        raise SystemExit(f"a batch of {size} needs {size + 2} funded accounts; anvil has {len(keys)}")
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        fed, verifier, _, aggregation_verifier = deploy_contracts(w3, keys[0], setup, {})
        params = TaskParams(keys[1].address, verifier, aggregation_verifier, size, int(time.time()) + 3600, 1,
                            setup.spec.batch, STAKE, commit(setup.initial), cid_of(b"initial model"),
                            cid_of(b"package"), update_values=setup.spec.param_count)
        task_id = fed.create_task(keys[0], params, REWARD)
        wallets = keys[2:size + 2]
        for wallet in wallets:
            fed.join(wallet, task_id, STAKE)
        with ThreadPoolExecutor(max_workers=backend_of(setup.circuit).parallel_provers) as pool:
            proofs = list(pool.map(lambda iw: setup.prove(fed, task_id, iw[1].address, iw[0] % 2),
                                   enumerate(wallets)))
        updates = [SignedUpdate(w.address, p.update_commitment, p.update, p.proof_bytes, p.instances,
                                fed.sign_submission(w, task_id, 0, p.update_commitment, p.update, p.instances,
                                                    p.proof_bytes)) for w, p in zip(wallets, proofs, strict=True)]
        result = fed.submit_updates(keys[1], task_id, 0, updates)
        assert result.together and all(r.accepted for r in result.results.values()), result
        gas["submit_accepted"] = result.gas_used
        gas["submit_accepted_per_update"] = result.gas_per_update
        gas["verification_share_per_update"] = traced_verification_gas(w3, result.tx_hash, verifier) // size
    gas["federation_share_per_update"] = gas["submit_accepted_per_update"] - gas["verification_share_per_update"]
    return gas


def traced_verification_gas(w3: Web3, tx_hash: str, verifier: str) -> int:
    """What the calls to ``verifier`` cost inside transaction ``tx_hash`` (a call trace): the rest
    of the transaction is the Federation's own share (storage, calldata, events, signatures).
    Measured in the batch itself, not with a stand-in verifier, whose cheap transaction EIP-7623's
    calldata floor would price instead (an ezkl batch's 8 proofs of 3,200 bytes: 152.5k an update)."""
    trace = w3.provider.make_request("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])  # type: ignore[arg-type]

    def spent(call: dict[str, Any]) -> int:
        if str(call.get("to", "")).lower() == verifier.lower():
            return int(call["gasUsed"], 16)
        return sum(spent(inner) for inner in call.get("calls", []))

    return spent(trace["result"])


def main() -> int:
    cases = [Case("logreg"), Case("logreg", force_reusable=True), ZOKRATES]
    batched = [ZOKRATES, EZKL_BATCHED]
    if "--zokrates" in sys.argv:  # only the ZoKrates rows; the others are kept from the last run
        cases, batched = [ZOKRATES], [ZOKRATES]
    if "--batched" in sys.argv:  # only the batched rows
        cases = []
    cases += [Case("softmax")] if "--all" in sys.argv else []
    fresh = [measure(case) for case in cases] + [measure_batch(case) for case in batched]
    previous = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() else []
    names = {(r["model"], r["verifier"]) for r in fresh}
    rows = [r for r in previous if (r["model"], r["verifier"]) not in names] + fresh
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"chain": "anvil 1.7.1", "prover": "ezkl 23.0.5", "size_limit_bytes": 24_576,
                                   "results": rows}, indent=2))
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("model", "deploy_verifier_note", "note")]
    print("operation | " + " | ".join(f"{r['model']} ({r['verifier']})" for r in rows))
    for key in keys:
        print(f"{key} | " + " | ".join(f"{r.get(key, '-'):,}" if isinstance(r.get(key), int) else str(r.get(key, "-"))
                                      for r in rows))
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
