"""The researchers' dashboard: a JSON API over the chain's events, and one live page.

Everything shown is read from the chain (tasks, rounds, accepted and rejected
updates with reasons, rewards, slashes) and from the aggregator's metrics file on
this machine (accuracy, loss, proof times, gas). The page follows each task over
server-sent events and draws its curves with uPlot, served from the pinned npm tools
(no CDN: the page works offline).

Organisations sign in with their wallet (EIP-4361, see :mod:`zkfl.dashboard.siwe`) to
read and write their tasks' private notes; everything else is public, as on chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Cookie, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from zkfl.contracts.chain import chain_key, connect
from zkfl.contracts.federation import Federation, resolve_federation
from zkfl.dashboard import siwe
from zkfl.dashboard.notes import MAX_NOTES_CHARS, NotesStore
from zkfl.dashboard.sessions import NONCE_TTL_S, SessionStore
from zkfl.errors import ZkflError
from zkfl.middleware.transport.base import task_key
from zkfl.paths import tools_dir, zkfl_home
from zkfl.status import task_status

STATIC = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "zkfl_session"
SIGN_IN_STATEMENT = "Sign in to the zkfl dashboard to read and write your tasks' private notes."


class ChallengeRequest(BaseModel):
    address: str = Field(description="the wallet that will sign, 0x-prefixed", max_length=64)


class Challenge(BaseModel):
    message: str = Field(description="the EIP-4361 message to sign with personal_sign")


class SignIn(BaseModel):
    message: str = Field(max_length=4096)
    signature: str = Field(description="0x-prefixed 65-byte signature", max_length=200)


class Identity(BaseModel):
    address: str | None = Field(description="the signed-in wallet; null when not signed in")


class Notes(BaseModel):
    notes: str = Field(max_length=MAX_NOTES_CHARS)


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "refused input, with the reason"},
    401: {"description": "not signed in"},
    403: {"description": "signed in, but not this task's organisation"},
    404: {"description": "no such task"},
    503: {"description": "the chain does not answer"},
}


def create_app(rpc_url: str, federation: str | None = None, notes_path: Path | None = None) -> FastAPI:
    app = FastAPI(title="zkfl dashboard", version="0.2.0")
    state: dict[str, Federation] = {}
    sessions = SessionStore()
    notes = NotesStore(notes_path or zkfl_home() / "dashboard" / "notes.sqlite")

    def fed() -> Federation:
        if "fed" not in state:
            try:
                state["fed"] = resolve_federation(connect(rpc_url), federation)
            except ZkflError as exc:
                raise HTTPException(status_code=503, detail=str(exc)) from None
        return state["fed"]

    def known_task(task_id: int) -> Federation:
        f = fed()
        if not 1 <= task_id <= f.task_count():
            raise HTTPException(status_code=404, detail=f"task {task_id} does not exist")
        return f

    def site(request: Request) -> tuple[str, str]:
        """The domain and URI a sign-in message must name: this server as the browser reached it."""
        host = request.headers.get("host") or request.url.netloc
        return host, f"{request.url.scheme}://{host}/"

    # ---------------------------------------------------------- sign-in (EIP-4361)
    @app.post("/api/auth/challenge", responses=_ERRORS)
    def challenge(body: ChallengeRequest, request: Request) -> Challenge:
        """A fresh sign-in message for ``address``, with a single-use nonce, valid for 10 minutes."""
        try:
            address = siwe.to_checksum(body.address)
        except siwe.SiweError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        domain, uri = site(request)
        now = datetime.now(UTC).replace(microsecond=0)
        message = siwe.SiweMessage(domain=domain, address=address, uri=uri, chain_id=fed().w3.eth.chain_id,
                                   nonce=sessions.issue_nonce(), issued_at=now, statement=SIGN_IN_STATEMENT,
                                   expiration_time=now + timedelta(seconds=NONCE_TTL_S))
        return Challenge(message=message.text())

    @app.post("/api/auth/verify", responses=_ERRORS)
    def sign_in(body: SignIn, request: Request) -> JSONResponse:
        domain, uri = site(request)
        try:
            message = siwe.verify(body.message, body.signature, domain=domain, uri=uri,
                                  chain_id=fed().w3.eth.chain_id)
        except siwe.SiweError as exc:
            raise HTTPException(status_code=400, detail=f"sign-in refused: {exc}") from None
        if not sessions.consume_nonce(message.nonce):
            raise HTTPException(status_code=400, detail="sign-in refused: unknown, expired or already used nonce")
        response = JSONResponse(Identity(address=message.address).model_dump())
        response.set_cookie(SESSION_COOKIE, sessions.open(message.address), httponly=True, samesite="strict",
                            path="/")
        return response

    @app.get("/api/auth/me")
    def me(zkfl_session: str | None = Cookie(default=None)) -> Identity:
        """Who is signed in (``null`` when nobody is: not an error, so pages can ask freely)."""
        return Identity(address=sessions.address(zkfl_session))

    @app.post("/api/auth/logout", status_code=204)
    def sign_out(zkfl_session: str | None = Cookie(default=None)) -> Response:
        sessions.close(zkfl_session)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def organisation_of(task_id: int, token: str | None) -> Federation:
        f = known_task(task_id)
        address = sessions.address(token)
        if address is None:
            raise HTTPException(status_code=401, detail="sign in with the organisation's wallet to see notes")
        if f.task(task_id).organisation.lower() != address.lower():
            raise HTTPException(status_code=403, detail=f"{address} is not task {task_id}'s organisation")
        return f

    @app.get("/api/tasks/{task_id}/notes", responses=_ERRORS)
    def read_notes(task_id: int, zkfl_session: str | None = Cookie(default=None)) -> Notes:
        """The organisation's private notes on its task (off chain; sign-in required)."""
        f = organisation_of(task_id, zkfl_session)
        return Notes(notes=notes.get(task_key(chain_key(f.w3), f.address, task_id)))

    @app.put("/api/tasks/{task_id}/notes", responses=_ERRORS)
    def write_notes(task_id: int, body: Notes, zkfl_session: str | None = Cookie(default=None)) -> Notes:
        f = organisation_of(task_id, zkfl_session)
        author = sessions.address(zkfl_session) or ""
        notes.put(task_key(chain_key(f.w3), f.address, task_id), body.notes, author)
        return body

    # ---------------------------------------------------------- public chain data
    @app.get("/api/tasks", responses=_ERRORS)
    def list_tasks() -> list[dict[str, Any]]:
        f = fed()
        tasks = []
        for task_id in range(1, f.task_count() + 1):
            t = f.task(task_id)
            tasks.append({"task_id": task_id, "organisation": t.organisation, "rounds": t.rounds,
                          "current_round": t.current_round, "reward_pool": t.reward_pool, "settled": t.settled,
                          "active_participants": t.active_participants})
        return tasks

    @app.get("/api/tasks/{task_id}", responses=_ERRORS)
    def get_task(task_id: int) -> dict[str, Any]:
        return task_status(known_task(task_id), task_id)

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
