"""The researchers' dashboard: a JSON API over the chain's events, and one page.

Everything shown is read from the chain (tasks, rounds, accepted and rejected
updates with reasons, rewards, slashes) and from the aggregator's metrics file on
this machine (accuracy, loss, proof times, gas).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

from zkfl.contracts.chain import connect
from zkfl.contracts.federation import Federation, resolve_federation
from zkfl.errors import ZkflError
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

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
