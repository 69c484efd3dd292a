"""Verifier gas of the logreg step circuit under ezkl setting variants (issue 16).

For each variant: build the step circuit with changed ``PyRunArgs`` (or compile its
verifier with other solc settings), set up keys, prove one step, and verify on a fresh
anvil. Recorded: rows, logrows, setup and prove seconds, proof bytes, verifier runtime
bytes, and the gas of a transaction calling ``verifyProof`` with a valid proof, less the
21,000 base. Each verifier must also refuse three tampered proofs (a flipped byte, a
commitment replaced by its negation, a public value + 1), so a cheaper variant that
accepts garbage shows up as ``rejects_tampered: false``.

Everything is built under ``--work`` (default /tmp/vgas), with its own ZKFL_HOME: the
project's circuit, SRS and solc caches are not touched. Variants run one at a time;
the JSON is rewritten after each. ``--only a,b`` runs some, keeping the other rows.
Writes bench/results/verifier_gas.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from zkfl.field import BASE_FIELD_MODULUS

RESULTS = Path(__file__).resolve().parent / "results" / "verifier_gas.json"
BASE_GAS = 21_000
VERIFY_TX_GAS = 10_000_000
EIP170_LIMIT = 24_576


@dataclass(frozen=True)
class Variant:
    name: str
    run_args: dict[str, Any] = field(default_factory=dict)  # PyRunArgs fields changed from zkfl's
    logrows: int | None = None  # None: what calibration picks
    solc_runs: int = 200  # zkfl.contracts.solc compiles with 200
    via_ir: bool = False
    batch: int = 16  # default_spec("logreg", 30).batch
    weakens: str = ""  # why the statement is weaker (not a candidate), if it is

    def changed(self) -> dict[str, Any]:
        """What differs from zkfl's step circuit and its verifier's compilation."""
        extra = {"logrows": self.logrows} if self.logrows is not None else {}
        extra |= {"solc_runs": self.solc_runs} if self.solc_runs != 200 else {}
        extra |= {"via_ir": True} if self.via_ir else {}
        extra |= {"batch": self.batch} if self.batch != 16 else {}
        return {**self.run_args, **extra}

    def circuit_key(self) -> str:
        material = json.dumps([self.run_args, self.logrows, self.batch], sort_keys=True)
        return hashlib.sha256(material.encode()).hexdigest()[:12]


VARIANTS: list[Variant] = [
    Variant("baseline"),
    Variant("inner_cols_1", {"num_inner_cols": 1}),
    Variant("inner_cols_4", {"num_inner_cols": 4}),
    Variant("logrows_plus_1", logrows=16),
    Variant("decomp_2x28", {"decomp_base": 2, "decomp_legs": 28}),
    Variant("freivalds_off", {"disable_freivalds": True}),
    Variant("no_io_range_check", {"ignore_range_check_inputs_outputs": True},
            weakens="drops the range checks ezkl puts on inputs and outputs (not a candidate, whatever it saves)"),
    Variant("solc_runs_1", solc_runs=1),
    Variant("solc_runs_1m", solc_runs=1_000_000),
    Variant("inner_cols_1+decomp_2x28", {"num_inner_cols": 1, "decomp_base": 2, "decomp_legs": 28}),
    Variant("inner_cols_1+solc_runs_10k", {"num_inner_cols": 1}, solc_runs=10_000),
    Variant("b32_baseline", batch=32),
    Variant("b32_inner_cols_1", {"num_inner_cols": 1}, batch=32),
]


@dataclass(frozen=True)
class Built:
    """A compiled circuit with keys, one proof of it, and its generated verifier source."""

    root: Path
    settings: dict[str, Any]
    setup_s: float
    prove_s: float
    proof: dict[str, Any]
    sol: Path


def export_onnx(work: Path, batch: int) -> tuple[Path, Path, Path]:
    """The step's ONNX, its calibration data and a second input to prove (once per batch)."""
    from zkfl.circuits.registry import default_spec, family
    from zkfl.prover.ezkl.circuit import example_inputs

    folder = work / f"onnx-b{batch}"
    onnx, calibration, prove_input = folder / "network.onnx", folder / "calibration.json", folder / "input.json"
    if onnx.exists():
        return onnx, calibration, prove_input
    folder.mkdir(parents=True, exist_ok=True)
    # The step as this sweep measured it (circuit version 5): inputs hashed, two outputs. Since
    # version 6 that is the step of a task that pins data; the default step differs in its hashes only.
    spec = replace(default_spec("logreg", 30, batch=batch), commits_data=True)
    inputs = example_inputs(spec)
    torch.onnx.export(family("logreg").step_module(spec), inputs, str(onnx),
                      input_names=["theta", "x", "y", "binding"], output_names=["theta_next", "input_check"],
                      dynamo=False, opset_version=17)
    calibration.write_text(json.dumps({"input_data": [t.flatten().tolist() for t in inputs]}))
    prove_input.write_text(json.dumps({"input_data": [t.flatten().tolist() for t in example_inputs(spec, 1)]}))
    return onnx, calibration, prove_input


