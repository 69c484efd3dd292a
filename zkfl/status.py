"""A task's state, rebuilt from the chain's events, merged with the aggregator's metrics.

One record family, :class:`TaskStatus` with its :class:`RoundStatus` rows, is what
``zkfl task status --json`` prints, what the demo report holds and what the dashboard's
``/api/tasks/{id}`` returns (its OpenAPI schema). Chain facts come from events only;
accuracy, loss and proof times come from the aggregator's metrics file when this machine
has it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from eth_typing import HexStr
from pydantic import BaseModel, Field, ValidationError
from web3.logs import DISCARD
from web3.types import TxReceipt

from zkfl.aggregator.records import load_rounds, metrics_path
from zkfl.artifacts import PackageReader
from zkfl.contracts.chain import chain_key
from zkfl.contracts.events import GlobalModelPublished, TaskHistory, task_history
from zkfl.contracts.federation import Federation
from zkfl.field.commit import commitment_hex
from zkfl.middleware.transport.base import task_key
from zkfl.store import open_store

log = logging.getLogger(__name__)


class Rejection(BaseModel):
    wallet: str
    reason: str
    on_chain: bool = Field(description="False: refused before the chain (dead-lettered, nobody slashed)")


class AggregationProofStatus(BaseModel):
    """The round's FedAvg proof as the chain saw it."""

    tx_hash: str
    gas: int
    verified_on_chain: bool = Field(description="the publishing transaction succeeded and this Federation emitted "
                                                "GlobalModelPublished, which it does only after its verifier said yes")
    prove_seconds: float | None = None


class RoundStatus(BaseModel):
    round: int
    start_commitment: str = Field(description="H(G) of the model the round starts from")
    global_commitment: str | None = Field(None, description="H(G) of the model the round produced, once published")
    model_cid: str | None = None
    publish_tx: str | None = None
    aggregation_proof: AggregationProofStatus | None = None
    accepted: list[str] = Field(default_factory=list, description="wallets whose updates the contract accepted")
    rejected: list[Rejection] = Field(default_factory=list)
    accuracy: float | None = Field(None, description="test accuracy of the produced model (aggregator's metrics)")
    loss: float | None = None
    reference_accuracy: float | None = Field(None, description=(
        "held-out accuracy of float FedAvg over the same accepted batches, where the aggregator's runner knows "
        "every participant's data (the demo, a simulation); null elsewhere"))
    prove_seconds: list[float] = Field(default_factory=list)
    verify_gas: list[int] = Field(default_factory=list)
    accepted_update_gas: list[int] = Field(default_factory=list, description=(
        "gas of each accepted update's submission, from its receipt; a batch transaction's gas is shared "
        "evenly by the updates it decided"))
    round_gas: int | None = Field(default=None, description=(
        "gas of the round's submissions (accepted and rejected) and of the transaction that published its model"))
    client_metrics: dict[str, dict[str, float | None]] = Field(default_factory=dict)


class TaskStatus(BaseModel):
    task_id: int
    federation: str
    chain_id: int
    organisation: str
    aggregator: str
    verifier: str
    package_cid: str
    proof_system: str | None = Field(None, description="the proving backend, when this machine's store has the package")
    reward_pool: int = Field(description="wei")
    slashed_pool: int = Field(description="wei")
    min_stake: int = Field(description="wei")
    deadline: int = Field(description="unix time (chain time)")
    total_rounds: int
    current_round: int
    settled: bool
    participants: list[str]
    rounds: list[RoundStatus]
    rewards: dict[str, int] = Field(description="wei per wallet, once settled")
    slashed: list[str]


_PACKAGES: PackageReader | None = None


def _proof_system(package_cid: str) -> str | None:
    """The task's proving backend, from its package when this machine holds it: bounded and read
    once (status is rebuilt every second for each open dashboard page)."""
    global _PACKAGES
    if _PACKAGES is None:
        _PACKAGES = PackageReader(open_store(), fetch=False)  # never a network fetch inside a status read
    package = _PACKAGES.get(package_cid)
    return package.backend if package is not None else None


def task_status(fed: Federation, task_id: int) -> TaskStatus:
    task = fed.task(task_id)
    history = task_history(fed, task_id)
    withdrawn = {w.account: w.reward for w in history.withdrawn}
    rewards: dict[str, int] = {}
    for wallet in dict.fromkeys(history.joined):
        if wallet in withdrawn:
            rewards[wallet] = withdrawn[wallet]
        elif task.settled:
            rewards[wallet] = fed.payout_of(task_id, wallet)[0]
    return TaskStatus(
        task_id=task_id, federation=fed.address, chain_id=fed.w3.eth.chain_id, organisation=task.organisation,
        aggregator=task.aggregator, verifier=task.verifier, package_cid=task.package_cid,
        proof_system=_proof_system(task.package_cid), reward_pool=task.reward_pool, slashed_pool=task.slashed_pool,
        min_stake=task.min_stake, deadline=task.deadline, total_rounds=task.rounds, current_round=task.current_round,
        settled=task.settled, participants=list(dict.fromkeys(history.joined)),
        rounds=round_statuses(fed, task_id, history, min(task.rounds, task.current_round + 1)),
        rewards=rewards, slashed=history.slashed,
    )


