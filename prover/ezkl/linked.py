"""Proving with linked commitments (``zkfl.circuits.linked``): the linked step and FedAvg
circuits, their proofs' KZG points, and the four points that let anyone form the FedAvg
proof's input points from the accepted updates' points and their count.

Nothing here trusts a point it is handed: ``kzg_point`` recomputes a tensor's point from its
values, and ``LinkConstants.of`` computes the constants from the circuits' own keys and SRS.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zkfl.circuits.aggregation import DECOMP_BASE, DECOMP_LEGS
from zkfl.circuits.linked import LINKED_FEDAVG_INPUTS, LINKED_STEP_OUTPUTS, linked_fedavg_inputs
from zkfl.errors import ProofError, ZkflError
from zkfl.field.ezkl_api import ezkl
from zkfl.field.g1 import G1Point, g1_negate, g1_scale, g1_sum, points_in
from zkfl.field.quantize import IntArray, felt_to_uint, felts_to_ints, ints_to_felts
from zkfl.paths import cache_dir
from zkfl.prover.ezkl.circuit import LINKED_CIRCUIT_VERSION, CircuitArtifacts, build_once, quiet_stdout
from zkfl.prover.ezkl.prove import EzklProof, check_step_inputs, ensure_keys, input_json, prove_input, verify_proof


@dataclass
class LinkedProof(EzklProof):
    """A proof of a linked circuit, with the points of its committed tensors in circuit order."""

    points: list[G1Point] = field(default_factory=list)
    outputs: list[list[int]] = field(default_factory=list)  # the circuit's outputs, as integers
    prove_seconds: float = 0.0


def prove_linked_step(artifacts: CircuitArtifacts, global_model: IntArray, x: IntArray, y: IntArray,
                      binding: IntArray) -> LinkedProof:
    """The linked step's proof: four points, G, b, W, check (``LINKED_STEP_OUTPUTS``)."""
    if not artifacts.linked or artifacts.slots:
        raise ProofError("not a linked step circuit")
    check_step_inputs(artifacts.spec, global_model, x, y, binding)
    tensors = (global_model, x, y, binding)
    proof, witness, timings = prove_input(artifacts, input_json(tensors, artifacts.spec.scale), "linked step")
    return _linked_proof(proof, witness, len(LINKED_STEP_OUTPUTS), timings["prove"])


def prove_linked_fedavg(artifacts: CircuitArtifacts, updates: list[list[int]], new_global: list[int]) -> LinkedProof:
    """The FedAvg proof for any number of equal-weight updates: three points (S, [K], G') and one
    public value, the violation, 0 when ``new_global`` is their rounded average."""
    if not artifacts.linked or not artifacts.slots:
        raise ProofError("not a linked FedAvg circuit")
    tensors = linked_fedavg_inputs(updates, new_global)
    proof, witness, timings = prove_input(artifacts, {"input_data": [ints_to_felts(t) for t in tensors]},
                                          "linked FedAvg")
    ok, reason = verify_proof(artifacts, proof)
    if not ok:
        raise ProofError(f"the linked FedAvg proof does not verify: {reason}")
    return _linked_proof(proof, witness, len(LINKED_FEDAVG_INPUTS), timings["prove"])


def _linked_proof(proof: dict[str, Any], witness: dict[str, Any], points: int, seconds: float) -> LinkedProof:
    instances = [felt_to_uint(f) for f in proof["instances"][0]] if proof["instances"] else []
    raw = bytes.fromhex(proof["hex_proof"].removeprefix("0x"))
    outputs = [[int(v) for v in felts_to_ints(tensor)] for tensor in witness["outputs"]]
    return LinkedProof(proof, instances, points=points_in(raw, points), outputs=outputs, prove_seconds=seconds)


def kzg_point(artifacts: CircuitArtifacts, values: list[int]) -> G1Point:
    """The point a column holding ``values`` (integers, then the circuit's padding) commits to,
    under the circuit's key, settings and SRS: recomputed, never read from a proof."""
    ensure_keys(artifacts)
    points = ezkl.kzg_commit(ints_to_felts(values), str(artifacts.vk), str(artifacts.settings), str(artifacts.srs))
    if len(points) != 1:
        raise ZkflError(f"{len(values)} values need {len(points)} columns at this logrows, not one")
    # ezkl writes each coordinate as 32 little-endian bytes in hex (proof bytes hold them big-endian).
    x, y = (int.from_bytes(bytes.fromhex(getattr(points[0], axis)), "little") for axis in ("x", "y"))
    return x, y


