"""Proving and checking FedAvg: the aggregator's proof that G_{r+1} averages round r.

The statement (see ``zkfl.circuits.aggregation``): given public values
``[H(u_0) .. H(u_{K-1}), H(n), H(G'), n_0 .. n_{K-1}, margin, headroom]`` the prover
knows updates u_k with those Poseidon hashes, and G' with hash H(G'), such that G' is
their n-weighted average rounded to the nearest quantum (margin >= 0) and every value
is bounded (headroom >= 0). H(u_k) is computed exactly as a step proof commits its
output, so the contract compares it with the accepted updates' commitments as is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from zkfl.circuits.aggregation import DECOMP_BASE, DECOMP_LEGS, aggregation_inputs, aggregation_layout
from zkfl.circuits.spec import ModelSpec
from zkfl.errors import ProofError
from zkfl.field.ezkl_api import ezkl
from zkfl.field.quantize import felt_to_uint, ints_to_felts, signed
from zkfl.paths import cache_dir
from zkfl.prover.ezkl.circuit import CircuitArtifacts, build_once, fewest_logrows, quiet_stdout
from zkfl.prover.ezkl.prove import EzklProof, prove_input, verify_proof

AGGREGATION_CIRCUIT_VERSION = 6  # 2: exact half-away rounding; 3: no Freivalds; 4: logrows >= 14;
# 5: one inner column; 6: two where one would need more than SINGLE_COLUMN_MAX_LOGROWS
# At logrows 13 ezkl lays the circuit out in more columns and its verifier is 25.5 KB, over
# the 24,576-byte contract limit (then it goes through the reusable adapter, 1.22M gas a
# publish); from logrows 14 it is 24.0 KB and verifies directly (about 880k gas).
MIN_LOGROWS = 14
# One inner column costs the least gas, for twice the rows; past this logrows (15.5 GB to prove at
# 19 on a 24 GB machine) the rows matter more, and two columns are used where they need fewer.
SINGLE_COLUMN_MAX_LOGROWS = 19
NONNEGATIVE_LIMIT = 2**128  # a public value below this is a non-negative integer, not a wrapped negative one


def _run_args(inner_cols: int = 1) -> Any:
    args = ezkl.PyRunArgs()
    args.input_visibility = "hashed/public"
    args.output_visibility = "public"
    args.param_visibility = "fixed"
    args.input_scale = 0
    args.param_scale = 0
    args.decomp_base = DECOMP_BASE
    args.decomp_legs = DECOMP_LEGS
    # ezkl's randomized (Freivalds) matmul check made about 1 in 4 proofs of a small
    # circuit fail verification although the witness satisfied the circuit (measured at
    # logrows 10); the plain matmul costs a few rows more and always verifies.
    args.disable_freivalds = True
    # One inner column (ezkl's default is two) where it needs no larger logrows: each column repeats
    # every range-check lookup in the verifier. For 4 logreg slots: 870k -> 674k gas to verify, a
    # 24.0 -> 18.6 KB verifier, 5,952 -> 4,128 proof bytes and about half the proving time, for twice
    # the rows (6,740 -> 13,346), still logrows 14. The MLP 64-32-4 over 2 clients would double from
    # 309k rows (logrows 19, proved in 208 s at 15.5 GB) to 613k (logrows 20, beyond a 24 GB machine):
    # past SINGLE_COLUMN_MAX_LOGROWS two columns stay (bench/prove.py --aggregation).
    args.num_inner_cols = inner_cols
    return args


def aggregation_hash(spec: ModelSpec, slots: int, shift: int) -> str:
    payload = {"version": AGGREGATION_CIRCUIT_VERSION, "step": spec.spec_hash(), "slots": slots, "shift": shift}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def build_aggregation_circuit(spec: ModelSpec, slots: int, update_scale: int) -> CircuitArtifacts:
    """The FedAvg circuit for K = ``slots`` updates of ``spec``'s model, cached by its hash."""
    if slots < 1:
        raise ValueError("an aggregation circuit needs at least one slot")
    shift = update_scale - spec.scale
    if shift < 0:
        raise ValueError("updates cannot have fewer fractional bits than the model")
    root = cache_dir("circuits") / f"fedavg-{spec.family}-{aggregation_hash(spec, slots, shift)}"

    def fill(stage: CircuitArtifacts) -> None:
        import torch  # only the party that builds a circuit exports it

        from zkfl.circuits.modules import FedAvgCheck

        width = spec.param_count
        example = tuple(torch.zeros(width) for _ in range(slots)) + (torch.zeros(slots), torch.zeros(width))
        torch.onnx.export(
            FedAvgCheck(slots, shift), example, str(stage.onnx),
            input_names=[f"update_{k}" for k in range(slots)] + ["counts", "new_global"],
            output_names=["counts_out", "margin", "headroom"], dynamo=False, opset_version=17,
        )
        with quiet_stdout():
            settings = fewest_logrows(lambda cols: _settings(stage, cols), SINGLE_COLUMN_MAX_LOGROWS)
            stage.settings.write_text(json.dumps(settings))
            ezkl.compile_circuit(str(stage.onnx), str(stage.compiled), str(stage.settings))

    return build_once(CircuitArtifacts(spec, root, slots=slots), fill)