def make_settings(variant: Variant, onnx: Path, calibration: Path, settings: Path) -> dict[str, Any]:
    """zkfl's run args (prover/ezkl/circuit.py ``run_args``) with the variant's changes, calibrated as zkfl does."""
    from zkfl.circuits.registry import default_spec
    from zkfl.field.ezkl_api import ezkl
    from zkfl.prover.ezkl.circuit import quiet_stdout, run_args

    spec = replace(default_spec("logreg", 30, batch=variant.batch), commits_data=True)  # as export_onnx's
    args = run_args(spec)
    for name, value in variant.run_args.items():
        setattr(args, name, value)
    with quiet_stdout():
        ezkl.gen_settings(str(onnx), str(settings), py_run_args=args)
        ezkl.calibrate_settings(str(calibration), str(onnx), str(settings), target="resources",
                                scales=[spec.scale])
    data = json.loads(settings.read_text())
    if variant.logrows is not None:
        data["run_args"]["logrows"] = variant.logrows
        settings.write_text(json.dumps(data))
    return data


def srs_for(work: Path, logrows: int) -> Path:
    """A local (insecure, development-only) SRS of exactly ``logrows``, made once per run folder."""
    from zkfl.field.ezkl_api import ezkl

    path = work / "srs" / f"kzg{logrows}.srs"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        ezkl.gen_srs(str(path.with_suffix(".tmp")), logrows)
        path.with_suffix(".tmp").replace(path)
    return path


async def _create_verifier(vk: Path, settings: Path, sol: Path, srs: Path) -> None:
    from zkfl.field.ezkl_api import ezkl

    await ezkl.create_evm_verifier(str(vk), str(settings), str(sol), str(sol.with_suffix(".abi")),
                                   srs_path=str(srs), reusable=False)


def generate_verifier(root: Path, srs: Path) -> Path:
    """ezkl writes the .sol, then fails to download solc offline (as in prover/ezkl/evm.py)."""
    sol = root / "Verifier.sol"
    with contextlib.suppress(RuntimeError):
        asyncio.run(_create_verifier(root / "vk.key", root / "settings.json", sol, srs))
    if not sol.exists() or "contract Halo2Verifier" not in sol.read_text():
        raise RuntimeError(f"ezkl did not write a verifier in {root}")
    return sol


def prove_once(root: Path, prove_input: Path, srs: Path) -> tuple[dict[str, Any], float]:
    """Witness, mock (fails fast out of range), one timed proof, and ezkl's own verification."""
    from zkfl.field.ezkl_api import ezkl

    compiled, witness, proof_path = root / "network.ezkl", root / "witness.json", root / "proof.json"
    ezkl.gen_witness(str(prove_input), str(compiled), str(witness))
    ezkl.mock(str(witness), str(compiled))
    start = time.perf_counter()
    ezkl.prove(str(witness), str(compiled), str(root / "pk.key"), str(proof_path), srs_path=str(srs))
    prove_s = time.perf_counter() - start
    if ezkl.verify(str(proof_path), str(root / "settings.json"), str(root / "vk.key"), srs_path=str(srs)) is not True:
        raise RuntimeError("ezkl.verify refused the fresh proof")
    return json.loads(proof_path.read_text()), prove_s


