"""What a Flower run's proofs are bound to: sent to every client with each train message.

On chain these are the task's own terms (chain id, Federation, task id), so a client's proof
is the one the contract accepts. Off chain, a run is named by a fresh random address in place
of a Federation: a proof made for one run, round or wallet is refused by every other.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from zkfl.errors import ConfigError
from zkfl.field.binding import binding_commitment, binding_value
from zkfl.field.quantize import IntArray

#: Keys of the train ConfigRecord that carry the task (Flower adds its own "server-round").
PACKAGE, CHAIN_ID, FEDERATION, TASK_ID, ROUND = (
    "zkfl.package", "zkfl.chain-id", "zkfl.federation", "zkfl.task-id", "zkfl.round")
OFF_CHAIN = 0  # the chain id of a run that no contract judges


@dataclass(frozen=True)
class FlowerTask:
    package_cid: str  # the task package (model, circuit, keys), fetched by CID from the content store
    chain_id: int
    federation: str
    task_id: int

    @classmethod
    def off_chain(cls, package_cid: str) -> FlowerTask:
        """A run verified by the strategy alone, named by a random address."""
        address = to_checksum_address("0x" + secrets.token_hex(20))
        return cls(package_cid, OFF_CHAIN, address, 1 + secrets.randbelow(2**62))  # a task id is never 0

    @property
    def on_chain(self) -> bool:
        return self.chain_id != OFF_CHAIN

    def binding(self, wallet: str) -> IntArray:
        return binding_value(self.chain_id, self.federation, self.task_id, wallet)

    def binding_commitment(self, wallet: str) -> int:
        return binding_commitment(self.binding(wallet))

    def to_config(self, round_: int) -> dict[str, Any]:
        return {PACKAGE: self.package_cid, CHAIN_ID: self.chain_id, FEDERATION: self.federation,
                TASK_ID: self.task_id, ROUND: round_}

    @classmethod
    def from_config(cls, config: Any) -> tuple[FlowerTask, int]:
        """The task and the zkfl round a train message names (a ConfigRecord or a dict)."""
        try:
            task = cls(str(config[PACKAGE]), int(config[CHAIN_ID]), to_checksum_address(str(config[FEDERATION])),
                       int(config[TASK_ID]))
            return task, int(config[ROUND])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"the train message does not name a zkfl task ({type(exc).__name__}: {exc}): "
                              "is the server running zkfl.flower.ZkFedAvg?") from None