def round_statuses(fed: Federation, task_id: int, history: TaskHistory, count: int) -> list[RoundStatus]:
    """The first ``count`` rounds: chain facts from events, metrics where this machine has them."""
    chain = chain_key(fed.w3)
    metrics = {r["round"]: r for r in load_rounds(metrics_path(task_key(chain, fed.address, task_id)))}
    withdrawn = {(e.round, e.participant) for e in history.rejected}  # rejected after acceptance (challenged)
    rounds: list[RoundStatus] = []
    for r in range(count):
        produced = history.published.get(r + 1)
        extra = metrics.get(r, {})
        on_chain = [Rejection(wallet=e.participant, reason=e.reason.text, on_chain=True)
                    for e in history.rejected if e.round == r]
        off_chain = _off_chain_rejections(extra.get("rejected", []))
        rounds.append(RoundStatus(
            round=r,
            start_commitment=commitment_hex(history.start_commitment(r)),
            global_commitment=commitment_hex(produced.global_commitment) if produced else None,
            model_cid=produced.model_cid if produced else None,
            publish_tx=produced.tx_hash if produced else None,
            aggregation_proof=_aggregation_proof(fed, chain, produced, extra) if produced else None,
            accepted=[e.participant for e in history.accepted if e.round == r and (r, e.participant) not in withdrawn],
            rejected=on_chain + off_chain,
            accuracy=extra.get("accuracy"), loss=extra.get("loss"), reference_accuracy=extra.get("reference_accuracy"),
            prove_seconds=extra.get("prove_seconds", []), verify_gas=extra.get("verify_gas", []),
            client_metrics=extra.get("client_metrics", {}),
        ))
        _add_gas(fed, chain, history, rounds[-1])
    return rounds


def _add_gas(fed: Federation, chain: str, history: TaskHistory, row: RoundStatus) -> None:
    """Gas from the receipts of the round's submission transactions and of its publication."""
    decisions: dict[str, list[str]] = {}
    for e in [*history.accepted, *history.rejected]:
        if e.round == row.round:
            decisions.setdefault(e.tx_hash, []).append(e.participant)
    gas = {tx: int(_receipt(fed, chain, tx)["gasUsed"]) for tx in decisions}
    accepted = {(e.participant, e.tx_hash) for e in history.accepted if e.round == row.round}
    row.accepted_update_gas = [gas[tx] // len(decisions[tx]) for wallet, tx in sorted(accepted)
                               if wallet in row.accepted]
    publish = row.aggregation_proof.gas if row.aggregation_proof else 0
    row.round_gas = sum(gas.values()) + publish if gas else None


_RECEIPTS: OrderedDict[tuple[str, str], TxReceipt] = OrderedDict()
_RECEIPTS_KEPT = 4096
_RECEIPTS_LOCK = threading.Lock()


def _receipt(fed: Federation, chain: str, tx_hash: str) -> TxReceipt:
    """A mined transaction's receipt, read once per chain (``chain_key``): the dashboard rebuilds a
    task's status every second for each open page, and a receipt never changes once it is mined."""
    key = (chain, tx_hash)
    with _RECEIPTS_LOCK:
        if key in _RECEIPTS:
            _RECEIPTS.move_to_end(key)
            return _RECEIPTS[key]
    receipt = fed.w3.eth.get_transaction_receipt(HexStr(tx_hash))
    with _RECEIPTS_LOCK:
        _RECEIPTS[key] = receipt
        while len(_RECEIPTS) > _RECEIPTS_KEPT:
            _RECEIPTS.popitem(last=False)
    return receipt


def _off_chain_rejections(entries: Any) -> list[Rejection]:
    """Refusals before the chain, from the aggregator's metrics file: an entry that is not a
    rejection record is left out (the file is local, not evidence), not a failed status."""
    found = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            rejection = Rejection.model_validate(entry)
        except ValidationError:
            log.warning("skipping a malformed rejection in the aggregator's metrics: %r", entry)
            continue
        if not rejection.on_chain:
            found.append(rejection)
    return found


def _aggregation_proof(fed: Federation, chain: str, published: GlobalModelPublished,
                       metrics: dict[str, Any]) -> AggregationProofStatus:
    """The round's FedAvg proof as the chain saw it: ``publishGlobalModel`` only succeeds
    after the contract verified it, so a published round is a proven aggregation."""
    receipt = _receipt(fed, chain, published.tx_hash)
    # Read from the receipt, not assumed: a successful transaction in which this Federation
    # emitted GlobalModelPublished (it emits it only after the aggregation verifier said yes).
    emitted = [log for log in fed.contract.events.GlobalModelPublished().process_receipt(receipt, errors=DISCARD)
               if str(log["address"]).lower() == fed.address.lower()]
    return AggregationProofStatus(
        tx_hash=published.tx_hash,
        gas=int(receipt["gasUsed"]),
        verified_on_chain=receipt["status"] == 1 and bool(emitted),
        prove_seconds=metrics.get("aggregation_prove_seconds"),
    )