def build(variant: Variant, work: Path) -> Built:
    """Settings, compile, keys, one proof and the verifier source for the variant's circuit."""
    from zkfl.field.ezkl_api import ezkl

    root = work / "circuits" / variant.circuit_key()
    done = root / "built.json"
    if done.exists():
        meta = json.loads(done.read_text())
        return Built(root, meta["settings"], meta["setup_s"], meta["prove_s"], meta["proof"], root / "Verifier.sol")
    root.mkdir(parents=True, exist_ok=True)
    onnx, calibration, prove_input = export_onnx(work, variant.batch)
    settings = make_settings(variant, onnx, calibration, root / "settings.json")
    ezkl.compile_circuit(str(onnx), str(root / "network.ezkl"), str(root / "settings.json"))
    srs = srs_for(work, int(settings["run_args"]["logrows"]))
    start = time.perf_counter()
    ezkl.setup(str(root / "network.ezkl"), str(root / "vk.key"), str(root / "pk.key"), srs_path=str(srs))
    setup_s = time.perf_counter() - start
    proof, prove_s = prove_once(root, prove_input, srs)
    sol = generate_verifier(root, srs)
    (root / "pk.key").unlink()  # large, and not needed once the proof exists
    done.write_text(json.dumps({"settings": settings, "setup_s": setup_s, "prove_s": prove_s, "proof": proof}))
    return Built(root, settings, setup_s, prove_s, proof, sol)


