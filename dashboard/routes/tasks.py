"""Public chain data: the task list, one task's full status, and its live updates.

Everything here is read from the chain (and the aggregator's metrics file), as public as
the chain itself: no sign-in.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from zkfl.dashboard.context import CHAIN_UNAVAILABLE, DashboardContext
from zkfl.dashboard.models import ERRORS, TaskOrder
from zkfl.dashboard.portal import TaskListing, TaskPhase
from zkfl.status import TaskStatus, task_status


def router(ctx: DashboardContext) -> APIRouter:
    api = APIRouter()

    @api.get("/api/tasks", responses=ERRORS)
    def list_tasks(state: TaskPhase | None = None, sort: TaskOrder | None = None) -> list[TaskListing]:
        """Every task on this Federation, with its terms and its package's model, from the chain
        and the package. ``state``: only those open for joining, running (no longer joinable,
        not settled) or settled. ``sort``: reward pool, largest first, or deadline, soonest first."""
        return ctx.portal().listings(state, sort.value if sort else None)

    @api.get("/api/tasks/{task_id}/terms", responses=ERRORS)
    def get_terms(task_id: int) -> TaskListing:
        """One task as the list shows it (its terms and its package's model), without listing the rest."""
        portal = ctx.portal()
        ctx.known_task(task_id)
        return portal.listing(task_id, portal.chain_time())

    @api.get("/api/tasks/{task_id}", responses=ERRORS, response_model=TaskStatus)
    def get_task(task_id: int) -> TaskStatus:
        return task_status(ctx.known_task(task_id), task_id)

    @api.get("/api/tasks/{task_id}/events", include_in_schema=False)
    async def task_events(task_id: int, request: Request, poll: float = 1.0) -> StreamingResponse:
        """Server-sent events: the task's status whenever it changes (rounds, decisions, payouts)."""
        await asyncio.to_thread(ctx.known_task, task_id)  # 404 before the stream opens, off the event loop
        stream = status_changes(ctx, task_id, request, max(0.2, min(poll, 10.0)))
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return api


async def status_changes(ctx: DashboardContext, task_id: int, request: Request, interval: float) -> AsyncIterator[str]:
    """The task's status as an SSE event each time it differs from the last one sent, and a
    comment otherwise (so proxies and the browser see the connection alive), until the client leaves."""
    last = ""
    while not await request.is_disconnected():
        try:
            status = await asyncio.to_thread(task_status, ctx.fed(), task_id)
        except CHAIN_UNAVAILABLE:  # end the stream cleanly: the browser reconnects and gets the 503
            yield "event: unavailable\ndata: the chain does not answer\n\n"
            return
        body = status.model_dump_json()
        digest = hashlib.sha256(body.encode()).hexdigest()
        if digest != last:
            last = digest
            yield f"event: status\ndata: {body}\n\n"
        else:
            yield ": keep-alive\n\n"
        await asyncio.sleep(interval)
