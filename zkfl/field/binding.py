"""The binding value b that ties a participant's proofs to one (chain, Federation, task, wallet).

``b = keccak256(abi.encode(keccak256("zkfl binding v2"), chainId, federation, taskId, wallet))``.
The Federation derives b itself when a wallet joins (``bindingOf``) and stores ``H(b)``;
it accepts a proof only if the proof carries the submitter's ``H(b)`` as a public value.
So nobody registers a binding of their choosing: a proof copied from another wallet,
task, deployment or chain carries the wrong ``H(b)`` and is refused. b is public (anyone
can compute it, and the portal's wallets can too); what makes it binding is that the
contract, not the participant, decides which b a wallet's proofs must carry.

``b`` enters the circuit as 16 chunks of 16 bits (chunk i = bits 16i..16i+15), small
integers that ezkl takes like any other input; ``H(b)`` is the Poseidon hash of the chunks,
which the contract recomputes with PoseidonT2.
"""

from __future__ import annotations

import numpy as np
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from zkfl.field.commit import commit
from zkfl.field.quantize import IntArray

BINDING_CHUNKS = 16
CHUNK_BITS = 16
BINDING_TAG = keccak(text="zkfl binding v2")


def binding_chunks(value: bytes) -> IntArray:
    number = int.from_bytes(value, "big")
    mask = (1 << CHUNK_BITS) - 1
    return np.array([(number >> (CHUNK_BITS * i)) & mask for i in range(BINDING_CHUNKS)], dtype=np.int64)


def binding_value(chain_id: int, federation: str, task_id: int, wallet: str) -> IntArray:
    """b's chunks for a wallet in a task, exactly as the Federation derives them."""
    context = encode(["bytes32", "uint256", "address", "uint256", "address"],
                     [BINDING_TAG, chain_id, to_checksum_address(federation), task_id,
                      to_checksum_address(wallet)])
    return binding_chunks(keccak(context))


def binding_commitment(chunks: IntArray) -> int:
    """H(b): what the contract stores at join and every proof of this wallet must carry."""
    return commit(chunks)
