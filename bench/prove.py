"""Proving benchmark: per model and batch, circuit size and setup/prove/verify costs.

Each case runs in its own process, so peak RSS is that case's. Medians over
--repeats proofs. Writes bench/results/prove.json and prints a table. The reference
MLP 64-32-4 at batch 32 runs by default (about 22 GB and minutes per proof with
in-circuit Poseidon); `--quick` leaves it out.

`--aggregation` benchmarks the FedAvg proof instead (bench/results/aggregation.json):
rounds of 2, 8, 32 and 128 clients of logistic regression and of the MLP 64-32-4, with
the gas of verifying it on anvil. Circuits whose rows need more than ``--max-logrows``
(default 19: about 12 GB here) are sized but not proven; those over
``MAX_BUILT_VALUES`` update values in all are not even compiled (their rows are
extrapolated from the built cases of the same model, and marked so).
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

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "prove.json"
# name: (family, features, classes, hidden, batch)
CASES: dict[str, tuple[str, int, int, tuple[int, ...], int]] = {
    "logreg-30-b16": ("logreg", 30, 2, (), 16),
    "logreg-30-b32": ("logreg", 30, 2, (), 32),
    "softmax-64x10-b16": ("softmax", 64, 10, (), 16),
    "mlp-64-16-10-b16": ("mlp", 64, 10, (16,), 16),
    "mlp-64-32-4-b32": ("mlp", 64, 4, (32,), 32),  # the reference case of issue 16's targets
    "logreg-30-b32-pinned": ("logreg", 30, 2, (), 32),
}
QUICK_SKIPS = ("mlp-64-32-4-b32",)
# The step of a task that pins data (ModelSpec.commits_data: inputs hashed, H(X) and H(y) public),
# beside the default data-private step of the same shape.
PINNED = ("logreg-30-b32-pinned", "zokrates-logreg-30-b16-pinned")
# The ZoKrates backend (Groth16): the linear models, at sizes zokrates-js can hold.
ZOKRATES_CASES = {"zokrates-logreg-30-b16": ("logreg", 30, 2, (), 16),
                  "zokrates-logreg-30-b16-pinned": ("logreg", 30, 2, (), 16),
                  "zokrates-softmax-13x3-b16": ("softmax", 13, 3, (), 16)}
AGGREGATION_RESULTS = Path(__file__).resolve().parent / "results" / "aggregation.json"
# name: (family, features, classes, hidden, clients)
AGGREGATION_CASES: dict[str, tuple[str, int, int, tuple[int, ...], int]] = {
    **{f"fedavg-logreg-30-k{k}": ("logreg", 30, 2, (), k) for k in (2, 8, 32, 128)},
    **{f"fedavg-mlp-64-32-4-k{k}": ("mlp", 64, 4, (32,), k) for k in (2, 8, 32, 128)},
}
# Compiling a FedAvg circuit over more update values than this takes more memory than the
# machine has (ezkl lays the whole graph out first): its rows are extrapolated instead.
MAX_BUILT_VALUES = 20_000


def run_aggregation_case(name: str, repeats: int, max_logrows: int) -> dict[str, object]:
    from zkfl.aggregator.fedavg import fedavg
    from zkfl.circuits.spec import ModelSpec
    from zkfl.contracts.chain import account_from_key, connect, dev_keys, start_anvil
    from zkfl.contracts.verifiers import compiled, deploy_circuit_verifier, needs_shared_verifier
    from zkfl.organisation import circuit_verifier
    from zkfl.prover.ezkl.aggregation import build_aggregation_circuit, prove_aggregation
    from zkfl.prover.ezkl.circuit import build_circuit
    from zkfl.prover.ezkl.prove import ensure_keys

    fam_name, features, classes, hidden, clients = AGGREGATION_CASES[name]
    spec = ModelSpec(fam_name, features, 16, 12, 0.5, classes=classes, hidden=hidden)
    if clients * spec.param_count > MAX_BUILT_VALUES:
        return {"case": name, "model": fam_name, "params": spec.param_count, "clients": clients,
                "skipped": f"not compiled: {clients * spec.param_count:,} update values > {MAX_BUILT_VALUES:,}"}
    update_scale = build_circuit(spec).update_scale
    start = time.perf_counter()
    artifacts = build_aggregation_circuit(spec, clients, update_scale)
    build_s = time.perf_counter() - start
    settings = artifacts.settings_json()
    row: dict[str, object] = {
        "case": name, "model": fam_name, "params": spec.param_count, "clients": clients,
        "rows": settings["num_rows"], "logrows": settings["run_args"]["logrows"], "build_s": round(build_s, 2),
    }
    if settings["run_args"]["logrows"] > max_logrows:
        row["skipped"] = f"logrows {settings['run_args']['logrows']} > {max_logrows}: not proven on this machine"
        return row
    start = time.perf_counter()
    ensure_keys(artifacts)
    row["setup_s"] = round(time.perf_counter() - start, 2)
    rng = np.random.default_rng(0)
    bound = 2 ** (update_scale + 2)  # updates of magnitude up to 4
    updates = [[int(v) for v in rng.integers(-bound, bound, spec.param_count)] for _ in range(clients)]
    counts = [spec.batch] * clients
    model = fedavg(updates, counts, update_scale, spec.scale)
    times = []
    for _ in range(repeats):
        proof = prove_aggregation(artifacts, updates, counts, model)
        times.append(proof.prove_seconds)
    row["prove_s"] = round(statistics.median(times), 2)
    row["proof_bytes"] = len(proof.proof_bytes)
    source = circuit_verifier(artifacts)
    row["verifier_bytes"] = compiled(source).deployed_size
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        verifier, _ = deploy_circuit_verifier(w3, account_from_key(dev_keys()[0]), source)
        abi = [{"type": "function", "name": "verifyProof", "stateMutability": "view", "outputs": [{"type": "bool"}],
                "inputs": [{"name": "proof", "type": "bytes"}, {"name": "instances", "type": "uint256[]"}]}]
        call = w3.eth.contract(address=verifier, abi=abi).functions.verifyProof(proof.proof_bytes, proof.instances)
        assert call.call() is True
        row["verify_gas"] = call.estimate_gas() - 21_000  # the verification alone, without the base cost
        row["via_reusable_adapter"] = needs_shared_verifier(source)
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


def _extrapolate_rows(rows: list[dict[str, object]]) -> None:
    """Rows of uncompiled cases from the largest compiled case of the same model: rows grow
    linearly in the (clients + 1) x params values the circuit hashes."""
    for row in rows:
        if "rows" in row or "params" not in row:
            continue
        built = [r for r in rows if r.get("model") == row["model"] and "rows" in r]
        if built:
            ref = max(built, key=lambda r: int(str(r["clients"])))
            per_value = int(str(ref["rows"])) / ((int(str(ref["clients"])) + 1) * int(str(ref["params"])))
            row["rows_estimated"] = round(per_value * (int(str(row["clients"])) + 1) * int(str(row["params"])))


def aggregation_main(repeats: int, max_logrows: int, names: list[str]) -> int:
    # Rows of cases not run this time are kept from the last results.
    previous = json.loads(AGGREGATION_RESULTS.read_text())["results"] if AGGREGATION_RESULTS.exists() else []
    rows = [r for r in previous if r.get("case") not in names and r.get("case") in AGGREGATION_CASES]
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--aggregation-case", name, "--repeats", str(repeats),
                               "--max-logrows", str(max_logrows)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{name}: failed: {proc.stderr.strip()[-400:]}", file=sys.stderr)
            rows.append({"case": name, "failed": proc.stderr.strip()[-300:]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    _extrapolate_rows(rows)
    AGGREGATION_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    AGGREGATION_RESULTS.write_text(json.dumps({
        "machine": "2-core CPU, 24 GB", "ezkl": "23.0.5", "target": "8 MLP 64-32-4 updates in <= 30 s, <= 500k gas",
        "note": "verify_gas: eth_estimateGas of verifyProof minus 21,000; verifiers over 24,576 bytes go through "
                "EzklReusableAdapter", "results": rows}, indent=2))
    header = ["case", "params", "clients", "rows", "rows_estimated", "logrows", "setup_s", "prove_s", "proof_bytes",
              "verify_gas", "peak_rss_mb"]
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row.get(h, "-")) for h in header) + (f"  ({row['skipped']})" if "skipped" in row else ""))
    print(f"written to {AGGREGATION_RESULTS}", file=sys.stderr)
    return 0


def run_case(name: str, repeats: int) -> dict[str, object]:
    from zkfl.circuits.registry import family, initial_parameters
    from zkfl.circuits.spec import CIRCUIT_VERSION, ModelSpec
    from zkfl.contracts.verifiers import compiled
    from zkfl.field.binding import binding_chunks
    from zkfl.field.quantize import Quantizer
    from zkfl.organisation import circuit_verifier
    from zkfl.prover.ezkl.circuit import build_circuit
    from zkfl.prover.ezkl.prove import ensure_keys, prove_step, verify_proof

    fam_name, features, classes, hidden, batch = CASES[name]
    spec = ModelSpec(fam_name, features, batch, 12, 0.5, classes=classes, hidden=hidden, commits_data=name in PINNED)
    fam, q = family(fam_name), Quantizer(spec.scale)
    start = time.perf_counter()
    artifacts = build_circuit(spec)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    ensure_keys(artifacts)
    setup_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    theta = q.to_int(initial_parameters(spec) + rng.normal(0, 0.1, spec.param_count))
    x = q.to_int(rng.uniform(-3, 3, (batch, features)))
    labels = fam.encode_labels(spec, rng.integers(0, classes, batch).astype(np.float64))
    y = q.to_int(labels)
    binding = binding_chunks(bytes(range(32)))
    prove_times, verify_times, float_times = [], [], []
    proof_bytes = 0
    for _ in range(repeats):
        proof = prove_step(artifacts, theta, x, y, binding)
        prove_times.append(proof.prove_seconds)
        proof_bytes = len(proof.proof_bytes)
        start = time.perf_counter()
        ok, reason = verify_proof(artifacts, proof.proof)
        verify_times.append((time.perf_counter() - start) * 1000)
        assert ok, reason
        start = time.perf_counter()
        fam.float_step(spec, q.to_float(theta), q.to_float(x), labels)
        float_times.append((time.perf_counter() - start) * 1000)
    settings = artifacts.settings_json()
    verifier_bytes = compiled(circuit_verifier(artifacts)).deployed_size
    return {
        "case": name, "model": fam_name, "features": features, "classes": classes, "hidden": list(hidden),
        "batch": batch, "params": spec.param_count, "circuit_version": CIRCUIT_VERSION, "rows": settings["num_rows"],
        "poseidon_rows": settings["module_sizes"]["poseidon"][0], "logrows": settings["run_args"]["logrows"],
        "build_s": round(build_s, 2), "setup_s": round(setup_s, 2),
        "prove_s": round(statistics.median(prove_times), 2), "verify_ms": round(statistics.median(verify_times), 1),
        "proof_bytes": proof_bytes, "verifier_bytes": verifier_bytes,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "float_step_ms": round(statistics.median(float_times), 3), "repeats": repeats,
    }


def run_zokrates_case(name: str, repeats: int) -> dict[str, object]:
    from zkfl.circuits.registry import family
    from zkfl.circuits.spec import ModelSpec
    from zkfl.contracts.chain import account_from_key, connect, dev_keys, send, start_anvil
    from zkfl.contracts.verifiers import compiled, deploy_verifier
    from zkfl.field.binding import binding_chunks
    from zkfl.field.quantize import Quantizer
    from zkfl.organisation import circuit_verifier
    from zkfl.prover.zokrates.circuit import build_circuit, prove_step, verify_step
    from zkfl.prover.zokrates.driver import run

    fam_name, features, classes, _, batch = ZOKRATES_CASES[name]
    spec = ModelSpec(fam_name, features, batch, 12, 0.5, classes=classes, commits_data=name in PINNED)
    start = time.perf_counter()
    circuit = build_circuit(spec)
    build_s = time.perf_counter() - start
    q, rng = Quantizer(spec.scale), np.random.default_rng(0)
    theta = q.to_int(rng.normal(0, 0.1, spec.param_count))
    x = q.to_int(rng.uniform(-3, 3, (batch, features)))
    y = q.to_int(family(fam_name).encode_labels(spec, rng.integers(0, classes, batch).astype(np.float64)))
    prove_times, verify_times, node_times = [], [], []
    for _ in range(repeats):
        proof = prove_step(circuit, theta, x, y, binding_chunks(bytes(range(32))))
        prove_times.append(proof.timings["prove"] + proof.timings["witness"])
        start = time.perf_counter()
        ok, reason = verify_step(circuit, proof.proof_bytes, proof.instances)
        verify_times.append((time.perf_counter() - start) * 1000)
        assert ok, reason
        start = time.perf_counter()
        assert run("verify", vk=circuit.vk, proof={k: v for k, v in proof.proof.items() if k != "hex_proof"})["ok"]
        node_times.append((time.perf_counter() - start) * 1000)
    source = circuit_verifier(circuit)
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        address, _ = deploy_verifier(w3, account_from_key(dev_keys()[0]), source)
        contract = w3.eth.contract(address=address, abi=compiled(source).abi)
        # Gas used by a transaction: an estimate would report the adapter's 250k starvation floor.
        receipt = send(w3, account_from_key(dev_keys()[0]), contract.functions.verifyProof(proof.proof_bytes,
                                                                                          proof.instances))
        gas = int(receipt["gasUsed"]) - 21_000
    compile_info = json.loads((circuit.root / "compile.json").read_text())
    return {
        "case": name, "backend": "zokrates (Groth16, zokrates-js 1.1.9)", "model": fam_name, "features": features,
        "batch": batch, "params": spec.param_count, "constraints": compile_info["constraints"],
        "compile_s": compile_info["seconds"], "setup_s": circuit.setup_record().get("seconds"),
        "build_s_this_run": round(build_s, 2), "prove_s": round(statistics.median(prove_times), 2),
        "verify_ms": round(statistics.median(verify_times), 1), "verify_ms_node": round(statistics.median(node_times)),
        "verify_gas": gas, "proof_bytes": len(proof.proof_bytes), "verifier_bytes": compiled(source).deployed_size,
        "pk_bytes": circuit.path("pk").stat().st_size,
        "peak_rss_mb_node": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "repeats": repeats,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="leave out the large reference MLP")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    parser.add_argument("--aggregation", action="store_true", help="benchmark the FedAvg proof instead")
    parser.add_argument("--max-logrows", type=int, default=19, help="size, but do not prove, larger circuits")
    parser.add_argument("--only", nargs="*", help="cases to run (default: all)")
    parser.add_argument("--aggregation-case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        runner = run_zokrates_case if args.case in ZOKRATES_CASES else run_case
        print(json.dumps(runner(args.case, args.repeats)))
        return 0
    if args.aggregation_case:
        print(json.dumps(run_aggregation_case(args.aggregation_case, args.repeats, args.max_logrows)))
        return 0
    if args.aggregation:
        return aggregation_main(args.repeats, args.max_logrows, args.only or list(AGGREGATION_CASES))
    names = args.only or [n for n in [*CASES, *ZOKRATES_CASES] if not (args.quick and n in QUICK_SKIPS)]
    # Rows of cases not run this time are kept from the last results.
    previous = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() else []
    rows = [r for r in previous if r["case"] not in names]
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--case", name, "--repeats", str(args.repeats)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{name}: failed: {proc.stderr.strip()[-400:]}", file=sys.stderr)
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    order = [*CASES, *ZOKRATES_CASES]
    rows.sort(key=lambda row: order.index(row["case"]) if row["case"] in order else len(order))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": "2-core CPU, 24 GB", "ezkl": "23.0.5", "scale": 12,
                                   "note": "setup_s includes generating the local SRS when not cached",
                                   "results": rows}, indent=2))
    header = ["case", "params", "rows", "logrows", "setup_s", "prove_s", "verify_ms", "proof_bytes",
              "verifier_bytes", "peak_rss_mb", "float_step_ms"]
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row.get(h, "-")) for h in header))
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