def _settings(stage: CircuitArtifacts, inner_cols: int) -> dict[str, Any]:
    """ezkl's settings for the circuit laid out in ``inner_cols`` columns, at the smallest logrows
    that holds its rows (the default leaves room for lookups it does not use), at least MIN_LOGROWS."""
    ezkl.gen_settings(str(stage.onnx), str(stage.settings), py_run_args=_run_args(inner_cols))
    settings: dict[str, Any] = json.loads(stage.settings.read_text())
    needed = int(np.ceil(np.log2(settings["num_rows"] + 16)))
    settings["run_args"]["logrows"] = max(needed, MIN_LOGROWS)
    return settings


@dataclass
class AggregationProof(EzklProof):
    """A FedAvg proof (public values in aggregation_layout order)."""

    slots: int = 0
    prove_seconds: float = 0.0


def statement_problems(instances: list[int], slots: int, accepted: list[int], samples: list[int],
                       global_commitment: int) -> list[str]:
    """What the contract checks of an aggregation proof's public values, off chain.

    ``accepted`` are the round's accepted update commitments in acceptance order and
    ``samples`` their sample counts. Returns the failed checks (empty: the statement is
    about exactly this round's updates and this model).
    """
    layout = aggregation_layout(slots)
    if len(instances) != layout["length"]:
        return [f"{len(instances)} public values, expected {layout['length']}"]
    problems = []
    inputs = [instances[i] for i in layout["updates"]]
    counts = [instances[i] for i in layout["counts"]]
    if len(accepted) > slots:
        problems.append(f"{len(accepted)} accepted updates for {slots} slots")
    if inputs[: len(accepted)] != accepted:
        problems.append("its inputs are not the round's accepted updates, in order")
    if counts[: len(accepted)] != samples:
        problems.append("its weights are not the accepted updates' sample counts")
    if any(c != 0 for c in counts[len(accepted):]):
        problems.append("an absent slot carries weight")
    if instances[layout["new_global"]] != global_commitment:
        problems.append("its output is not the published global commitment")
    if instances[layout["margin"]] >= NONNEGATIVE_LIMIT:
        problems.append(f"the model is not the rounded average (margin {signed(instances[layout['margin']])})")
    if instances[layout["headroom"]] >= NONNEGATIVE_LIMIT:
        problems.append("values out of the circuit's bound")
    return problems


def prove_aggregation(artifacts: CircuitArtifacts, updates: list[list[int]], counts: list[int],
                      new_global: list[int]) -> AggregationProof:
    """Prove that ``new_global`` is the FedAvg of ``updates`` (weights ``counts``)."""
    if artifacts.slots < 1:
        raise ProofError("not an aggregation circuit")
    tensors = aggregation_inputs(updates, counts, new_global, artifacts.slots)
    proof, _, timings = prove_input(artifacts, {"input_data": [ints_to_felts(t) for t in tensors]}, "aggregation")
    instances = [felt_to_uint(f) for f in proof["instances"][0]]
    if len(instances) != aggregation_layout(artifacts.slots)["length"]:
        raise ProofError(f"aggregation proof has {len(instances)} public values")
    ok, reason = verify_proof(artifacts, proof)  # milliseconds; a publish would revert on a bad proof
    if not ok:
        raise ProofError(f"the aggregation proof does not verify: {reason}")
    return AggregationProof(proof, instances, artifacts.slots, timings["prove"])
