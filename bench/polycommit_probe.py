"""What the step circuit costs without in-circuit Poseidon: the first measurement of issue 16's
linked-commitment design (docs/performance.md, "Linked commitments").

For a model family, the step circuit zkfl builds today (inputs and outputs `hashed/public`) and
the same circuit with `polycommit` inputs and outputs (each tensor committed by the KZG
commitment of its own advice column; the points lead the proof bytes). Both with one inner
column, as zkfl lays circuits out. Per variant: rows, logrows, and with `--prove` setup and
prove seconds, proof bytes, peak RSS of the process, verifier bytes and the gas of a sent
`verifyProof` call on anvil, less 21,000. This is a probe, not zkfl's circuit: nothing here is
used by a task. Each variant runs in its own process (peak RSS is its own) under its own
ZKFL_HOME in --work. Writes bench/results/polycommit_probe.json.

    python bench/polycommit_probe.py --model mlp --prove   # the MLP 64-32-4 at batch 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "polycommit_probe.json"
MODELS = {"logreg": ("logreg", 30, 2, (), 32), "mlp": ("mlp", 64, 4, (32,), 32)}
VISIBILITIES = ("hashed/public", "polycommit")
BASE_GAS = 21_000


def _spec(model: str) -> Any:
    from zkfl.circuits.spec import ModelSpec

    fam, features, classes, hidden, batch = MODELS[model]
    # The step as probed (circuit version 5): every input given the probe's visibility, two outputs.
    return ModelSpec(fam, features, batch, 12, 0.5, classes=classes, hidden=hidden, commits_data=True)


def _build(model: str, visibility: str) -> Any:
    """zkfl's step circuit for the model, its inputs and outputs given ``visibility``."""
    import zkfl.prover.ezkl.circuit as circuit

    default_args = circuit.run_args

    def probe_args(spec: Any) -> Any:
        args = default_args(spec)
        args.input_visibility = args.output_visibility = visibility
        return args

    circuit.run_args = probe_args
    return circuit.build_circuit(_spec(model))


def _evm_gas(artifacts: Any, proof: dict[str, Any], work: Path) -> dict[str, int]:
    from zkfl.contracts.chain import account_from_key, connect, dev_keys, send, start_anvil
    from zkfl.contracts.federation import deploy
    from zkfl.contracts.solc import compile_contract
    from zkfl.field.ezkl_api import ezkl
    from zkfl.field.quantize import felt_to_uint

    sol, abi = work / "Verifier.sol", work / "Verifier.abi"

    async def create() -> None:
        await ezkl.create_evm_verifier(str(artifacts.vk), str(artifacts.settings), str(sol), str(abi),
                                       srs_path=str(artifacts.srs), reusable=False)

    try:
        asyncio.run(create())
    except RuntimeError:
        if not sol.exists():  # offline, ezkl fails after writing the source (its solc download): fine
            raise
    compiled = compile_contract(sol, "Halo2Verifier")
    instances = [felt_to_uint(v) for v in proof["instances"][0]] if proof["instances"] else []
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        owner = account_from_key(dev_keys()[0])
        address, _ = deploy(w3, owner, compiled)
        call = w3.eth.contract(address=address, abi=compiled.abi).functions.verifyProof(
            bytes.fromhex(proof["hex_proof"].removeprefix("0x")), instances)
        assert call.call({"gas": 30_000_000}) is True
        gas = int(send(w3, owner, call, gas=30_000_000)["gasUsed"]) - BASE_GAS
    return {"verifier_bytes": compiled.deployed_size, "verify_gas": gas}


def _prove(artifacts: Any, work: Path) -> dict[str, Any]:
    from zkfl.field.ezkl_api import ezkl
    from zkfl.prover.ezkl.circuit import example_inputs

    started = time.perf_counter()
    ezkl.setup(str(artifacts.compiled), str(artifacts.vk), str(artifacts.pk), srs_path=str(artifacts.srs))
    setup_s = time.perf_counter() - started
    data, witness, proof_path = work / "input.json", work / "witness.json", work / "proof.json"
    data.write_text(json.dumps({"input_data": [t.flatten().tolist() for t in example_inputs(artifacts.spec, 1)]}))
    # polycommit: the witness carries the commitments only when given the vk and the SRS.
    ezkl.gen_witness(str(data), str(artifacts.compiled), str(witness), str(artifacts.vk), str(artifacts.srs))
    started = time.perf_counter()
    ezkl.prove(str(witness), str(artifacts.compiled), str(artifacts.pk), str(proof_path), str(artifacts.srs))
    prove_s = time.perf_counter() - started
    assert ezkl.verify(str(proof_path), str(artifacts.settings), str(artifacts.vk), str(artifacts.srs))
    proof = json.loads(proof_path.read_text())
    row = {"setup_s": round(setup_s, 2), "prove_s": round(prove_s, 2),
           "proof_bytes": len(bytes.fromhex(proof["hex_proof"].removeprefix("0x")))}
    return row | _evm_gas(artifacts, proof, work)


def run_variant(model: str, visibility: str, prove: bool, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    artifacts = _build(model, visibility)
    settings = artifacts.settings_json()
    row: dict[str, Any] = {
        "model": model, "visibility": visibility, "params": artifacts.spec.param_count,
        "batch": artifacts.spec.batch, "rows": settings["num_rows"], "logrows": settings["run_args"]["logrows"],
        "build_s": round(time.perf_counter() - started, 2),
    }
    if prove:
        row |= _prove(artifacts, work)
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument("--prove", action="store_true", help="also set up, prove and verify on anvil")
    parser.add_argument("--work", type=Path, default=Path("/tmp/zkfl-polycommit-probe"))
    parser.add_argument("--only", choices=VISIBILITIES, help="one variant")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant, print JSON
    args = parser.parse_args()
    if args.variant:
        work = args.work / f"{args.model}-{args.variant.replace('/', '-')}"
        print(json.dumps(run_variant(args.model, args.variant, args.prove, work)))
        return 0
    rows = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() else []
    for visibility in [args.only] if args.only else VISIBILITIES:
        work = args.work / f"{args.model}-{visibility.replace('/', '-')}"
        work.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, __file__, "--model", args.model, "--work", str(args.work), "--variant", visibility]
        proc = subprocess.run(command + (["--prove"] if args.prove else []), capture_output=True, text=True,
                              env={**os.environ, "ZKFL_HOME": str(work / "home")}, check=False)
        row = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {
            "model": args.model, "visibility": visibility, "failed": proc.stderr.strip()[-400:]}
        rows = [r for r in rows if (r["model"], r["visibility"]) != (args.model, visibility)] + [row]
        print(json.dumps(row), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"ezkl": "23.0.5", "machine": "2-core CPU, 24 GB", "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
