"""FedAvg whose proof does not grow with the number of clients: issue 16's linked-commitment
design, probed end to end on real ezkl proofs (docs/performance.md, "FedAvg independent of K").

The arrangement probed here keeps the step circuit's inputs (model, data, labels, binding)
Poseidon-hashed as zkfl has them, so no data sits in an unblinded column, and commits only the
step's *outputs* (the update and the input check) by KZG (`polycommit`): each accepted update is a
G1 point C(u) in its proof. KZG commitments are affine in the tensor, so

    C(u_1) + ... + C(u_K) - (K - 1) C(0) = C(u_1 + ... + u_K)

and a chain can form the commitment of the sum S from the accepted updates' points with K ecAdd
and one ecMul, whatever K. A FedAvg proof of constant size then takes S, [K] and G' as its
`polycommit` inputs (three columns: S's exactly as long as an update's, since the rows a step
proof leaves free are the prover's to fill and must never be rows the FedAvg circuit reads), and
outputs G' = round(S / K) Poseidon-hashed, the commitment the next round's step proofs start
from, with a violation output hashed too (H([0]) when G' is the rounded average and every value
in bounds). The chain forms C([K]) from its own count of accepted updates.

The probe, for a model family at the step's logrows:
1. builds the step circuit with `polycommit` outputs and proves ``--clients`` real steps;
2. checks each proof's leading point against ``kzg_commit`` of its update;
3. builds the constant-size FedAvg circuit at the step's logrows (the commitments must use the
   same SRS, logrows and packing), proves the round, and checks that its first two points equal
   C(S) formed from the step proofs' points and C([K]) (py-ecc), with the four constants a package
   would publish;
4. checks that a G' one quantum off cannot be proven (or is flagged);
5. measures on anvil the gas of the FedAvg verifier and of forming and comparing the sum for 2 to
   128 clients (`LinkedSum.sol`, ecAdd and ecMul precompiles).

Nothing here is used by a task. Writes bench/results/linked_fedavg_probe.json.

    python bench/linked_fedavg_probe.py --model logreg --clients 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "linked_fedavg_probe.json"
MODELS = {"logreg": ("logreg", 30, 2, (), 16), "logreg32": ("logreg", 30, 2, (), 32),
          "mlp": ("mlp", 64, 4, (32,), 32)}
BASE_GAS = 21_000
GAS_CLIENTS = (2, 8, 32, 128)
CONSTANTS = ("sum_a", "sum_b", "count_a", "count_b")  # LinkedSum's constructor, in order
BOUND_BITS = 55  # as zkfl's FedAvg circuit: |S|, |K|, |G'| < 2^55, so no product wraps the field


def _spec(model: str) -> Any:
    from zkfl.circuits.spec import ModelSpec

    fam, features, classes, hidden, batch = MODELS[model]
    # The step as probed (circuit version 5): inputs hashed, outputs (update, input check) only.
    return ModelSpec(fam, features, batch, 12, 0.5, classes=classes, hidden=hidden, commits_data=True)


# ---------------------------------------------------------------------------------------------
# circuits


def build_step(model: str) -> Any:
    """zkfl's step circuit with its outputs (update, input check) committed by KZG."""
    import zkfl.prover.ezkl.circuit as circuit

    default_args = circuit.run_args

    def linked_args(spec: Any, inner_cols: int = 1, outputs: str = "polycommit") -> Any:
        return default_args(spec, inner_cols, "polycommit")

    circuit.run_args = linked_args
    try:
        return circuit.build_circuit(_spec(model))
    finally:
        circuit.run_args = default_args


