"""The organisations' private notes on their tasks: off chain, behind sign-in.

Notes belong to whoever holds the task's organisation role on chain when the request
arrives (not to the task's creator), so granting and revoking the role moves them.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from zkfl.contracts.chain import chain_key
from zkfl.contracts.federation import Federation
from zkfl.dashboard.context import DashboardContext, SessionToken
from zkfl.dashboard.models import ERRORS, Notes
from zkfl.middleware.transport.base import task_key


def organisation_of(ctx: DashboardContext, task_id: int, token: str | None) -> tuple[Federation, str]:
    """The federation and the signed-in wallet, if it holds the task's organisation role now.

    Read from the chain on every request: the role, not the task's creator, owns the
    notes, so a grant or a revocation takes effect at once."""
    f = ctx.known_task(task_id)
    address = ctx.sessions.address(token)
    if address is None:
        raise HTTPException(status_code=401, detail="sign in with the organisation's wallet to see notes")
    try:
        role = f.contract.functions.organisationRole(task_id).call()
        holds = bool(f.contract.functions.hasRole(role, address).call())
    except Exception as exc:  # web3 raises several types for an unreachable or failing node
        raise HTTPException(status_code=503, detail=f"the chain did not answer hasRole: {exc}") from None
    if not holds:
        raise HTTPException(status_code=403, detail=f"{address} is not task {task_id}'s organisation "
                                                    "(it does not hold the task's organisation role)")
    return f, address


def _notes_key(f: Federation, task_id: int) -> str:
    """The task's key across chains: a restarted anvil reuses addresses and task ids."""
    return task_key(chain_key(f.w3), f.address, task_id)


def router(ctx: DashboardContext) -> APIRouter:
    api = APIRouter()

    @api.get("/api/tasks/{task_id}/notes", responses=ERRORS)
    def read_notes(task_id: int, zkfl_session: SessionToken = None) -> Notes:
        """The organisation's private notes on its task (off chain; sign-in required)."""
        f, _ = organisation_of(ctx, task_id, zkfl_session)
        return Notes(notes=ctx.notes.get(_notes_key(f, task_id)))

    @api.put("/api/tasks/{task_id}/notes", responses=ERRORS)
    def write_notes(task_id: int, body: Notes, zkfl_session: SessionToken = None) -> Notes:
        f, author = organisation_of(ctx, task_id, zkfl_session)
        ctx.notes.put(_notes_key(f, task_id), body.notes, author)
        return body

    return api
