"""FedAvg in exact integer arithmetic: pure functions, no I/O.

Updates arrive as integers at the step's output scale ``s_u``: ezkl does not rescale
the step's final products, so the update carries more fractional bits than the model. The new global model at
the model's scale ``s_m`` is

    G[j] = round( sum_i n_i * W_i[j] / (sum_i n_i * 2**(s_u - s_m)) )

rounded half away from zero, the same rule as the quantizer. Aggregation adds at most
half a quantum (2**-(s_m+1)) per weight per round to the step's own error.
"""

from __future__ import annotations

from collections.abc import Sequence


def divide_round_half_away(numerator: int, denominator: int) -> int:
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return magnitude if numerator >= 0 else -magnitude


def fedavg(updates: Sequence[Sequence[int]], samples: Sequence[int], update_scale: int, model_scale: int) -> list[int]:
    if not updates:
        raise ValueError("FedAvg needs at least one update")
    if len(updates) != len(samples):
        raise ValueError("one sample count per update")
    if any(n <= 0 for n in samples):
        raise ValueError("sample counts must be positive")
    if update_scale < model_scale:
        raise ValueError("updates cannot have fewer fractional bits than the model")
    width = len(updates[0])
    if any(len(u) != width for u in updates):
        raise ValueError("updates have different lengths")
    denominator = sum(samples) << (update_scale - model_scale)
    return [
        divide_round_half_away(sum(n * int(u[j]) for u, n in zip(updates, samples, strict=True)), denominator)
        for j in range(width)
    ]
