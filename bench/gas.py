"""Gas of every Federation operation on anvil, with real ezkl proofs (logreg step).

Writes bench/results/gas.json and prints a table.
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


def main() -> int:
    from zkfl.circuits.registry import default_spec
    from zkfl.contracts.chain import account_from_key, connect, dev_keys, send, start_anvil
    from zkfl.contracts.federation import EIP170_LIMIT, Federation, TaskParams, deploy, deploy_verifier
    from zkfl.contracts.solc import compile_contract, federation_contract
    from zkfl.organisation import prepare_circuit
    from zkfl.prover.binding import binding_chunks
    from zkfl.prover.commit import commit
    from zkfl.prover.ezkl_backend import STEP_PUBLIC_LAYOUT, prove_step
    from zkfl.prover.quantize import Quantizer

    artifacts = prepare_circuit(default_spec("logreg", 30))
    spec, q = artifacts.spec, Quantizer(12)
    rng = np.random.default_rng(0)
    initial = np.zeros(spec.param_count, dtype=np.int64)
    proofs = []
    for seed in (1, 2):
        x = q.to_int(rng.uniform(-3, 3, (spec.batch, spec.features)))
        y = q.to_int(rng.integers(0, 2, (spec.batch, 1)))
        proofs.append(prove_step(artifacts, initial, x, y, binding_chunks(bytes([seed]) * 32)))
    gas: dict[str, Any] = {}
    keys = [account_from_key(k) for k in dev_keys()]
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        fed_address, gas["deploy_federation"] = deploy(w3, keys[0], federation_contract())
        fed = Federation(w3, fed_address)
        verifier, gas["deploy_verifier_logreg"] = deploy_verifier(w3, keys[0], artifacts.verifier_sol)
        verifier_abi = compile_contract(artifacts.verifier_sol, "Halo2Verifier").abi
        contract = w3.eth.contract(address=verifier, abi=verifier_abi)
        gas["verify_proof_only"] = int(contract.functions.verifyProof(proofs[0].proof_bytes, proofs[0].instances)
                                       .estimate_gas()) - 21_000
        params = TaskParams(keys[1].address, verifier, int(time.time()) + 3600, 1, spec.batch,
                            len(STEP_PUBLIC_LAYOUT), STAKE, commit(initial), b"\x01" * 32, b"\x02" * 32)
        before = w3.eth.block_number
        task_id = fed.create_task(keys[0], params, REWARD)
        gas["create_task"] = int(w3.eth.get_block(before + 1, full_transactions=False)["gasUsed"])

        def last_gas() -> int:
            return int(w3.eth.get_block("latest")["gasUsed"])

        for seed, wallet in ((1, keys[2]), (2, keys[3])):
            fed.join(wallet, task_id, STAKE, commit(binding_chunks(bytes([seed]) * 32)))
        gas["join"] = last_gas()
        good, bad = proofs
        signature = fed.sign_submission(keys[2], task_id, 0, good.update_commitment, good.instances, good.proof_bytes)
        result = fed.submit_update(keys[1], task_id, 0, keys[2].address, good.update_commitment, good.proof_bytes,
                                   good.instances, signature)
        assert result.accepted
        gas["submit_accepted"] = result.gas_used
        signature = fed.sign_submission(keys[3], task_id, 0, 12345, bad.instances, bad.proof_bytes)
        result = fed.submit_update(keys[1], task_id, 0, keys[3].address, 12345, bad.proof_bytes, bad.instances,
                                   signature)
        assert not result.accepted
        gas["submit_rejected_update_mismatch"] = result.gas_used
        gas["publish"] = fed.publish_global_model(keys[1], task_id, 0, 7, b"\x03" * 32)
        send(w3, keys[4], fed.contract.functions.settle(task_id))
        gas["settle"] = last_gas()
        fed.withdraw(keys[2], task_id)
        gas["withdraw"] = last_gas()
        sizes = {"federation_bytes": federation_contract().deployed_size,
                 "verifier_logreg_bytes": compile_contract(artifacts.verifier_sol, "Halo2Verifier").deployed_size,
                 "limit_bytes": EIP170_LIMIT}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"chain": "anvil 1.7.1", "verifier": "ezkl 23.0.5 (logreg, 5 public values)",
                                   "gas": gas, "sizes": sizes}, indent=2))
    print("operation | gas")
    for name, value in gas.items():
        print(f"{name} | {value:,}")
    for name, value in sizes.items():
        print(f"{name} | {value:,}")
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