@dataclass(frozen=True)
class LinkConstants:
    """The four points fixed by a (linked step, linked FedAvg) pair, with which the chain forms
    C(S) = sum C(u_i) + K sum_per_update + sum_base and C([K]) = K count_per_update + count_base."""

    sum_per_update: G1Point  # -C_step(0): takes each update column's padding out
    sum_base: G1Point  # C_fed(0): puts the sum column's padding in once
    count_per_update: G1Point  # C_fed([1]) - C_fed([0])
    count_base: G1Point  # C_fed([0])

    @classmethod
    def of(cls, step: CircuitArtifacts, fedavg: CircuitArtifacts) -> LinkConstants:
        width = step.spec.param_count
        if kzg_point(step, [0] * width) != kzg_point(fedavg, [0] * width):
            # The point of G' in a FedAvg proof is the next round's model point as step proofs show it.
            raise ZkflError("the linked step and FedAvg circuits pad their model columns differently: a FedAvg "
                            "proof's G' point would not be the one the next round's step proofs show")
        count_zero = kzg_point(fedavg, [0])
        return cls(sum_per_update=g1_negate(kzg_point(step, [0] * width)), sum_base=kzg_point(fedavg, [0] * width),
                   count_per_update=g1_sum([kzg_point(fedavg, [1]), g1_negate(count_zero)]), count_base=count_zero)

    def fedavg_inputs(self, update_points: list[G1Point]) -> tuple[G1Point, G1Point]:
        """C(S) and C([K]) for the accepted updates' points, as the chain forms them."""
        k = len(update_points)
        total = g1_sum([*update_points, g1_scale(self.sum_per_update, k), self.sum_base])
        return total, g1_sum([g1_scale(self.count_per_update, k), self.count_base])


def build_linked_fedavg(step: CircuitArtifacts, update_scale: int) -> CircuitArtifacts:
    """The FedAvg circuit for any number of ``step``'s updates, at the step's logrows and inner
    columns (the sum's column must be laid out as an update's)."""
    spec, shift = step.spec, update_scale - step.spec.scale
    if not step.linked or step.slots or shift < 0:
        raise ValueError("a linked FedAvg circuit needs a linked step circuit and an update scale at least its scale")
    run = step.settings_json()["run_args"]
    named = {"version": LINKED_CIRCUIT_VERSION, "step": spec.spec_hash(), "shift": shift,
             "logrows": run["logrows"], "inner_cols": run["num_inner_cols"]}
    root = cache_dir("circuits") / f"linked-fedavg-{spec.family}-{_digest(named)}"
    return build_once(CircuitArtifacts(spec, root, slots=1, linked=True),
                      lambda stage: _fill_fedavg(stage, shift, run["logrows"], run["num_inner_cols"]))


def _fill_fedavg(stage: CircuitArtifacts, shift: int, logrows: int, inner_cols: int) -> None:
    import torch  # only the party that builds a circuit exports it

    from zkfl.circuits.modules import LinkedFedAvg

    width = stage.spec.param_count
    torch.onnx.export(LinkedFedAvg(shift), (torch.zeros(width), torch.zeros(1), torch.zeros(width)),
                      str(stage.onnx), input_names=list(LINKED_FEDAVG_INPUTS), output_names=["violation"],
                      dynamo=False, opset_version=17)
    args = ezkl.PyRunArgs()
    args.input_visibility, args.output_visibility, args.param_visibility = "polycommit", "public", "fixed"
    args.input_scale = args.param_scale = 0
    args.decomp_base, args.decomp_legs = DECOMP_BASE, DECOMP_LEGS
    args.disable_freivalds = True  # as zkfl's FedAvg circuit (zkfl.prover.ezkl.aggregation)
    args.num_inner_cols = inner_cols
    with quiet_stdout():
        ezkl.gen_settings(str(stage.onnx), str(stage.settings), py_run_args=args)
        settings = stage.settings_json()
        needed = int(np.ceil(np.log2(settings["num_rows"] + 16)))
        if needed > logrows:
            raise ZkflError(f"the linked FedAvg circuit needs logrows {needed}, above its step's {logrows}")
        settings["run_args"]["logrows"] = logrows  # the points must share logrows and SRS with the step's
        stage.settings.write_text(json.dumps(settings))
        ezkl.compile_circuit(str(stage.onnx), str(stage.compiled), str(stage.settings))


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
