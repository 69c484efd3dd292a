"""H(.): the commitment to a quantized tensor.

It is exactly what ezkl's ``hashed/public`` visibility exposes for a tensor: the
Poseidon hash of the tensor's felts in row-major order. So a commitment computed here
equals the public value in a proof over the same tensor, and the aggregator, the
auditor and the contract can compare them without re-running the circuit.

The hash is unsalted: a commitment to low-entropy data (a one-hot label column, a
zero model) can be guessed. Data commitments bind a client to its data; they do
not hide it.
"""

from __future__ import annotations

import numpy as np

from zkfl.field.ezkl_api import ezkl
from zkfl.field.quantize import IntArray, felt_to_uint, ints_to_felts


def commit_felts(felts: list[str]) -> int:
    hashes = ezkl.poseidon_hash(felts)
    if len(hashes) != 1:
        raise ValueError(f"expected one Poseidon hash, got {len(hashes)}")
    return felt_to_uint(hashes[0])


def commit(values: IntArray) -> int:
    """H(q) for an integer tensor q at the task's scale, as a uint256."""
    return commit_felts(ints_to_felts(np.asarray(values, dtype=np.int64)))


def commitment_hex(value: int) -> str:
    return "0x" + int(value).to_bytes(32, "big").hex()
