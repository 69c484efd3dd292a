"""Linked commitments, as built in zkfl (zkfl.circuits.linked, zkfl.prover.ezkl.linked).

Per model: the linked step (data private, its outputs G, b, W, check as KZG points, no
Poseidon) against its hashed counterpart in bench/results/prove.json, and the FedAvg circuit
for any number of clients at the step's logrows: one proof per client count, its input points
checked against the sum formed from the updates' points (``LinkConstants``), and the gas of
both verifiers on anvil. Updates for the FedAvg are random within the step's range; their
points are ``kzg_commit`` of their values, which is what a step proof shows (tests/test_linked.py).
Each model runs in its own process, so peak RSS is that model's. Medians over --repeats step
proofs. Writes bench/results/linked.json and prints a table.

    python bench/linked.py                 # logreg batch 16 and 32, the MLP 64-32-4 at batch 32
    python bench/linked.py --only logreg-30-b16
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "linked.json"
# name: (family, features, classes, hidden, batch, client counts proven for FedAvg)
CASES: dict[str, tuple[str, int, int, tuple[int, ...], int, tuple[int, ...]]] = {
    "logreg-30-b16": ("logreg", 30, 2, (), 16, (2, 8, 32, 128)),
    "logreg-30-b32": ("logreg", 30, 2, (), 32, (8,)),
    "mlp-64-32-4-b32": ("mlp", 64, 4, (32,), 32, (8,)),
}
UPDATE_BOUND = 2**14  # random updates' magnitude at the update scale (honest updates are of this order)


def _cold_setup(artifacts: Any) -> float:
    """Seconds of setup from no keys (an earlier run's are dropped first)."""
    from zkfl.prover.ezkl.prove import ensure_keys

    for key in (artifacts.vk, artifacts.pk):
        key.unlink(missing_ok=True)
    start = time.perf_counter()
    ensure_keys(artifacts)
    return round(time.perf_counter() - start, 2)


def _verify_gas(artifacts: Any, proof: Any) -> tuple[int, int, bool]:
    """(verifier bytes, gas of verifyProof less 21,000, whether it went through the reusable adapter)."""
    from zkfl.contracts.chain import account_from_key, connect, dev_keys, start_anvil
    from zkfl.contracts.verifiers import compiled, deploy_circuit_verifier, needs_shared_verifier
    from zkfl.organisation import circuit_verifier

    source = circuit_verifier(artifacts)
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        address, _ = deploy_circuit_verifier(w3, account_from_key(dev_keys()[0]), source)
        abi = [{"type": "function", "name": "verifyProof", "stateMutability": "view", "outputs": [{"type": "bool"}],
                "inputs": [{"name": "proof", "type": "bytes"}, {"name": "instances", "type": "uint256[]"}]}]
        call = w3.eth.contract(address=address, abi=abi).functions.verifyProof(proof.proof_bytes, proof.instances)
        assert call.call() is True
        return compiled(source).deployed_size, call.estimate_gas() - 21_000, needs_shared_verifier(source)


def _step_row(name: str, repeats: int) -> tuple[dict[str, Any], Any]:
    from zkfl.circuits.registry import family, initial_parameters
    from zkfl.circuits.spec import ModelSpec
    from zkfl.field.binding import binding_chunks
    from zkfl.field.quantize import Quantizer
    from zkfl.prover.ezkl.circuit import build_linked_step_circuit
    from zkfl.prover.ezkl.linked import kzg_point, prove_linked_step

    fam_name, features, classes, hidden, batch, _ = CASES[name]
    spec = ModelSpec(fam_name, features, batch, 12, 0.5, classes=classes, hidden=hidden)
    step = build_linked_step_circuit(spec)
    setup_s = _cold_setup(step)
    q, fam, rng = Quantizer(spec.scale), family(fam_name), np.random.default_rng(0)
    theta = q.to_int(initial_parameters(spec) + rng.normal(0, 0.1, spec.param_count))
    x = q.to_int(rng.uniform(-3, 3, (batch, features)))
    y = q.to_int(fam.encode_labels(spec, rng.integers(0, classes, batch).astype(np.float64)))
    proofs = [prove_linked_step(step, theta, x, y, binding_chunks(bytes(range(32)))) for _ in range(repeats)]
    proof = proofs[-1]
    assert proof.points[2] == kzg_point(step, proof.outputs[2]), "the update's point is not its values'"
    settings = step.settings_json()
    verifier_bytes, gas, adapter = _verify_gas(step, proof)
    return {"case": name, "model": fam_name, "params": spec.param_count, "batch": batch, "rows": settings["num_rows"],
            "logrows": settings["run_args"]["logrows"], "inner_cols": settings["run_args"]["num_inner_cols"],
            "setup_s": setup_s, "prove_s": round(statistics.median(p.prove_seconds for p in proofs), 2),
            "proof_bytes": len(proof.proof_bytes), "verifier_bytes": verifier_bytes, "verify_gas": gas,
            "via_reusable_adapter": adapter, "repeats": repeats,
            "step_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}, step


def _fedavg_rows(step: Any, clients: tuple[int, ...]) -> dict[str, Any]:
    from zkfl.prover.ezkl.linked import LinkConstants, build_linked_fedavg, kzg_point, prove_linked_fedavg
    from zkfl.prover.fedavg import fedavg

    fed = build_linked_fedavg(step, step.update_scale)
    row: dict[str, Any] = {"fedavg_rows": fed.settings_json()["num_rows"], "fedavg_setup_s": _cold_setup(fed)}
    constants, rng, width = LinkConstants.of(step, fed), np.random.default_rng(1), step.spec.param_count
    proof = None
    for k in clients:
        updates = [[int(v) for v in rng.integers(-UPDATE_BOUND, UPDATE_BOUND, width)] for _ in range(k)]
        new_global = fedavg(updates, [step.spec.batch] * k, step.update_scale, step.spec.scale)
        proof = prove_linked_fedavg(fed, updates, new_global)
        start = time.perf_counter()
        formed = constants.fedavg_inputs([kzg_point(step, u) for u in updates])
        row[f"fedavg_points_s_k{k}"] = round(time.perf_counter() - start, 2)  # off chain, kzg_commit per update
        assert proof.instances == [0] and list(formed) == proof.points[:2], f"{k} clients: the sum does not link"
        row[f"fedavg_prove_s_k{k}"] = round(proof.prove_seconds, 2)
    assert proof is not None
    row["fedavg_proof_bytes"] = len(proof.proof_bytes)
    row["fedavg_verifier_bytes"], row["fedavg_verify_gas"], row["fedavg_via_reusable_adapter"] = _verify_gas(fed, proof)
    return row


def run_case(name: str, repeats: int) -> dict[str, Any]:
    row, step = _step_row(name, repeats)
    row.update(_fedavg_rows(step, CASES[name][5]))
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="cases to run (default: all)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.repeats)))
        return 0
    names = args.only or list(CASES)
    previous = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() else []
    rows = [r for r in previous if r.get("case") not in names and r.get("case") in CASES]
    for name in names:
        repeats = 1 if name.startswith("mlp") else args.repeats  # minutes a proof
        proc = subprocess.run([sys.executable, __file__, "--case", name, "--repeats", str(repeats)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{name}: failed: {proc.stderr.strip()[-600:]}", file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": "2-core CPU, 24 GB", "ezkl": "23.0.5",
                                   "note": "verify_gas: eth_estimateGas of verifyProof minus 21,000",
                                   "results": rows}, indent=2))
    header = ["case", "rows", "logrows", "setup_s", "prove_s", "verify_gas", "fedavg_rows", "fedavg_prove_s_k8",
              "fedavg_verify_gas", "peak_rss_mb"]
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row.get(h, "-")) for h in header))
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
