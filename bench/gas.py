"""Gas of every Federation operation on anvil, with real ezkl proofs.

Per model: the verifier it deploys with (ezkl's per-circuit verifier when it fits the
24,576-byte limit, else the adapter over ezkl's reusable verifier), the gas of proof
verification alone, and of each Federation operation. `--all` adds softmax (its proof
takes minutes). Writes bench/results/gas.json and prints a table.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "gas.json"
STAKE, REWARD = 10**17, 10**18


def measure(model: str, force_reusable: bool = False, backend: str = "ezkl") -> dict[str, Any]:
    from zkfl.aggregator.fedavg import fedavg
    from zkfl.circuits.registry import default_spec, family
    from zkfl.circuits.spec import DEFAULT_SLOTS
    from zkfl.contracts.chain import account_from_key, connect, dev_keys, send, start_anvil
    from zkfl.contracts.federation import (
        Federation,
        TaskParams,
        adapter_contract,
        deploy,
        deploy_reusable_adapter,
        deploy_verifier,
    )
    from zkfl.contracts.solc import compile_contract, federation_contract, poseidon_contract
    from zkfl.datasets import load
    from zkfl.field.binding import binding_value
    from zkfl.field.commit import commit
    from zkfl.field.quantize import Quantizer
    from zkfl.organisation import (
        deploy_circuit_verifier,
        prepare_aggregation_circuit,
        prepare_circuit,
        uses_reusable_verifier,
    )
    from zkfl.prover.backends import prepare_step_circuit
    from zkfl.prover.backends import prove_step as prove_with_backend
    from zkfl.prover.ezkl.aggregation import prove_aggregation
    from zkfl.prover.ezkl.evm import reusable_verifier_source
    from zkfl.store import cid_of

    data = load("breast_cancer" if model == "logreg" else "digits")
    spec = default_spec(model, data.features, data.classes)
    artifacts = prepare_circuit(spec) if backend == "ezkl" else prepare_step_circuit(spec, backend)
    q, fam = Quantizer(12), family(model)
    rng = np.random.default_rng(0)
    initial = np.zeros(spec.param_count, dtype=np.int64)
    batches = []
    for _ in (1, 2):
        rows = rng.choice(len(data.x_train), spec.batch, replace=False)
        batches.append((q.to_int(data.x_train[rows]), q.to_int(fam.encode_labels(spec, data.y_train[rows]))))

    def prove_for(fed: Federation, task_id: int, wallet: str, batch: int) -> Any:
        """Proofs are bound to their task and wallet: made once both exist."""
        binding = binding_value(fed.w3.eth.chain_id, fed.address, task_id, wallet)
        return prove_with_backend(artifacts, initial, *batches[batch], binding)

    reusable = backend == "ezkl" and (force_reusable or uses_reusable_verifier(artifacts))
    gas: dict[str, Any] = {"model": model, "params": spec.param_count,
                           "verifier": "reusable adapter" if reusable else "per-circuit"}
    if backend == "zokrates":
        gas["verifier"] = "zokrates (Groth16)"
    keys = [account_from_key(k) for k in dev_keys()]
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        poseidon, gas["deploy_poseidon"] = deploy(w3, keys[0], poseidon_contract())
        fed_address, gas["deploy_federation"] = deploy(w3, keys[0], federation_contract(), poseidon)
        fed = Federation(w3, fed_address)
        if reusable:
            verifier, _, gas["deploy_verifier"] = deploy_reusable_adapter(
                w3, keys[0], ezkl_verifier(artifacts).reusable())
            gas["deploy_verifier_note"] = "adapter with its VKA (the reusable verifier is deployed once per chain)"
            abi = adapter_contract().abi
        elif backend == "zokrates":
            verifier, gas["deploy_verifier"] = deploy(w3, keys[0], compile_contract(artifacts.verifier_sol, "Verifier"))
            abi = compile_contract(artifacts.verifier_sol, "Verifier").abi
        else:
            verifier, gas["deploy_verifier"] = deploy_verifier(w3, keys[0], ezkl_verifier(artifacts))
            abi = compile_contract(artifacts.verifier_sol, "Halo2Verifier").abi
        contract = w3.eth.contract(address=verifier, abi=abi)
        aggregation = prepare_aggregation_circuit(artifacts, DEFAULT_SLOTS)
        aggregation_verifier, _ = deploy_circuit_verifier(w3, keys[0], ezkl_verifier(aggregation))
        params = TaskParams(keys[1].address, verifier, aggregation_verifier, DEFAULT_SLOTS, int(time.time()) + 3600, 1,
                            spec.batch, STAKE, commit(initial), cid_of(b"initial model"), cid_of(b"package"),
                            update_values=spec.param_count)
        task_id = fed.create_task(keys[0], params, REWARD)

        def last_gas() -> int:
            return int(w3.eth.get_block("latest")["gasUsed"])

        gas["create_task"] = last_gas()
        for wallet in (keys[2], keys[3]):
            fed.join(wallet, task_id, STAKE)
        gas["join"] = last_gas()
        good, bad = prove_for(fed, task_id, keys[2].address, 0), prove_for(fed, task_id, keys[3].address, 1)
        verify_call = contract.functions.verifyProof(good.proof_bytes, good.instances)
        if backend == "zokrates":
            # Gas used by a transaction: an estimate would report the adapter's 250k starvation floor.
            gas["verify_proof_only"] = int(send(w3, keys[0], verify_call)["gasUsed"]) - 21_000
        else:
            gas["verify_proof_only"] = int(verify_call.estimate_gas()) - 21_000
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
        model = fedavg([good.update], [spec.batch], good.update_scale, spec.scale)
        proof = prove_aggregation(aggregation, [good.update], [spec.batch], model)
        gas["publish_with_fedavg_proof"] = fed.publish_global_model(
            keys[1], task_id, 0, commit(np.array(model)), cid_of(b"model"), cid_of(b"manifest"), proof.proof_bytes,
            proof.instances).gas_used
        gas["fedavg_verifier_bytes"] = compile_contract(aggregation.verifier_sol, "Halo2Verifier").deployed_size
        send(w3, keys[4], fed.contract.functions.settle(task_id))
        gas["settle"] = last_gas()
        fed.withdraw(keys[2], task_id)
        gas["withdraw"] = last_gas()
        gas["federation_bytes"] = federation_contract().deployed_size
        gas["verifier_bytes"] = (adapter_contract() if reusable else compile_contract(
            artifacts.verifier_sol, "Verifier" if backend == "zokrates" else "Halo2Verifier")).deployed_size
        if reusable:
            gas["reusable_verifier_bytes"] = compile_contract(reusable_verifier_source(artifacts),
                                                              "Halo2VerifierReusable").deployed_size
    return gas


def main() -> int:
    cases = [("logreg", False, "ezkl"), ("logreg", True, "ezkl"), ("logreg", False, "zokrates")]
    if "--zokrates" in sys.argv:  # only the ZoKrates row; the others are kept from the last run
        cases = [("logreg", False, "zokrates")]
    cases += [("softmax", False, "ezkl")] if "--all" in sys.argv else []
    fresh = [measure(model, force, backend) for model, force, backend in cases]
    previous = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() else []
    names = {(r["model"], r["verifier"]) for r in fresh}
    rows = [r for r in previous if (r["model"], r["verifier"]) not in names] + fresh
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"chain": "anvil 1.7.1", "prover": "ezkl 23.0.5", "size_limit_bytes": 24_576,
                                   "results": rows}, indent=2))
    keys = [k for k in rows[0] if k not in ("model", "deploy_verifier_note")]
    print("operation | " + " | ".join(f"{r['model']} ({r['verifier']})" for r in rows))
    for key in keys:
        print(f"{key} | " + " | ".join(f"{r.get(key, '-'):,}" if isinstance(r.get(key), int) else str(r.get(key, "-"))
                                      for r in rows))
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
