"""The participants' portal: one wallet's standing, the transactions a browser wallet
signs, and the researchers' per-round and per-participant figures.

Reads only (the chain and this machine's metrics): the server prepares transactions but
never signs or sends one.
"""

from __future__ import annotations

import csv
import io
import statistics
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from web3 import Web3

from zkfl.contracts.events import task_history
from zkfl.dashboard.context import DashboardContext
from zkfl.dashboard.models import ERRORS
from zkfl.dashboard.portal import ParticipantView, participant_view
from zkfl.dashboard.wallet import PreparedAction, RefusedAction, WalletAction, prepare
from zkfl.status import RoundStatus, task_status

Wallet = Annotated[str, Query(description="the 0x-prefixed address that will sign", max_length=64)]
CSV_COLUMNS = ("round", "accepted", "rejected", "accuracy", "loss", "median_prove_seconds", "median_verify_gas",
               "round_gas", "global_commitment", "model_cid")


class Contribution(BaseModel):
    wallet: str
    accepted_rounds: list[int]
    rejected_rounds: list[int]
    verified_samples: int
    share: float = Field(description="fraction of the task's verified samples")
    reward: int = Field(description="paid (once withdrawn) or accrued now, in the token's smallest unit")
    slashed: bool


def checked_wallet(wallet: str) -> str:
    if not Web3.is_address(wallet):
        raise HTTPException(status_code=400, detail=f"{wallet[:64]!r} is not an Ethereum address")
    body = wallet.removeprefix("0x").removeprefix("0X")
    if body != body.lower() and body != body.upper() and not Web3.is_checksum_address(wallet):
        # Mixed case is an EIP-55 checksum: a wrong one is a typo, and would name another wallet.
        raise HTTPException(status_code=400, detail=f"{wallet[:64]} fails its EIP-55 checksum (a typo?)")
    return Web3.to_checksum_address(wallet)


class PortalInfo(BaseModel):
    """Where this portal's chain is: what the page fills into the commands it shows."""

    chain_id: int
    rpc_url: str | None = Field(description="the RPC URL participants may use (null: this portal's own carries "
                                            "credentials, so each participant uses one of their own)")
    federation: str


def router(ctx: DashboardContext) -> APIRouter:
    api = APIRouter()

    @api.get("/api/portal", responses=ERRORS)
    def portal_info() -> PortalInfo:
        fed = ctx.fed()
        return PortalInfo(chain_id=fed.w3.eth.chain_id, rpc_url=ctx.public_rpc, federation=fed.address)

    @api.get("/api/tasks/{task_id}/participants/{wallet}", responses=ERRORS)
    def get_participant(task_id: int, wallet: str) -> ParticipantView:
        """A wallet's standing in a task: joined, each round's verdict, reward accrued, withdrawal."""
        return participant_view(ctx.known_task(task_id), task_id, checked_wallet(wallet))

    @api.get("/api/tasks/{task_id}/transactions/{action}", responses=ERRORS)
    def prepare_transactions(task_id: int, action: WalletAction, wallet: Wallet,
                             stake: Annotated[int | None, Query(ge=0, lt=2**256)] = None) -> PreparedAction:
        """The unsigned calls for ``wallet`` to sign and send with its own wallet, in order; 400 with
        the chain's reason when it would refuse them (checked before anything is signed)."""
        fed = ctx.known_task(task_id)
        try:
            return prepare(fed, task_id, action, checked_wallet(wallet), stake)
        except RefusedAction as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

    @api.get("/api/tasks/{task_id}/rounds", responses=ERRORS)
    def get_rounds(task_id: int) -> list[RoundStatus]:
        """The per-round figures (also as CSV at ``rounds.csv``)."""
        return task_status(ctx.known_task(task_id), task_id).rounds

    @api.get("/api/tasks/{task_id}/rounds.csv", response_class=Response,
             responses={200: {"content": {"text/csv": {}}, "description": "one row per round"}, **ERRORS})
    def get_rounds_csv(task_id: int) -> Response:
        body = rounds_csv(get_rounds(task_id))
        return Response(body, media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="task-{task_id}-rounds.csv"'})

    @api.get("/api/tasks/{task_id}/contributions", responses=ERRORS)
    def get_contributions(task_id: int) -> list[Contribution]:
        """Each participant's part: accepted and rejected rounds, verified samples, reward."""
        return contributions(ctx, task_id)

    return api


def rounds_csv(rounds: list[RoundStatus]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rounds:
        writer.writerow([
            r.round, len(r.accepted), len(r.rejected), _blank(r.accuracy), _blank(r.loss),
            _blank(statistics.median(r.prove_seconds) if r.prove_seconds else None),
            _blank(statistics.median(r.verify_gas) if r.verify_gas else None), _blank(r.round_gas),
            r.global_commitment or "", r.model_cid or ""])
    return out.getvalue()


def _blank(value: object) -> object:
    return "" if value is None else value


def contributions(ctx: DashboardContext, task_id: int) -> list[Contribution]:
    fed = ctx.known_task(task_id)
    history, total = task_history(fed, task_id), fed.task(task_id).verified_samples
    withdrawn = {w.account: w.reward for w in history.withdrawn}
    rows = []
    for wallet in dict.fromkeys(history.joined):  # a wallet that left and joined again is one participant
        state = fed.participant(task_id, wallet)
        rejected = sorted({e.round for e in history.rejected if e.participant == wallet})
        accepted = sorted({e.round for e in history.accepted if e.participant == wallet} - set(rejected))
        reward = withdrawn[wallet] if wallet in withdrawn else fed.payout_of(task_id, wallet)[0]
        rows.append(Contribution(wallet=wallet, accepted_rounds=accepted, rejected_rounds=rejected,
                                 verified_samples=state.verified_samples,
                                 share=state.verified_samples / total if total else 0.0,
                                 reward=reward, slashed=state.slashed))
    return rows
