"""The researchers' dashboard: a JSON API over the chain's events, and one live page.

Everything shown is read from the chain (tasks, rounds, accepted and rejected
updates with reasons, rewards, slashes) and from the aggregator's metrics file on
this machine (accuracy, loss, proof times, gas). The page follows each task over
server-sent events and draws its curves with uPlot, served from the pinned npm tools
(no CDN: the page works offline).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from zkfl.contracts.chain import connect
from zkfl.contracts.federation import Federation, resolve_federation
from zkfl.errors import ZkflError
from zkfl.paths import tools_dir
from zkfl.status import task_status

STATIC = Path(__file__).resolve().parent / "static"


def create_app(rpc_url: str, federation: str | None = None) -> FastAPI:
    app = FastAPI(title="zkfl dashboard", version="0.1.0")
    state: dict[str, Federation] = {}

    def fed() -> Federation:
        if "fed" not in state:
            try:
                state["fed"] = resolve_federation(connect(rpc_url), federation)
            except ZkflError as exc:
                raise HTTPException(status_code=503, detail=str(exc)) from None
        return state["fed"]

    @app.get("/api/tasks")
    def list_tasks() -> list[dict[str, Any]]:
        f = fed()
        tasks = []
        for task_id in range(1, f.task_count() + 1):
            t = f.task(task_id)
            tasks.append({"task_id": task_id, "organisation": t.organisation, "rounds": t.rounds,
                          "current_round": t.current_round, "reward_pool": t.reward_pool, "settled": t.settled,
                          "active_participants": t.active_participants})
        return tasks

    @app.get("/api/tasks/{task_id}")
    def get_task(task_id: int) -> dict[str, Any]:
        f = fed()
        if not 1 <= task_id <= f.task_count():
            raise HTTPException(status_code=404, detail=f"task {task_id} does not exist")
        return task_status(f, task_id)

    @app.get("/api/tasks/{task_id}/events", include_in_schema=False)
    async def task_events(task_id: int, request: Request, poll: float = 1.0) -> StreamingResponse:
        """Server-sent events: the task's status whenever it changes (rounds, decisions, payouts)."""
        get_task(task_id)  # 404 before the stream opens

        async def stream() -> AsyncIterator[str]:
            last = ""
            while not await request.is_disconnected():
                status = await asyncio.to_thread(task_status, fed(), task_id)
                body = json.dumps(status)
                digest = hashlib.sha256(body.encode()).hexdigest()
                if digest != last:
                    last = digest
                    yield f"event: status\ndata: {body}\n\n"
                else:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(max(0.2, min(poll, 10.0)))

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/vendor/{name}", include_in_schema=False)
    def vendor(name: str) -> FileResponse:
        files = {"uplot.js": "uPlot.iife.min.js", "uplot.css": "uPlot.min.css"}
        if name not in files:
            raise HTTPException(status_code=404, detail=f"no vendored file {name}")
        path = tools_dir() / "node_modules" / "uplot" / "dist" / files[name]
        if not path.exists():
            raise HTTPException(status_code=404, detail="uPlot is not installed: run `make setup`")
        return FileResponse(path)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