def _fedavg_module(width: int) -> Any:
    import torch

    class LinkedFedAvg(torch.nn.Module):
        """inputs: S, [K], G' (three columns); outputs: G', violation (0 iff G' = round(S / K)).
        S's column is exactly as long as the step's update column: a row the step leaves free (its
        padding) must never be one this circuit reads, or a participant could move what it reads."""

        def forward(self, total: torch.Tensor, count: torch.Tensor,
                    new_global: torch.Tensor) -> tuple[torch.Tensor, ...]:
            # 4r + sign(S) puts the tie on the side half-away rounding excludes (zkfl's FedAvg rule).
            residual = 4.0 * (total - count * new_global) + torch.sign(total)
            margin = 2.0 * count - 1.0 - torch.max(torch.abs(residual))
            largest = torch.maximum(torch.max(torch.abs(total)), torch.max(torch.abs(new_global)))
            headroom = float(2**BOUND_BITS) - torch.maximum(largest, torch.abs(count).sum())
            violation = torch.relu(-margin) + torch.relu(-headroom)
            return new_global * 1.0, violation.reshape(1)

    return LinkedFedAvg()


def build_fedavg(spec: Any, logrows: int, root: Path) -> Any:
    """The constant-size FedAvg circuit at ``logrows`` (the step circuit's: same SRS and packing)."""
    import numpy as np
    import torch

    from zkfl.field.ezkl_api import ezkl
    from zkfl.prover.ezkl.aggregation import DECOMP_BASE, DECOMP_LEGS
    from zkfl.prover.ezkl.circuit import CircuitArtifacts, quiet_stdout

    width = spec.param_count
    artifacts = CircuitArtifacts(spec, root, slots=1)
    shutil.rmtree(root, ignore_errors=True)  # keys from an earlier run may be another circuit's
    root.mkdir(parents=True)
    torch.onnx.export(_fedavg_module(width), (torch.zeros(width), torch.zeros(1), torch.zeros(width)),
                      str(artifacts.onnx), input_names=["total", "count", "new_global"],
                      output_names=["new_global_out", "violation"],
                      dynamo=False, opset_version=17)
    args = ezkl.PyRunArgs()
    args.input_visibility, args.output_visibility, args.param_visibility = "polycommit", "hashed/public", "fixed"
    args.input_scale = args.param_scale = 0
    args.decomp_base, args.decomp_legs = DECOMP_BASE, DECOMP_LEGS
    args.disable_freivalds = True
    args.num_inner_cols = 1
    with quiet_stdout():
        ezkl.gen_settings(str(artifacts.onnx), str(artifacts.settings), py_run_args=args)
    settings = json.loads(artifacts.settings.read_text())
    needed = int(np.ceil(np.log2(settings["num_rows"] + 16)))
    if needed > logrows:
        raise SystemExit(f"the FedAvg circuit needs logrows {needed}, above the step's {logrows}")
    settings["run_args"]["logrows"] = logrows  # the commitments must share logrows and SRS
    artifacts.settings.write_text(json.dumps(settings))
    with quiet_stdout():
        ezkl.compile_circuit(str(artifacts.onnx), str(artifacts.compiled), str(artifacts.settings))
    return artifacts


# ---------------------------------------------------------------------------------------------
# proving


def prove(artifacts: Any, tensors: list[list[str]], work: Path) -> tuple[dict[str, Any], dict[str, Any], float]:
    """ezkl's flow with the vk and SRS given to the witness (so it carries the commitments)."""
    from zkfl.field.ezkl_api import ezkl
    from zkfl.prover.ezkl.prove import ensure_keys

    ensure_keys(artifacts)
    work.mkdir(parents=True, exist_ok=True)
    data, witness, proof = work / "input.json", work / "witness.json", work / "proof.json"
    data.write_text(json.dumps({"input_data": tensors}))
    ezkl.gen_witness(str(data), str(artifacts.compiled), str(witness), str(artifacts.vk), str(artifacts.srs))
    ezkl.mock(str(witness), str(artifacts.compiled))
    started = time.perf_counter()
    ezkl.prove(str(witness), str(artifacts.compiled), str(artifacts.pk), str(proof), srs_path=str(artifacts.srs))
    seconds = time.perf_counter() - started
    assert ezkl.verify(str(proof), str(artifacts.settings), str(artifacts.vk), srs_path=str(artifacts.srs))
    return json.loads(proof.read_text()), json.loads(witness.read_text()), seconds


