"""Linked commitments: the step's and FedAvg's tensors committed as KZG points, not hashed.

With ezkl's ``polycommit`` visibility a tensor is committed through the KZG commitment of its
own (unblinded) advice column, and the point travels in the proof bytes. Two circuits built
on the same SRS, at the same logrows and packing, give the same point for the same tensor,
so a verifier that compares points links a proof's output to another proof's input without
hashing either inside a circuit (issue 16; ``docs/performance.md``, "Linked commitments").

The step (``zkfl.circuits.modules.LinkedStep``), data private as zkfl's default step:
    inputs (private)      G, X, y, b
    outputs (polycommit)  G, b, W, check   (``LINKED_STEP_OUTPUTS``)
The points of G and b are compared with the round's model point and the participant's binding
point, W's is the update's, check's must be the commitment of [0]. The data and labels are
private inputs in ordinary (blinded) columns: no point commits to them. The update itself is
public and depends on the data, as in any federated learning.

FedAvg for any number of clients (``zkfl.circuits.modules.LinkedFedAvg``):
    inputs (polycommit)   S (``total``), [K] (``count``), G' (``new_global``)
    output (public)       violation: 0 exactly when G' = round(S / (K 2^shift)), ties away
                          from zero, and no value (of S, G', K) is above 2^BOUND_BITS
Commitments are affine in the column, C(u) = Lin(u) + C(0), so the verifier forms
C(S) = sum C(u_i) - K C_step(0) + C_fed(0) from the K accepted updates' points and
C([K]) = C_fed([0]) + K (C_fed([1]) - C_fed([0])) from its own count of them: four points
fixed by the pair of circuits (``LinkConstants`` in ``zkfl.prover.ezkl.linked``). The proof
is the same size for 2 clients or 2,000. Every update carries the task's samples per update,
so the n-weighted average is the plain one.

The point of G' becomes the next round's model point, which the next step proofs show for their G:
the two columns must be padded alike (C_step(0) = C_fed(0), which ``LinkConstants.of`` checks).

What the circuits cannot pin: a column's rows past its tensor (no gate reads them). The FedAvg
circuit reads only rows 0..width-1 of S and row 0 of [K], so padding cannot move what it reads;
but a modified step prover can put secret values in its W column's padding, and C(S) then holds
them: no aggregator can match it, and the round cannot close. Likewise an aggregator could pad
the column of G' so that no honest step matches the next model point. The chain half must let anyone
challenge such a point by recomputing it from the published values (docs/performance.md).
That is also why S's column is exactly as long as an update's and [K] has a column of its own:
were a row the FedAvg circuit reads one that the step leaves free, a participant could move what
it reads (an outside review of the probe found this with K placed after S).
"""

from __future__ import annotations

from zkfl.circuits.aggregation import BOUND_BITS

#: The linked step's outputs, in order: their points come first in the proof bytes, in this order.
LINKED_STEP_OUTPUTS = ("global_model", "binding", "theta_next", "input_check")
#: The linked FedAvg circuit's inputs, in order (their points come first in its proof bytes).
LINKED_FEDAVG_INPUTS = ("total", "count", "new_global")
#: Where the update's point sits among the linked step's points.
LINKED_UPDATE_POINT = LINKED_STEP_OUTPUTS.index("theta_next")


def linked_fedavg_inputs(updates: list[list[int]], new_global: list[int]) -> list[list[int]]:
    """The linked FedAvg circuit's inputs for equal-weight updates: [S, [K], G']."""
    if not updates:
        raise ValueError("a FedAvg needs at least one update")
    width = len(new_global)
    if any(len(u) != width for u in updates):
        raise ValueError("updates and the new model have different lengths")
    total = [sum(column) for column in zip(*updates, strict=True)]
    if max(abs(v) for v in [*total, *new_global]) >= 2**BOUND_BITS:
        raise ValueError(f"a sum or model value is not below 2^{BOUND_BITS}")
    return [total, [len(updates)], list(new_global)]
