"""Proving and checking FedAvg: the aggregator's proof that G_{r+1} averages round r.

The statement (see ``zkfl.circuits.aggregation``): given public values
``[H(u_0) .. H(u_{K-1}), H(n), H(G'), n_0 .. n_{K-1}, margin, headroom]`` the prover
knows updates u_k with those Poseidon hashes, and G' with hash H(G'), such that G' is
their n-weighted average rounded to the nearest quantum (margin >= 0) and every value
is bounded (headroom >= 0). H(u_k) is computed exactly as a step proof commits its
output, so the contract compares it with the accepted updates' commitments as is.
"""

from __future__ import annotations

from dataclasses import dataclass

from zkfl.circuits.aggregation import aggregation_inputs, aggregation_layout
from zkfl.circuits.cache import CircuitArtifacts
from zkfl.errors import ProofError
from zkfl.prover.ezkl_backend import EzklProof, prove_input, verify_proof
from zkfl.prover.quantize import felt_to_uint, ints_to_felts

FIELD_MODULUS = 0x30644E72E131A029B85045B68181585D2833E84879B9709143E1F593F0000001
NONNEGATIVE_LIMIT = 2**128  # a public value below this is a non-negative integer, not a wrapped negative one


@dataclass
class AggregationProof(EzklProof):
    """A FedAvg proof (public values in aggregation_layout order)."""

    slots: int = 0
    prove_seconds: float = 0.0


def signed(value: int) -> int:
    """A public value read as a signed field element."""
    return value - FIELD_MODULUS if value > FIELD_MODULUS // 2 else value


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
