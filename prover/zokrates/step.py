"""The host's half of a ZoKrates step: the same integers as the circuit, and its hints.

:func:`logreg_step` computes, in exact integer arithmetic, what the program of
:mod:`zkfl.circuits.zokrates_step` computes, and returns the update together with the
program's arguments: the inputs and, for each rounded division, its quotient and
remainder, for each clamp, its branch. The circuit checks each hint, so a wrong one
only makes witness generation fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zkfl.circuits.spec import ModelSpec
from zkfl.circuits.zokrates_step import FixedPoint, check_supported, packed_words
from zkfl.errors import ProofError
from zkfl.prover.binding import BINDING_CHUNKS
from zkfl.prover.poseidon import P
from zkfl.prover.quantize import IntArray


@dataclass(frozen=True)
class StepWitness:
    update: list[int]
    args: list[Any]  # the program's arguments, in main's order, as ZoKrates takes them


def _rounded(value: int, bits: int) -> tuple[int, int]:
    """(q, r) with value + 2^(bits-1) = q 2^bits + r, 0 <= r < 2^bits: round half up."""
    shifted = value + (1 << (bits - 1))
    quotient = shifted >> bits  # floor, also for negatives
    return quotient, shifted - (quotient << bits)


def _felts(values: list[int] | IntArray) -> list[str]:
    return [str(int(v) % P) for v in values]


def _require_range(name: str, values: IntArray, bits: int, scale: int) -> None:
    worst = int(np.abs(values).max()) if values.size else 0
    if worst >= 1 << bits:
        raise ProofError(f"{name} out of the circuit's range: |value| {worst / 2**scale:g} >= {2**bits / 2**scale:g}")


def logreg_step(spec: ModelSpec, g: IntArray, x: IntArray, y: IntArray, binding: IntArray) -> StepWitness:
    check_supported(spec)
    fp = FixedPoint(spec.scale)
    s, unit, features = spec.scale, 1 << spec.scale, spec.features
    g = np.asarray(g, dtype=np.int64).ravel()
    x = np.asarray(x, dtype=np.int64).reshape(spec.batch, features)
    y = np.asarray(y, dtype=np.int64).ravel()
    if g.size != spec.param_count or y.size != spec.batch or np.asarray(binding).size != BINDING_CHUNKS:
        raise ProofError(f"a {spec.family} step takes {spec.param_count} weights, {spec.batch} labels and "
                         f"{BINDING_CHUNKS} binding chunks; got {g.size}, {y.size}, {np.asarray(binding).size}")
    _require_range("a feature", x, fp.feature_bits, s)
    _require_range("a model weight", g, fp.weight_bits, s)
    if not np.isin(y, (0, unit)).all():
        raise ProofError("labels must be 0 or 1")
    step = fp.step_constant(spec)
    zq, zr, lo, hi, residual = [], [], [], [], []
    for row, label in zip(x.tolist(), y.tolist(), strict=True):
        z = sum(a * b for a, b in zip(row, g[:features].tolist(), strict=True)) + int(g[features]) * unit
        q, r = _rounded(z, s + 2)
        a = q + unit // 2
        m = max(a, 0)
        p = unit - max(unit - m, 0)
        zq.append(q)
        zr.append(r)
        lo.append(int(a < 0))
        hi.append(int(unit - m < 0))
        residual.append(p - label)
    grads = [sum(int(x[b, j]) * residual[b] for b in range(spec.batch)) for j in range(features)]
    grads.append(sum(residual) * unit)
    uq, ur = zip(*(_rounded(grad * step, 2 * s) for grad in grads), strict=True)
    update = [int(w) - q for w, q in zip(g.tolist(), uq, strict=True)]
    args = [_felts(g), _felts(x.ravel()), _felts(y), _felts(np.asarray(binding).ravel()), _felts(zq), _felts(zr),
            _felts(lo), _felts(hi), _felts(list(uq)), _felts(list(ur))]
    return StepWitness(update, args)


def packed_features(spec: ModelSpec, x: IntArray) -> list[int]:
    """X as the circuit packs it before hashing: H(X) is the commitment to these words."""
    fp = FixedPoint(spec.scale)
    bits, per_word = fp.feature_bits + 1, fp.packed_per_word
    offset = [int(v) + (1 << fp.feature_bits) for v in np.asarray(x, dtype=np.int64).ravel()]
    words = [sum(u << (bits * i) for i, u in enumerate(offset[k * per_word : (k + 1) * per_word]))
             for k in range(packed_words(spec))]
    return words
