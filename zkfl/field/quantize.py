"""The one fixed-point quantizer shared by client, circuits, aggregator and auditor.

A real number x is represented by the integer q = round(x * 2**scale), rounding half
away from zero (as Rust's ``f64::round``, which ezkl uses). Negative integers live in
the BN254 scalar field as ``p - |q|``. Felts are written as ezkl writes them: 32-byte
little-endian hex strings.

The integers are the canonical form of every model and update: the float given to
ezkl is ``q / 2**scale``, exactly representable in float32 while ``|q| < 2**24``, so
ezkl re-derives the same integer and nothing is rounded twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from zkfl.errors import ZkflError
from zkfl.field import SCALAR_FIELD_MODULUS as FIELD_MODULUS

#: |q| must stay below this so that q / 2**scale is exact in float32 (ezkl reads F32).
MAX_ABS_INT = 2**24

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Quantizer:
    scale: int

    @property
    def unit(self) -> float:
        """The value of one quantum, 2**-scale."""
        return 2.0**-self.scale

    def to_int(self, values: npt.ArrayLike) -> IntArray:
        x = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise ZkflError("cannot quantize NaN or infinite values")
        scaled = x * (1 << self.scale)
        q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)  # half away from zero
        if np.any(np.abs(q) >= MAX_ABS_INT):
            raise ZkflError(
                f"value out of fixed-point range: |x| must be < {MAX_ABS_INT * self.unit:g} "
                f"at scale {self.scale}"
            )
        return q.astype(np.int64)

    def to_float(self, q: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.asarray(q, dtype=np.float64) / (1 << self.scale)


def int_to_felt(value: int) -> str:
    return (int(value) % FIELD_MODULUS).to_bytes(32, "little").hex()


def signed(value: int) -> int:
    """A field element (as a uint256 below p) read as a signed integer in (-p/2, p/2]."""
    return value - FIELD_MODULUS if value > FIELD_MODULUS // 2 else value


def felt_to_int(felt: str) -> int:
    """A felt (little-endian hex) as a signed integer in (-p/2, p/2]."""
    value = int.from_bytes(bytes.fromhex(felt.removeprefix("0x")), "little")
    if value >= FIELD_MODULUS:
        raise ZkflError(f"felt {felt} is not reduced modulo the field")
    return signed(value)


def ints_to_felts(values: Iterable[int] | IntArray) -> list[str]:
    return [int_to_felt(int(v)) for v in np.asarray(values).ravel()]


def felts_to_ints(felts: Sequence[str]) -> IntArray:
    return np.array([felt_to_int(f) for f in felts], dtype=np.int64)


def felt_to_uint(felt: str) -> int:
    """A felt as the unsigned integer the EVM verifier takes as a public input."""
    return int.from_bytes(bytes.fromhex(felt.removeprefix("0x")), "little")


def uint_to_felt(value: int) -> str:
    return int(value).to_bytes(32, "little").hex()
