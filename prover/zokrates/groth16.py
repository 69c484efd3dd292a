"""Groth16 verification in pure Python (py-ecc), exactly as the on-chain verifier decides.

An auditor checks a ZoKrates proof with this module alone: no Node, no chain. It takes
ZoKrates' verifying key JSON and a proof as the contract receives it (256 bytes of
calldata and the public values), and accepts exactly when the Federation's verifier
would:

* the proof is 8 words, ``a.x a.y b.x[0] b.x[1] b.y[0] b.y[1] c.x c.y``, each below the
  base field modulus (the adapter in :mod:`zkfl.prover.zokrates.evm` refuses the rest);
* there is one public value per input of the key, each below the scalar field order
  (ZoKrates' verifier ``require``s it);
* ``a`` and ``c`` are on the curve and ``b`` is on the twist and in its order-r
  subgroup, as the precompiles demand; ``(0, 0)`` is the point at infinity, as there;
* ``e(a, b) = e(alpha, beta) e(vk_x, gamma) e(c, delta)``, checked as one product of
  Miller loops with a single final exponentiation.

G2 coordinates: ZoKrates' JSON and this module both write ``[real, imaginary]``
(py-ecc's ``FQ2([c0, c1])``); the precompile takes ``imaginary, real``, and ZoKrates'
Solidity ``Pairing`` library swaps them when it calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from py_ecc.optimized_bn128 import (
    FQ,
    FQ2,
    FQ12,
    b,
    b2,
    curve_order,
    field_modulus,
    final_exponentiate,
    is_inf,
    is_on_curve,
    multiply,
    neg,
    twist,
)
from py_ecc.optimized_bn128 import add as ec_add
from py_ecc.optimized_bn128.optimized_pairing import cast_point_to_fq12, miller_loop

PROOF_WORDS = 8
PROOF_BYTES = 32 * PROOF_WORDS

G1Point = tuple[FQ, FQ, FQ]
G2Point = tuple[FQ2, FQ2, FQ2]


class InvalidPoint(ValueError):
    """A coordinate out of range, or a point off the curve or outside the subgroup."""


@dataclass(frozen=True)
class VerifyingKey:
    alpha: G1Point
    beta: G2Point
    gamma: G2Point
    delta: G2Point
    gamma_abc: list[G1Point]

    @property
    def inputs(self) -> int:
        return len(self.gamma_abc) - 1

    @classmethod
    def from_zokrates(cls, vk: dict[str, Any]) -> VerifyingKey:
        if vk.get("scheme") != "g16" or vk.get("curve") != "bn128":
            raise ValueError(f"not a Groth16 BN254 key (scheme {vk.get('scheme')!r}, curve {vk.get('curve')!r})")
        return cls(g1(_words(vk["alpha"])), g2(_words([*vk["beta"][0], *vk["beta"][1]])),
                   g2(_words([*vk["gamma"][0], *vk["gamma"][1]])), g2(_words([*vk["delta"][0], *vk["delta"][1]])),
                   [g1(_words(p)) for p in vk["gamma_abc"]])

    @cached_property
    def alpha_beta(self) -> FQ12:
        """The Miller loop of e(-alpha, beta): the same for every proof, computed once per key."""
        return miller_loop(twist(self.beta), cast_point_to_fq12(neg(self.alpha)), final_exponentiate=False)

    def unbound_inputs(self) -> list[int]:
        """Public inputs no constraint touches: their gamma_abc point is the identity, so
        any value verifies (Groth16 malleability). A sound circuit has none."""
        return [i for i, point in enumerate(self.gamma_abc[1:]) if is_inf(point)]


def _words(values: Sequence[str | int]) -> list[int]:
    return [int(v, 16) if isinstance(v, str) else int(v) for v in values]


def _field(value: int) -> int:
    if not 0 <= value < field_modulus:
        raise InvalidPoint(f"coordinate {value:#x} is not below the base field modulus")
    return value


def g1(words: Sequence[int]) -> G1Point:
    x, y = (_field(w) for w in words)
    point: G1Point = (FQ(1), FQ(1), FQ(0)) if x == y == 0 else (FQ(x), FQ(y), FQ(1))
    if not is_on_curve(point, b):
        raise InvalidPoint("G1 point is not on the curve")
    return point


def g2(words: Sequence[int]) -> G2Point:
    """``words`` = x.real, x.imaginary, y.real, y.imaginary (ZoKrates' JSON order)."""
    x0, x1, y0, y1 = (_field(w) for w in words)
    if x0 == x1 == y0 == y1 == 0:
        return (FQ2.one(), FQ2.one(), FQ2.zero())
    point: G2Point = (FQ2([x0, x1]), FQ2([y0, y1]), FQ2.one())
    if not is_on_curve(point, b2):
        raise InvalidPoint("G2 point is not on the twist curve")
    if not is_inf(multiply(point, curve_order)):
        raise InvalidPoint("G2 point is not in the order-r subgroup")
    return point


def proof_words(proof: dict[str, Any]) -> list[int]:
    """ZoKrates' proof JSON ``{"a", "b", "c"}`` as the 8 calldata words."""
    a, b_, c = proof["a"], proof["b"], proof["c"]
    return _words([*a, *b_[0], *b_[1], *c])


def encode_proof(proof: dict[str, Any]) -> bytes:
    return b"".join(w.to_bytes(32, "big") for w in proof_words(proof))


def decode_proof(data: bytes) -> list[int]:
    if len(data) != PROOF_BYTES:
        raise ValueError(f"a Groth16 proof is {PROOF_BYTES} bytes, got {len(data)}")
    return [int.from_bytes(data[i : i + 32], "big") for i in range(0, PROOF_BYTES, 32)]


def _product_is_one(pairs: list[tuple[G1Point, G2Point]], acc: FQ12) -> bool:
    for p, q in pairs:
        if is_inf(p) or is_inf(q):
            continue  # e(O, Q) = e(P, O) = 1
        acc = acc * miller_loop(twist(q), cast_point_to_fq12(p), final_exponentiate=False)
    return final_exponentiate(acc) == FQ12.one()


def verify(vk: VerifyingKey, proof: bytes, public_values: Sequence[int]) -> tuple[bool, str]:
    """(accepted, reason) for a proof in calldata form and its public values."""
    try:
        words = decode_proof(proof)
        a, b_, c = g1(words[0:2]), g2(words[2:6]), g1(words[6:8])
    except ValueError as exc:
        return False, f"malformed proof: {exc}"
    if len(public_values) != vk.inputs:
        return False, f"{len(public_values)} public values, the key takes {vk.inputs}"
    vk_x = vk.gamma_abc[0]
    for value, point in zip(public_values, vk.gamma_abc[1:], strict=True):
        if not 0 <= value < curve_order:
            return False, f"public value {value:#x} is not below the scalar field order"
        vk_x = ec_add(vk_x, multiply(point, value))
    ok = _product_is_one([(a, b_), (neg(vk_x), vk.gamma), (neg(c), vk.delta)], vk.alpha_beta)
    return (True, "") if ok else (False, "proof does not verify")