def proof_point(proof: dict[str, Any], index: int) -> tuple[int, int]:
    """The ``index``-th G1 point of the proof bytes (x, y big-endian, 32 bytes each)."""
    from zkfl.field.g1 import points_in

    return points_in(bytes.fromhex(proof["hex_proof"].removeprefix("0x")), index + 1)[index]


def commit(artifacts: Any, values: list[int]) -> tuple[int, int]:
    """``kzg_commit`` of one tensor under ``artifacts``' vk, settings and SRS, as integers."""
    from zkfl.prover.ezkl.linked import kzg_point

    return kzg_point(artifacts, values)


# ---------------------------------------------------------------------------------------------
# elliptic-curve arithmetic off chain (zkfl.field.g1), as the contract would do it with precompiles


def linked_sum(update_points: list[tuple[int, int]], constants: dict[str, tuple[int, int]]) -> list[tuple[int, int]]:
    """The FedAvg proof's first two points as the chain forms them from the K update points:
    C(S) = sum C(u_i) + K sum_a + sum_b (sum_a = -C_step(0), sum_b = C_fed(0): commitments are
    affine, C(u) = Lin(u) + C(0)) and C([K]) = K count_a + count_b (count_a = C_fed([1]) - C_fed([0]),
    count_b = C_fed([0])), K being the chain's own count of accepted updates."""
    from zkfl.field.g1 import g1_scale, g1_sum

    k = len(update_points)
    total = g1_sum([*update_points, g1_scale(constants["sum_a"], k), constants["sum_b"]])
    return [total, g1_sum([g1_scale(constants["count_a"], k), constants["count_b"]])]


def link_constants(step: Any, fedavg: Any) -> dict[str, tuple[int, int]]:
    """The four points a package would publish for a (step, FedAvg) pair, from ``kzg_commit``
    (with ``step`` None, the FedAvg column's own zero stands for the step's)."""
    from zkfl.field.g1 import g1_negate

    width = fedavg.spec.param_count
    fed_zero = commit(fedavg, [0] * width)
    step_zero = commit(step, [0] * width) if step is not None else fed_zero
    count_zero = commit(fedavg, [0])
    return {"sum_a": g1_negate(step_zero), "sum_b": fed_zero,
            "count_a": _difference(commit(fedavg, [1]), count_zero), "count_b": count_zero}


