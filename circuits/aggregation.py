"""The FedAvg circuit: a new global model is the rounded, weighted average of K updates.

Everything is integer arithmetic on field elements (input and parameter scale 0), so
ezkl's felts are exactly the integers the clients' step proofs output and the
aggregator averages; nothing is rescaled inside the circuit.

Inputs (each public only as its Poseidon hash, like the step circuit's):
    u_0 .. u_{K-1}   the updates, integers at the step's output scale s_u
    n                the K sample counts (0 in an absent slot)
    G'               the new global model, integers at the model scale s_m
Outputs (public):
    n                the sample counts again, in clear, for the contract to compare
    margin           2D - 1 - max_j |4 (S_j - D G'_j) + sign(S_j)|
                     with S = sum_k n_k u_k and D = (sum_k n_k) 2^(s_u - s_m)
    headroom         2^BOUND_BITS - max(|u|, |G'|)

``margin >= 0`` says that for every weight, with r = S_j - D G'_j, r lies in [-D/2, D/2)
when S_j >= 0 and in (-D/2, D/2] when S_j < 0: G'_j is S_j / D rounded to the nearest
integer, ties away from zero, exactly ``zkfl.aggregator.fedavg`` and the quantizer's
rule. So exactly one G' passes; one quantum off fails, ties included (with two equal
weights, ties happen in about half the weights).
``headroom >= 0`` bounds every value, so no product wraps around the field: without it
a prover could pick G'_j = S_j / D in the field (a huge element) and make the residual
zero. Abs and Max are range-checked by ezkl's decomposition (base 2^14, 4 legs), so a
value past 2^56 cannot even be proven.

An absent slot carries no weight by arithmetic: its count is 0, so its update adds
n_k u_k = 0 to S and nothing to D, whatever it holds; the contract requires count 0 in
every slot past the round's accepted updates.
"""

from __future__ import annotations

from typing import Any

BOUND_BITS = 55  # |update|, |G'| < 2^55: honest values (scale 2^12, weights below 2^8) stay far below
DECOMP_BASE = 2**14  # the range checks' decomposition (ezkl's decomp_base and decomp_legs)
DECOMP_LEGS = 4  # ranges up to 2^56 > 2^BOUND_BITS


def aggregation_layout(slots: int) -> dict[str, Any]:
    """Positions of the public values: hashes of the inputs, then the outputs in clear."""
    return {
        "updates": list(range(slots)),  # H(u_k), equal to the k-th accepted update's commitment
        "counts_hash": slots,
        "new_global": slots + 1,  # H(G'), the published global commitment
        "counts": list(range(slots + 2, 2 * slots + 2)),
        "margin": 2 * slots + 2,
        "headroom": 2 * slots + 3,
        "length": 2 * slots + 4,
    }


def aggregation_inputs(updates: list[list[int]], counts: list[int], new_global: list[int],
                       slots: int) -> list[list[int]]:
    """The circuit's inputs: the updates in their slots, absent slots zero with count 0."""
    if not 1 <= len(updates) <= slots:
        raise ValueError(f"between 1 and {slots} updates, got {len(updates)}")
    if len(counts) != len(updates):
        raise ValueError("one sample count per update")
    width = len(new_global)
    if any(len(u) != width for u in updates):
        raise ValueError("updates and the new model have different lengths")
    absent = slots - len(updates)
    return ([list(u) for u in updates] + [[0] * width] * absent
            + [list(counts) + [0] * absent, list(new_global)])

