"""BN254 G1 points as the EVM's precompiles write them: affine (x, y), (0, 0) for infinity.

KZG commitments (``zkfl.circuits.linked``) are such points; the chain adds and scales them
with ecAdd and ecMul, and whoever checks the chain (an aggregator, an auditor) does the same
here with py-ecc's arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable

from py_ecc.optimized_bn128 import FQ, Z1, add, b, is_inf, is_on_curve, multiply, neg, normalize

from zkfl.field import BASE_FIELD_MODULUS

#: An affine point (x, y) over the base field; (0, 0) is the point at infinity.
G1Point = tuple[int, int]
INFINITY: G1Point = (0, 0)
POINT_BYTES = 64  # x then y, 32 bytes each, big-endian: in proof bytes and in calldata


def _projective(point: G1Point) -> tuple[FQ, FQ, FQ]:
    if point == INFINITY:
        return Z1
    if not all(0 <= coordinate < BASE_FIELD_MODULUS for coordinate in point):
        raise ValueError(f"not a canonical BN254 G1 point (a coordinate is not below the base field modulus): {point}")
    projective = (FQ(point[0]), FQ(point[1]), FQ(1))
    if not is_on_curve(projective, b):
        raise ValueError(f"not a BN254 G1 point: {point}")
    return projective


def _affine(projective: tuple[FQ, FQ, FQ]) -> G1Point:
    if is_inf(projective):
        return INFINITY
    x, y = normalize(projective)
    return int(x.n), int(y.n)


def g1_sum(points: Iterable[G1Point]) -> G1Point:
    total = Z1
    for point in points:
        total = add(total, _projective(point))
    return _affine(total)


def g1_scale(point: G1Point, factor: int) -> G1Point:
    """factor * point, for any integer factor (a negative one scales the negation)."""
    scaled = multiply(_projective(point), abs(factor))
    return _affine(neg(scaled) if factor < 0 else scaled)


def g1_negate(point: G1Point) -> G1Point:
    return _affine(neg(_projective(point)))


def points_in(data: bytes, count: int) -> list[G1Point]:
    """The first ``count`` points of ``data`` (a proof's bytes), each checked to be on the curve."""
    if len(data) < count * POINT_BYTES:
        raise ValueError(f"{len(data)} bytes cannot hold {count} points")
    points = []
    for at in range(0, count * POINT_BYTES, POINT_BYTES):
        point = int.from_bytes(data[at:at + 32], "big"), int.from_bytes(data[at + 32:at + POINT_BYTES], "big")
        _projective(point)
        points.append(point)
    return points