def compile_verifier(sol: Path, runs: int, via_ir: bool) -> Any:
    """solc-js as zkfl.contracts.solc runs it, with the optimizer's runs and viaIR chosen here."""
    from zkfl.contracts.solc import _NODE_SCRIPT, CompiledContract
    from zkfl.paths import node_binary, openzeppelin_root, solc_js_module

    request = {"language": "Solidity", "sources": {sol.name: {"content": sol.read_text()}},
               "settings": {"optimizer": {"enabled": True, "runs": runs}, "viaIR": via_ir, "evmVersion": "cancun",
                            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object",
                                                            "evm.deployedBytecode.object"]}}}}
    proc = subprocess.run([node_binary(), "-e", _NODE_SCRIPT, str(solc_js_module()), str(openzeppelin_root())],
                          input=json.dumps(request), capture_output=True, text=True, check=True)
    output = json.loads(proc.stdout)["output"]
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError(errors[0].get("formattedMessage", str(errors[0])))
    artefact = output["contracts"][sol.name]["Halo2Verifier"]
    runtime = artefact["evm"]["deployedBytecode"]["object"]
    return CompiledContract("Halo2Verifier", artefact["abi"], "0x" + artefact["evm"]["bytecode"]["object"],
                            "0x" + runtime, len(runtime) // 2)


def tampered(proof: bytes, instances: list[int]) -> dict[str, tuple[bytes, list[int]]]:
    """Three forgeries: a byte flipped mid-proof, the first commitment negated (still a
    curve point, so only the pairing check can catch it), and the first public value + 1."""
    flipped = bytearray(proof)
    flipped[(len(proof) // 2) // 32 * 32 + 31] ^= 0x01
    negated = bytearray(proof)
    y = int.from_bytes(proof[32:64], "big")
    negated[32:64] = ((BASE_FIELD_MODULUS - y) % BASE_FIELD_MODULUS).to_bytes(32, "big")
    shifted = [instances[0] + 1, *instances[1:]]
    return {"flip_byte": (bytes(flipped), instances), "negate_commitment": (bytes(negated), instances),
            "public_value_plus_1": (proof, shifted)}


def accepts(contract: Any, sender: str, proof: bytes, instances: list[int]) -> bool:
    """A verifier accepts only by returning true; a revert or any other answer is a rejection."""
    try:
        return contract.functions.verifyProof(proof, instances).call({"from": sender, "gas": VERIFY_TX_GAS}) is True
    except Exception:  # web3 raises on a revert and on undecodable return data
        return False


def on_chain(compiled: Any, proof: bytes, instances: list[int]) -> dict[str, Any]:
    """Deploy on a fresh anvil; gas of a verifying transaction, and the three forgeries refused."""
    from web3 import Web3

    from zkfl.contracts.chain import account_from_key, connect, dev_keys, send, start_anvil

    if compiled.deployed_size > EIP170_LIMIT:
        return {"verify_gas": None, "deploy_gas": None, "rejects_tampered": None, "note": "over EIP-170"}
    account = account_from_key(dev_keys(1)[0])
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        receipt = send(w3, account, factory.constructor())
        address = Web3.to_checksum_address(receipt["contractAddress"])
        if len(w3.eth.get_code(address)) == 0:
            raise RuntimeError("verifier deployment left no code")
        contract = w3.eth.contract(address=address, abi=compiled.abi)
        if not accepts(contract, account.address, proof, instances):
            raise RuntimeError("the verifier refused a valid proof")
        gas = int(send(w3, account, contract.functions.verifyProof(proof, instances), gas=VERIFY_TX_GAS)["gasUsed"])
        refused = {name: not accepts(contract, account.address, p, i)
                   for name, (p, i) in tampered(proof, instances).items()}
    return {"verify_gas": gas - BASE_GAS, "deploy_gas": int(receipt["gasUsed"]),
            "rejects_tampered": all(refused.values()), "tamper_checks": refused}


def measure(variant: Variant, work: Path) -> dict[str, Any]:
    from zkfl.field.quantize import felt_to_uint

    built = build(variant, work)
    compiled = compile_verifier(built.sol, variant.solc_runs, variant.via_ir)
    proof = bytes.fromhex(built.proof["hex_proof"].removeprefix("0x"))
    instances = [felt_to_uint(f) for f in built.proof["instances"][0]]
    ra = built.settings["run_args"]
    row: dict[str, Any] = {
        "variant": variant.name, "changed": variant.changed(),
        "batch": variant.batch, "solc_runs": variant.solc_runs, "via_ir": variant.via_ir,
        "num_inner_cols": ra["num_inner_cols"], "decomp": [ra["decomp_base"], ra["decomp_legs"]],
        "lookup_range": ra["lookup_range"], "required_range_checks": built.settings["required_range_checks"],
        "rows": built.settings["num_rows"], "logrows": ra["logrows"], "setup_s": round(built.setup_s, 2),
        "prove_s": round(built.prove_s, 2), "proof_bytes": len(proof), "public_values": len(instances),
        "verifier_bytes": compiled.deployed_size, "fits_eip170": compiled.deployed_size <= EIP170_LIMIT,
    }
    row |= on_chain(compiled, proof, instances)
    if variant.weakens:
        row["weakens_statement"] = variant.weakens
    return row


def write(rows: list[dict[str, Any]]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")


def print_table(rows: list[dict[str, Any]]) -> None:
    base = next((r["verify_gas"] for r in rows if r["variant"] == "baseline"), None)
    print("variant | rows | logrows | setup s | prove s | proof B | verifier B | verify gas | vs baseline | tamper")
    for r in rows:
        gas = r.get("verify_gas")
        delta = f"{gas - base:+,}" if gas is not None and base is not None else "-"
        shown = f"{gas:,}" if gas is not None else "-"
        print(f"{r['variant']} | {r['rows']:,} | {r['logrows']} | {r['setup_s']} | {r['prove_s']} | "
              f"{r['proof_bytes']:,} | {r['verifier_bytes']:,} | {shown} | {delta} | {r.get('rejects_tampered')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/vgas"))
    parser.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    args = parser.parse_args()
    os.environ["ZKFL_HOME"] = str(args.work / "home")  # never the project's caches
    os.environ["EZKL_REPO_PATH"] = str(args.work / "home" / "ezkl")
    chosen = [v for v in VARIANTS if not args.only or v.name in args.only.split(",")]
    rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    order = [v.name for v in VARIANTS]
    for variant in chosen:
        print(f"-- {variant.name}", file=sys.stderr, flush=True)
        row = measure(variant, args.work)
        rows = [r for r in rows if r["variant"] != variant.name] + [row]
        rows.sort(key=lambda r: order.index(r["variant"]) if r["variant"] in order else len(order))
        write(rows)
    print_table(rows)
    print(f"written to {RESULTS}; variants: {json.dumps([v.name for v in chosen])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
