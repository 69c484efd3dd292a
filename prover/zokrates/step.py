"""The host's half of a ZoKrates step: the same integers as the circuit, and its hints.

:func:`linear_step` computes, in exact integer arithmetic, what the program of
:mod:`zkfl.circuits.zokrates_step` computes, and returns the update together with the
program's arguments: the inputs and, for each rounded division, its quotient and
remainder, for each clamp, its branch. The circuit checks each hint, so a wrong one
only makes witness generation fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zkfl.circuits.spec import ModelSpec
from zkfl.circuits.zokrates_step import (
    LOGIT_CLAMP,
    SQUARINGS,
    TAYLOR_ORDER,
    FixedPoint,
    check_supported,
    hint_names,
    outputs,
    packed_words,
)
from zkfl.errors import ProofError
from zkfl.field.binding import BINDING_CHUNKS
from zkfl.field.poseidon import P
from zkfl.field.quantize import IntArray


@dataclass(frozen=True)
class StepWitness:
    update: list[int]
    args: list[Any]  # the program's arguments, in main's order, as ZoKrates takes them


@dataclass
class _Hints:
    values: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, *values: int) -> None:
        self.values.setdefault(name, []).extend(values)

    def rescale(self, value: int, bits: int, quotient: str, remainder: str) -> int:
        """round(value / 2^bits), half up: value + 2^(bits-1) = q 2^bits + r, 0 <= r < 2^bits."""
        shifted = value + (1 << (bits - 1))
        q = shifted >> bits  # floor, also for negatives
        self.add(quotient, q)
        self.add(remainder, shifted - (q << bits))
        return q

    def relu(self, value: int, branch: str) -> int:
        self.add(branch, int(value < 0))
        return max(value, 0)

    def divide(self, numerator: int, denominator: int, quotient: str, remainder: str) -> int:
        """round(n / d), half up: 2n + d = 2d q + r, 0 <= r < 2d."""
        q, r = divmod(2 * numerator + denominator, 2 * denominator)
        self.add(quotient, q)
        self.add(remainder, r)
        return q


def _felts(values: list[int] | IntArray) -> list[str]:
    return [str(int(v) % P) for v in values]


def _require_range(name: str, values: IntArray, bits: int, scale: int) -> None:
    worst = int(np.abs(values).max()) if values.size else 0
    if worst >= 1 << bits:
        raise ProofError(f"{name} out of the circuit's range: |value| {worst / 2**scale:g} >= {2**bits / 2**scale:g}")


def _probabilities(spec: ModelSpec, fp: FixedPoint, logits: list[int], hints: _Hints) -> list[int]:
    """One row's link: logits at scale 2s -> probabilities at scale s (hints recorded)."""
    s, unit = spec.scale, 1 << spec.scale
    if spec.family == "logreg":
        [z] = logits
        a = hints.rescale(z, s + 2, "zq", "zr") + unit // 2
        m = hints.relu(a, "lo")
        return [unit - hints.relu(unit - m, "hi")]
    clamp, xs, taylor = LOGIT_CLAMP * unit, fp.exp_scale, fp.taylor()
    exps = []
    for z in logits:
        m = hints.relu(hints.rescale(z, s, "zq", "zr") + clamp, "lo")
        t = clamp - hints.relu(2 * clamp - m, "hi")
        h = taylor[TAYLOR_ORDER]
        for k in range(TAYLOR_ORDER - 1, -1, -1):
            h = taylor[k] + hints.rescale(h * t << fp.exp_shift, xs, "hq", "hr")
        for _ in range(SQUARINGS):
            h = hints.rescale(h * h, xs, "sq", "sr")
        exps.append(h)
    total = sum(exps)
    return [hints.divide(e * unit, total, "pq", "pr") for e in exps]


def linear_step(spec: ModelSpec, g: IntArray, x: IntArray, y: IntArray, binding: IntArray) -> StepWitness:
    check_supported(spec)
    fp = FixedPoint(spec.scale)
    s, unit, features, out = spec.scale, 1 << spec.scale, spec.features, outputs(spec)
    g = np.asarray(g, dtype=np.int64).ravel()
    x = np.asarray(x, dtype=np.int64).reshape(spec.batch, features)
    y = np.asarray(y, dtype=np.int64).ravel()
    if g.size != spec.param_count or y.size != spec.batch * out or np.asarray(binding).size != BINDING_CHUNKS:
        raise ProofError(f"a {spec.family} step takes {spec.param_count} weights, {spec.batch * out} labels and "
                         f"{BINDING_CHUNKS} binding chunks; got {g.size}, {y.size}, {np.asarray(binding).size}")
    _require_range("a feature", x, fp.feature_bits, s)
    if np.abs(x).max(initial=0) > round(spec.feature_bound * unit):
        raise ProofError(f"a feature lies outside the task's declared bound |x| <= {spec.feature_bound}")
    _require_range("a model weight", g, fp.weight_bits, s)
    if not np.isin(y, (0, unit)).all() or (out > 1 and not (y.reshape(-1, out).sum(axis=1) == unit).all()):
        raise ProofError("labels must be 0 or 1 (one-hot for softmax)")
    weights = [[int(g[j * out + o]) for o in range(out)] for j in range(features)]
    bias = [int(g[features * out + o]) for o in range(out)]
    labels = y.reshape(spec.batch, out).tolist()
    hints = _Hints()
    residual = []
    for row, label in zip(x.tolist(), labels, strict=True):
        logits = [sum(row[j] * weights[j][o] for j in range(features)) + bias[o] * unit for o in range(out)]
        residual.append([p - t for p, t in zip(_probabilities(spec, fp, logits, hints), label, strict=True)])
    grads = [0] * spec.param_count
    for o in range(out):
        for j in range(features):
            grads[j * out + o] = sum(int(x[b, j]) * residual[b][o] for b in range(spec.batch))
        grads[features * out + o] = sum(residual[b][o] for b in range(spec.batch)) * unit
    step = fp.step_constant(spec)
    update = [int(w) - hints.rescale(grad * step, 2 * s, "uq", "ur") for w, grad in zip(g.tolist(), grads, strict=True)]
    # Hints were recorded in the program's order: pair by pair (i = b * O + o, each pair's
    # Horner steps and squarings together), and the update's in parameter order.
    args = [_felts(g), _felts(x.ravel()), _felts(y), _felts(np.asarray(binding).ravel())]
    args += [_felts(hints.values[name]) for name in hint_names(spec)]
    return StepWitness(update, args)


def packed_features(spec: ModelSpec, x: IntArray) -> list[int]:
    """X as the circuit packs it before hashing: H(X) is the commitment to these words."""
    fp = FixedPoint(spec.scale)
    bits, per_word = fp.feature_bits + 1, fp.packed_per_word
    offset = [int(v) + (1 << fp.feature_bits) for v in np.asarray(x, dtype=np.int64).ravel()]
    return [sum(u << (bits * i) for i, u in enumerate(offset[k * per_word : (k + 1) * per_word]))
            for k in range(packed_words(spec))]
