"""The floor every proof stands on: the BN254 fields, fixed-point integers and commitments.

Everything above (circuits, provers, contracts, roles) takes its field constants from
here, so the moduli are written once.
"""

from __future__ import annotations

#: The BN254 scalar field order r: the field of halo2/KZG and of Groth16 on BN254, in which
#: every witness value, public value and Poseidon hash lives.
SCALAR_FIELD_MODULUS = 0x30644E72E131A029B85045B68181585D2833E84879B9709143E1F593F0000001

#: The BN254 base field modulus q: the field of the curve points' coordinates.
BASE_FIELD_MODULUS = 0x30644E72E131A029B85045B68181585D97816A916871CA8D3C208C16D87CFD47
