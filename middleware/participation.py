"""A participant's whole part in a task, as ``zkfl client run`` plays it.

Join if needed; then, each round the task opens, prove a step on the participant's own data
and submit it (through the aggregator's broker, or straight to the contract); once the task
ends, optionally settle it and withdraw the reward and stake. Every outcome reported is read
from the chain, never assumed from having sent something.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from zkfl.contracts.federation import Status
from zkfl.errors import ChainError, ZkflError
from zkfl.middleware.client import Client, FloatArray, RoundTimeout

Say = Callable[[str], None]


@dataclass(frozen=True)
class SubmitPlan:
    """How each round's update reaches the contract."""

    direct: bool = False  # from this wallet (it pays the gas), no aggregator in between
    # Through the broker, then directly if the chain has not decided it after this many seconds;
    # None: half the task's collection window, so an aggregator that ignores this wallet cannot
    # keep its update out of the round.
    fallback_after: float | None = None


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
    (its last round published, its deadline passed on chain, or this wallet slashed). A round
    that closes while this wallet proves, or that the contract would refuse, is said and left:
    the loop goes on with the next one."""
    sent: list[tuple[int, float, str]] = []
    try:
        for round_ in client.rounds(timeout=round_timeout):
            if sent and sent[-1][0] < round_:  # the previous round is published: its decision is final
                say(f"round {sent[-1][0]}: {decision(client, sent[-1][0])}")
            try:
                sent.append(_play_round(client, x, y, plan, round_, say))
            except ZkflError as exc:  # nothing was sent that the contract would refuse (the SDK dry-runs)
                say(f"round {round_}: not submitted: {exc}")
    except RoundTimeout as exc:
        say(f"{exc}: stopping")
    played = [RoundPlayed(r, seconds, commitment, decision(client, r)) for r, seconds, commitment in sent]
    if played:
        say(f"round {played[-1].round}: {played[-1].decision}")
    me = client.federation.participant(client.task_id, client.address)
    say(f"task {client.task_id} ended for {client.address}: " + ("slashed" if me.slashed else
        f"{me.accepted_updates} accepted update(s), {me.verified_samples} verified samples"))
    return played


def _play_round(client: Client, x: FloatArray, y: FloatArray, plan: SubmitPlan, round_: int,
                say: Say) -> tuple[int, float, str]:
    bundle = client.train(x, y, round_)
    if plan.direct:
        submission = client.build_submission(bundle)
        client.submit_on_chain(bundle, submission)
    else:
        wait = plan.fallback_after if plan.fallback_after is not None else client.task().collection_window / 2
        submission = client.submit(bundle, fallback_after=wait)
    say(f"round {round_}: proved in {bundle.metrics.prove_seconds:.1f} s, "
        f"submitted update {submission.update_commitment}")
    return round_, bundle.metrics.prove_seconds, submission.update_commitment


def collect(client: Client, say: Say = print) -> Collected:
    """Settle the task if nobody has yet (the contract allows it once the task has ended), then
    withdraw what the contract says this wallet is owed; nothing is sent when it is owed nothing."""
    fed, task_id = client.federation, client.task_id
    settled_here = False
    if not client.task().settled:
        try:
            fed.settle(client.account, task_id)  # dry-run first: a refusal costs no gas
            settled_here = True
            say(f"task {task_id} settled")
        except ChainError as exc:
            if not client.task().settled:  # not a race with another settler: the task is still running
                say(f"task {task_id} cannot be settled yet ({exc}): withdraw once it has ended "
                    "(`zkfl client withdraw`)")
                return Collected(settled_here, 0, 0, withdrawn=False)
    if fed.participant(task_id, client.address).withdrawn:
        say(f"{client.address} has already withdrawn from task {task_id}")
        return Collected(settled_here, 0, 0, withdrawn=False)
    reward, stake = fed.payout_of(task_id, client.address)
    if reward + stake == 0:
        say(f"{client.address} has nothing to withdraw from task {task_id}")
        return Collected(settled_here, 0, 0, withdrawn=False)
    fed.withdraw(client.account, task_id)
    say(f"{client.address} withdrew {reward} reward and {stake} stake (smallest units) from task {task_id}")
    return Collected(settled_here, reward, stake, withdrawn=True)
