"""A participant's whole part in a task, as ``zkfl client run`` plays it.

Join if needed; then, each round the task opens, prove a step on the participant's own data
and submit it (through the aggregator's broker, or straight to the contract); once the task
ends, optionally settle it and withdraw the reward and stake. Every outcome reported is read
from the chain, never assumed from having sent something.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from zkfl.contracts.chain import next_block_time
from zkfl.contracts.federation import Status
from zkfl.errors import ChainError
from zkfl.middleware.client import Client

FloatArray = npt.NDArray[np.float64]
Say = Callable[[str], None]


@dataclass(frozen=True)
class SubmitPlan:
    """How each round's update reaches the contract."""

    direct: bool = False  # from this wallet (it pays the gas), no aggregator in between
    fallback_after: float | None = None  # through the broker, then directly if undecided after S seconds


@dataclass(frozen=True)
class RoundPlayed:
    round: int
    prove_seconds: float
    update_commitment: str
    decision: str  # "accepted", "rejected: <reason>", or "undecided" (not yet decided on chain)


@dataclass(frozen=True)
class Collected:
    settled_here: bool  # this wallet sent the settlement (anyone may, once the task has ended)
    reward: int  # in the task's currency's smallest unit
    stake: int
    withdrawn: bool


def decision(client: Client, round_: int) -> str:
    status, reason = client.federation.submission_status(client.task_id, round_, client.address)
    if status == Status.ACCEPTED:
        return "accepted"
    if status == Status.REJECTED:
        return f"rejected: {reason.text}"
    return "undecided"


def play(client: Client, x: FloatArray, y: FloatArray, plan: SubmitPlan, *,
         round_timeout: float | None = None, say: Say = print) -> list[RoundPlayed]:
    """Prove and submit every round this wallet has not submitted to, until the task ends
    (its last round published, its deadline passed, or this wallet slashed)."""
    sent: list[tuple[int, float, str]] = []
    for round_ in client.rounds(timeout=round_timeout):
        if sent:  # the previous round is published, so its decision is final
            say(f"round {sent[-1][0]}: {decision(client, sent[-1][0])}")
        bundle = client.train(x, y, round_)
        if plan.direct:
            submission = client.build_submission(bundle)
            client.submit_on_chain(bundle, submission)
        else:
            submission = client.submit(bundle, fallback_after=plan.fallback_after)
        commitment = submission.update_commitment
        say(f"round {round_}: proved in {bundle.metrics.prove_seconds:.1f} s, submitted update {commitment}")
        sent.append((round_, bundle.metrics.prove_seconds, commitment))
    played = [RoundPlayed(r, seconds, commitment, decision(client, r)) for r, seconds, commitment in sent]
    if played:
        say(f"round {played[-1].round}: {played[-1].decision}")
    me = client.federation.participant(client.task_id, client.address)
    say(f"task {client.task_id} ended for {client.address}: " + ("slashed" if me.slashed else
        f"{me.accepted_updates} accepted update(s), {me.verified_samples} verified samples"))
    return played


def collect(client: Client, say: Say = print) -> Collected:
    """Settle the task if nobody has yet (allowed once it has ended), then withdraw what the
    contract says this wallet is owed; nothing is sent when it is owed nothing."""
    fed, task_id = client.federation, client.task_id
    settled_here, task = False, client.task()
    if not task.settled and not task.finished and next_block_time(client.w3) <= task.deadline:
        say(f"task {task_id} is still running: withdraw once it has ended (`zkfl client withdraw`)")
        return Collected(settled_here, 0, 0, withdrawn=False)
    if not task.settled:
        try:
            fed.settle(client.account, task_id)
            settled_here = True
            say(f"task {task_id} settled")
        except ChainError:
            if not client.task().settled:  # not a race with another settler: say why
                raise
    reward, stake = fed.payout_of(task_id, client.address)
    if reward + stake == 0:
        say(f"{client.address} has nothing to withdraw from task {task_id}")
        return Collected(settled_here, 0, 0, withdrawn=False)
    fed.withdraw(client.account, task_id)
    say(f"{client.address} withdrew {reward} reward and {stake} stake (smallest units) from task {task_id}")
    return Collected(settled_here, reward, stake, withdrawn=True)