def _difference(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    from zkfl.field.g1 import g1_negate, g1_sum

    return g1_sum([a, g1_negate(b)])


# ---------------------------------------------------------------------------------------------
# the round


def step_updates(step: Any, clients: int, work: Path) -> tuple[list[list[int]], list[tuple[int, int]], float]:
    """``clients`` real step proofs from one global model; their updates and update points."""
    import numpy as np

    from zkfl.field.quantize import felts_to_ints, ints_to_felts
    from zkfl.prover.ezkl.circuit import example_inputs

    spec = step.spec
    unit = 2.0**spec.scale
    theta = [int(v) for v in np.round(example_inputs(spec, 0)[0].numpy().ravel() * unit / 4)]
    updates, points, seconds = [], [], []
    for client in range(clients):
        _, x, y, binding = example_inputs(spec, 100 + client)
        x_ints = [int(v) for v in np.round(x.numpy().ravel() * unit / 2)]  # features within the bound
        tensors = [theta, x_ints, [int(v) for v in np.round(y.numpy().ravel() * unit)],
                   [int(v) for v in np.round(binding.numpy().ravel() * unit)]]
        proof, witness, took = prove(step, [ints_to_felts(t) for t in tensors], work / f"step{client}")
        update = [int(v) for v in felts_to_ints(witness["outputs"][spec.update_output])]
        point = proof_point(proof, 0)
        if point != commit(step, update):
            raise SystemExit("the step proof's first point is not kzg_commit(update)")
        updates.append(update)
        points.append(point)
        seconds.append(took)
    return updates, points, float(np.median(seconds))


def fedavg_round(step: Any, fedavg: Any, updates: list[list[int]], points: list[tuple[int, int]],
                 work: Path) -> dict[str, Any]:
    """Prove the round's FedAvg and check its S and K points against those formed from ``points``:
    the step proofs' update points, or with ``step`` None (the FedAvg circuit probed alone) the
    updates committed as the FedAvg circuit's S column would hold them."""
    from zkfl.field.g1 import g1_negate
    from zkfl.field.quantize import ints_to_felts
    from zkfl.prover.fedavg import fedavg as exact_fedavg

    k = len(updates)
    total = [sum(column) for column in zip(*updates, strict=True)]
    new_global = [int(v) for v in exact_fedavg(updates, [1] * k, fedavg.spec.scale, fedavg.spec.scale)]
    constants = link_constants(step, fedavg)
    expected = linked_sum(points, constants)
    tensors = [ints_to_felts(total), ints_to_felts([k]), ints_to_felts(new_global)]
    proof, witness, seconds = prove(fedavg, tensors, work / "fedavg")
    if [proof_point(proof, 0), proof_point(proof, 1)] != expected:
        raise SystemExit("the FedAvg proof's S and K points are not those formed from the updates' points")
    off = list(new_global)
    off[0] += 1
    refused = _refuses(fedavg, [ints_to_felts(total), ints_to_felts([k]), ints_to_felts(off)], work / "off")
    return {"proof": proof, "prove_s": round(seconds, 2), "sum_point_matches": True,
            "step_zero_is_fed_zero": step is not None and g1_negate(constants["sum_a"]) == constants["sum_b"],
            "one_quantum_off": refused, "constants": constants, "witness": witness}


def _refuses(artifacts: Any, tensors: list[list[str]], work: Path) -> str:
    """How the circuit refuses a wrong G': no witness, a failed mock, or a non-zero violation."""
    from zkfl.field.ezkl_api import ezkl
    from zkfl.field.quantize import felts_to_ints

    work.mkdir(parents=True, exist_ok=True)
    data, witness = work / "input.json", work / "witness.json"
    data.write_text(json.dumps({"input_data": tensors}))
    try:
        result = ezkl.gen_witness(str(data), str(artifacts.compiled), str(witness))
        ezkl.mock(str(witness), str(artifacts.compiled))
    except Exception as exc:  # ezkl raises when a value leaves the circuit's ranges
        return f"not provable ({str(exc).strip()[:80]})"
    violation = int(felts_to_ints(result["outputs"][1])[0])
    if violation == 0:
        raise SystemExit("a G' one quantum off passes the FedAvg circuit")
    return f"violation output {violation} (its hash is not H([0]))"


# ---------------------------------------------------------------------------------------------
# gas on anvil


def sum_gas(points: list[tuple[int, int]], constants: dict[str, tuple[int, int]], real_proof: bytes,
            real_points: list[tuple[int, int]]) -> list[dict[str, int]]:
    """Gas of a transaction that forms C([S, K]) for 2 to 128 clients (points repeated from the real
    ones), checks them against the accepted set and compares the result with a proof's first point,
    and a check that the real FedAvg proof's point passes and a wrong set does not."""
    from eth_abi import encode
    from web3 import Web3

    from zkfl.contracts.chain import account_from_key, connect, dev_keys, send, start_anvil
    from zkfl.contracts.federation import deploy
    from zkfl.contracts.solc import compile_contract

    compiled = compile_contract(Path(__file__).resolve().parent / "contracts" / "LinkedSum.sol", "LinkedSum")
    rows = []
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        owner = account_from_key(dev_keys()[0])
        address, _ = deploy(w3, owner, compiled, *[list(constants[name]) for name in CONSTANTS])
        contract = w3.eth.contract(address=address, abi=compiled.abi)

        def run(chosen: list[tuple[int, int]], proof: bytes) -> tuple[bool, int]:
            chain = b"\x00" * 32
            for x, y in chosen:
                chain = Web3.keccak(encode(["bytes32", "uint256", "uint256"], [chain, x, y]))
            send(w3, owner, contract.functions.setAccepted(chain))
            receipt = send(w3, owner, contract.functions.check(proof, [list(p) for p in chosen]), gas=30_000_000)
            return bool(contract.functions.lastResult().call()), int(receipt["gasUsed"]) - BASE_GAS

        ok, _ = run(real_points, real_proof)
        assert ok, "the real FedAvg proof's point does not match on chain"
        ok, _ = run(real_points[:-1], real_proof)
        assert not ok, "a set without one accepted update matched"
        for clients in GAS_CLIENTS:
            chosen = [points[i % len(points)] for i in range(clients)]
            # The points alone: the proof's calldata is paid once, by the verifier's call.
            points_bytes = b"".join(c.to_bytes(32, "big") for point in linked_sum(chosen, constants) for c in point)
            ok, gas = run(chosen, points_bytes)
            assert ok
            rows.append({"clients": clients, "sum_and_compare_gas": gas})
    return rows


def challenge_gas(step: Any, update: list[int], point: tuple[int, int]) -> dict[str, Any]:
    """The challenge by point: an update's point recomputed from its published values, off chain
    (py-ecc) and on chain (``LinkedSum.commits``: one ecMul and ecAdd per non-zero value, the basis
    points in calldata checked against their published hash); a value one off must not match."""
    from eth_abi import encode
    from web3 import Web3

    from zkfl.contracts.chain import account_from_key, connect, dev_keys, send, start_anvil
    from zkfl.contracts.federation import deploy
    from zkfl.contracts.solc import compile_contract
    from zkfl.field.g1 import g1_scale, g1_sum

    width = len(update)
    zero = commit(step, [0] * width)
    basis = [_difference(commit(step, [int(i == j) for i in range(width)]), zero) for j in range(width)]
    if g1_sum([zero, *(g1_scale(base, value) for value, base in zip(update, basis, strict=True))]) != point:
        raise SystemExit("C(0) + sum u_j (C(e_j) - C(0)) is not the step proof's update point")
    compiled = compile_contract(Path(__file__).resolve().parent / "contracts" / "LinkedSum.sol", "LinkedSum")
    with start_anvil() as anvil:
        w3 = connect(anvil.rpc_url)
        owner = account_from_key(dev_keys()[0])
        address, _ = deploy(w3, owner, compiled, *[[0, 0]] * len(CONSTANTS))
        contract = w3.eth.contract(address=address, abi=compiled.abi)
        send(w3, owner, contract.functions.setBasisHash(
            Web3.keccak(encode(["uint256[2][]", "uint256[2]"], [[list(b) for b in basis], list(zero)]))))

        def run(values: list[int]) -> tuple[bool, int]:
            call = contract.functions.commits(list(point), values, [list(b) for b in basis], list(zero))
            receipt = send(w3, owner, call, gas=30_000_000)
            return bool(contract.functions.lastResult().call()), int(receipt["gasUsed"]) - BASE_GAS

        matches, gas = run(update)
        off = list(update)
        off[-1] += 1
        tampered, _ = run(off)
    assert matches and not tampered, "the challenge by point decided wrongly"
    return {"values": width, "nonzero_values": sum(v != 0 for v in update), "recompute_gas": gas,
            "recompute_matches_proof_point": True, "one_value_off_matches": False}


def _fedavg_row(fedavg: Any, setup_s: float, result: dict[str, Any], clients: int, work: Path) -> dict[str, Any]:
    from polycommit_probe import _evm_gas

    (work / "fedavg-evm").mkdir(exist_ok=True)
    try:
        gas: dict[str, Any] = _evm_gas(fedavg, result["proof"], work / "fedavg-evm")
    except Exception as exc:  # noqa: BLE001  (a verifier over the 24,576-byte limit: recorded, not fatal)
        gas = {"verify_gas": None, "evm": str(exc)[:200]}
    return {"rows": fedavg.settings_json()["num_rows"], "logrows": fedavg.logrows, "setup_s": round(setup_s, 2),
            "prove_s": result["prove_s"], "proof_bytes": len(_proof_bytes(result["proof"])), "clients_proven": clients,
            "sum_point_matches": result["sum_point_matches"], "one_quantum_off": result["one_quantum_off"],
            "step_zero_is_fed_zero": result["step_zero_is_fed_zero"]} | gas


def _proof_bytes(proof: dict[str, Any]) -> bytes:
    return bytes.fromhex(proof["hex_proof"].removeprefix("0x"))


def full_round(model: str, clients: int, work: Path) -> dict[str, Any]:
    """Real step proofs, their FedAvg, and the sum's gas on chain."""
    from polycommit_probe import _evm_gas

    from zkfl.prover.ezkl.prove import ensure_keys

    step = build_step(model)
    started = time.perf_counter()
    ensure_keys(step)
    step_setup = time.perf_counter() - started
    updates, points, step_prove = step_updates(step, clients, work)
    fedavg = build_fedavg(step.spec, step.logrows, work / "fedavg-circuit")
    started = time.perf_counter()
    ensure_keys(fedavg)
    fedavg_setup = time.perf_counter() - started
    result = fedavg_round(step, fedavg, updates, points, work)
    # On anvil last: an ezkl call after create_evm_verifier's event loop was seen to hang.
    (work / "step-evm").mkdir(exist_ok=True)
    step_gas = _evm_gas(step, json.loads((work / "step0" / "proof.json").read_text()), work / "step-evm")
    return {
        "model": model, "mode": "round", "params": step.spec.param_count, "batch": step.spec.batch,
        "step": {"rows": step.settings_json()["num_rows"], "logrows": step.logrows, "setup_s": round(step_setup, 2),
                 "prove_s": round(step_prove, 2), "update_point_is_kzg_commit": True} | step_gas,
        "fedavg": _fedavg_row(fedavg, fedavg_setup, result, clients, work),
        "sum_on_chain": sum_gas(points, result["constants"], _proof_bytes(result["proof"]), points),
        "challenge_by_point": challenge_gas(step, updates[0], points[0]),
    }


def fedavg_alone(model: str, clients: int, logrows: int, work: Path) -> dict[str, Any]:
    """The FedAvg circuit alone at ``logrows`` (the step circuit's, where proving the step itself
    is beyond this machine), over synthetic updates: its size does not depend on ``clients``."""
    import numpy as np

    from zkfl.prover.ezkl.prove import ensure_keys

    spec = _spec(model)
    fedavg = build_fedavg(spec, logrows, work / "fedavg-circuit")
    started = time.perf_counter()
    ensure_keys(fedavg)
    setup_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    bound = 4 * 2**spec.scale  # updates of magnitude up to 4, as bench/prove.py --aggregation
    updates = [[int(v) for v in rng.integers(-bound, bound, spec.param_count)] for _ in range(clients)]
    points = [commit(fedavg, u) for u in updates]
    result = fedavg_round(None, fedavg, updates, points, work)
    return {"model": model, "mode": "fedavg alone", "params": spec.param_count, "batch": spec.batch,
            "fedavg": _fedavg_row(fedavg, setup_s, result, clients, work)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(MODELS), default="logreg")
    parser.add_argument("--clients", type=int, default=3, help="updates to aggregate (real step proofs)")
    parser.add_argument("--fedavg-only", type=int, metavar="LOGROWS",
                        help="only the FedAvg circuit, at this logrows (the step's), over synthetic updates")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "zkfl-linked-fedavg-probe")
    args = parser.parse_args()
    work = args.work / args.model
    work.mkdir(parents=True, exist_ok=True)
    os.environ["ZKFL_HOME"] = str(work / "home")  # never the real circuit cache: these circuits differ
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.fedavg_only:
        row = fedavg_alone(args.model, args.clients, args.fedavg_only, work)
    else:
        row = full_round(args.model, args.clients, work)
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(row, indent=2), flush=True)
    rows = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() else []
    rows = [r for r in rows if (r["model"], r.get("mode", "round")) != (args.model, row["mode"])] + [row]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"ezkl": "23.0.5", "machine": "2-core CPU, 24 GB", "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
