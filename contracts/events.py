"""The Federation's events as typed records, read from the chain's logs.

Read models (``zkfl.status``) and the audit take a task's history from these, not from
web3's attribute dictionaries, so a field's name and type are written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zkfl.contracts.federation import Federation, Reason
from zkfl.store import cid_from_bytes


def _tx(log: Any) -> str:
    return "0x" + bytes(log["transactionHash"]).hex()


@dataclass(frozen=True)
class UpdateAccepted:
    round: int
    participant: str
    update_commitment: int
    tx_hash: str


@dataclass(frozen=True)
class UpdateRejected:
    round: int
    participant: str
    reason: Reason
    tx_hash: str


@dataclass(frozen=True)
class GlobalModelPublished:
    """Round ``round - 1``'s aggregate: the model round ``round`` starts from."""

    round: int
    global_commitment: int
    model_cid: str
    manifest_cid: str
    tx_hash: str


@dataclass(frozen=True)
class Withdrawn:
    account: str
    reward: int
    stake: int


@dataclass(frozen=True)
class TaskHistory:
    """A task's events, fetched once."""

    initial_commitment: int
    joined: list[str]
    accepted: list[UpdateAccepted]
    rejected: list[UpdateRejected]
    published: dict[int, GlobalModelPublished]
    slashed: list[str]
    withdrawn: list[Withdrawn]

    def start_commitment(self, round_: int) -> int:
        """H(G) of the model round ``round_`` starts from."""
        published = self.published.get(round_)
        return published.global_commitment if published else self.initial_commitment


def _published(log: Any) -> GlobalModelPublished:
    args = log["args"]
    return GlobalModelPublished(int(args["round"]), int(args["globalCommitment"]),
                                cid_from_bytes(bytes(args["modelCid"])), cid_from_bytes(bytes(args["manifestCid"])),
                                _tx(log))


def task_history(fed: Federation, task_id: int) -> TaskHistory:
    created = fed.events("TaskCreated", task_id)[0]["args"]
    return TaskHistory(
        initial_commitment=int(created["globalCommitment"]),
        joined=[str(e["args"]["participant"]) for e in fed.events("Joined", task_id)],
        accepted=[UpdateAccepted(int(e["args"]["round"]), str(e["args"]["participant"]),
                                 int(e["args"]["updateCommitment"]), _tx(e))
                  for e in fed.events("UpdateAccepted", task_id)],
        rejected=[UpdateRejected(int(e["args"]["round"]), str(e["args"]["participant"]),
                                 Reason(int(e["args"]["reason"])), _tx(e))
                  for e in fed.events("UpdateRejected", task_id)],
        published={p.round: p for p in map(_published, fed.events("GlobalModelPublished", task_id))},
        slashed=[str(e["args"]["participant"]) for e in fed.events("Slashed", task_id)],
        withdrawn=[Withdrawn(str(e["args"]["account"]), int(e["args"]["reward"]), int(e["args"]["stake"]))
                   for e in fed.events("Withdrawn", task_id)],
    )
