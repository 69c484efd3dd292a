"""The binding value b that ties a participant's proofs to it and to one task.

``b`` is keccak256 of the participant's signature over a fixed message naming the
chain, the Federation and the task. Only the wallet's key can make it, yet the wallet
can re-derive it at any time (signatures are deterministic, RFC 6979). The step
circuit takes ``b`` as a private input and publishes ``H(b)``. The participant
registers ``H(b)`` when it joins, and the contract accepts a proof only from the
wallet that registered the ``H(b)`` the proof carries: a proof copied by another
wallet, or sent to another task, is refused.

``b`` enters the circuit as 16 chunks of 16 bits, small integers that ezkl takes like
any other input.
"""

from __future__ import annotations

import numpy as np
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from web3 import Web3

from zkfl.prover.commit import commit
from zkfl.prover.quantize import IntArray

BINDING_CHUNKS = 16
CHUNK_BITS = 16


def binding_message(chain_id: int, federation: str, task_id: int) -> str:
    return f"zkfl binding v1\nchain: {chain_id}\nfederation: {Web3.to_checksum_address(federation)}\ntask: {task_id}"


def binding_chunks(value: bytes) -> IntArray:
    number = int.from_bytes(value, "big")
    mask = (1 << CHUNK_BITS) - 1
    return np.array([(number >> (CHUNK_BITS * i)) & mask for i in range(BINDING_CHUNKS)], dtype=np.int64)


def binding_value(account: LocalAccount, chain_id: int, federation: str, task_id: int) -> IntArray:
    signed = account.sign_message(encode_defunct(text=binding_message(chain_id, federation, task_id)))
    return binding_chunks(bytes(Web3.keccak(bytes(signed.signature))))


def binding_commitment(chunks: IntArray) -> int:
    """H(b), what the participant registers on chain when it joins."""
    return commit(chunks)
