"""The researchers' dashboard: a JSON API over the chain's events, and one live page.

Everything shown is read from the chain (tasks, rounds, accepted and rejected
updates with reasons, rewards, slashes) and from the aggregator's metrics file on
this machine (accuracy, loss, proof times, gas). The page follows each task over
server-sent events and draws its curves with uPlot, served from the pinned npm tools
(no CDN: the page works offline).

Organisations sign in with their wallet (EIP-4361, see :mod:`zkfl.dashboard.siwe`) to
read and write their tasks' private notes; everything else is public, as on chain.

The dashboard answers only at its configured public origin(s): a request whose
``Host`` names anything else (another site's name, a DNS-rebinding domain) is refused
with 421, and sign-in messages are written for, and checked against, those origins
alone. Notes belong to whoever holds the task's organisation role on chain when the
request arrives, so granting and revoking the role moves them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import Cookie, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zkfl.contracts.chain import chain_key, connect
from zkfl.contracts.federation import Federation, resolve_federation
from zkfl.dashboard import siwe
from zkfl.dashboard.notes import MAX_NOTES_CHARS, NotesStore
from zkfl.dashboard.sessions import NONCE_TTL_S, NonceError, SessionStore
from zkfl.errors import ConfigError, ZkflError
from zkfl.jsonsafe import MAX_JSON_DEPTH, json_depth
from zkfl.middleware.transport.base import task_key
from zkfl.paths import tools_dir, zkfl_home
from zkfl.status import TaskStatus, task_status

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
    421: {"description": "the request's Host is not one of this dashboard's configured origins"},
    503: {"description": "the chain does not answer"},
}


def bound_origin(scope: Scope) -> list[siwe.Origin]:
    """The origin of the socket the server listens on (ASGI ``server``, never a request header)."""
    server = scope.get("server")
    if not server or server[1] is None:  # a Unix socket has no origin to name
        return []
    host, port = str(server[0]), int(server[1])
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    return [siwe.Origin.parse(f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}")]


class HostCheck:
    """Refuse (421) every request whose ``Host`` is not one of the dashboard's origins."""

    def __init__(self, app: ASGIApp, origins: list[siwe.Origin]) -> None:
        self.app, self.origins = app, origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            origins = self.origins or bound_origin(scope)
            host = Headers(scope=scope).get("host")
            if siwe.origin_for_host(origins, host) is None:
                served = ", ".join(str(o) for o in origins) or "no origin"
                detail = (f"misdirected request: Host {host!r} is not this dashboard's origin ({served}); "
                          "serve it under another name with `zkfl dashboard --origin URL`")
                await JSONResponse({"detail": detail}, status_code=421)(scope, receive, send)
                return
        await self.app(scope, receive, send)


MAX_BODY_BYTES = 64 * 1024  # sign-in messages and notes are a few KB


class BodyGuard:
    """Read a request body before any JSON parser does: over MAX_BODY_BYTES is 413, JSON
    nested past MAX_JSON_DEPTH is 400 (deep nesting would crash the parser: zkfl.jsonsafe)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                await JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"}, 413)(scope, receive, send)
                return
        if json_depth(body) > MAX_JSON_DEPTH:
            await JSONResponse({"detail": f"JSON nested over {MAX_JSON_DEPTH} levels"}, 400)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: disconnects
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def create_app(rpc_url: str, federation: str | None = None, notes_path: Path | None = None, *,
               origin: str | Sequence[str] | None = None) -> FastAPI:
    """The dashboard for ``federation`` on the chain at ``rpc_url``.

    ``origin``: the public origin(s) browsers reach it at (``http://127.0.0.1:8000``,
    ``https://fl.example.org``); requests naming any other ``Host`` are refused, and
    sign-in messages name these alone. Without it, the origin is the address the
    server's socket is bound to (as the ASGI server reports it, not as a client says).
    """
    try:
        origins = [siwe.Origin.parse(o) for o in ([origin] if isinstance(origin, str) else origin or [])]
    except siwe.SiweError as exc:
        raise ConfigError(f"dashboard origin: {exc}") from None
    app = FastAPI(title="zkfl dashboard", version="0.2.0")
    app.add_middleware(BodyGuard)
    app.add_middleware(HostCheck, origins=origins)
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

    def served_origins(request: Request) -> list[siwe.Origin]:
        return origins or bound_origin(request.scope)

    def site(request: Request) -> siwe.Origin:
        """The configured origin this request reached (HostCheck has refused any other)."""
        reached = siwe.origin_for_host(served_origins(request), request.headers.get("host"))
        if reached is None:  # unreachable behind HostCheck; refuse rather than guess
            raise HTTPException(status_code=421, detail="the request's Host is not this dashboard's origin")
        return reached

    # ---------------------------------------------------------- sign-in (EIP-4361)
    @app.post("/api/auth/challenge", responses=_ERRORS)
    def challenge(body: ChallengeRequest, request: Request) -> Challenge:
        """A fresh sign-in message for ``address``, with a single-use nonce, valid for 10 minutes."""
        try:
            address = siwe.to_checksum(body.address)
        except siwe.SiweError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        origin = site(request)
        chain_id = fed().w3.eth.chain_id
        now = datetime.now(UTC).replace(microsecond=0)
        message = siwe.SiweMessage(domain=origin.domain, address=address, uri=origin.uri, chain_id=chain_id,
                                   nonce=sessions.issue_nonce(address, origin.domain), issued_at=now,
                                   statement=SIGN_IN_STATEMENT, expiration_time=now + timedelta(seconds=NONCE_TTL_S))
        return Challenge(message=message.text())

    @app.post("/api/auth/verify", responses=_ERRORS)
    def sign_in(body: SignIn, request: Request) -> JSONResponse:
        chain_id = fed().w3.eth.chain_id
        try:
            message = siwe.verify(body.message, body.signature, origins=served_origins(request), chain_id=chain_id)
            sessions.consume_nonce(message.nonce, message.address, message.domain)
        except (siwe.SiweError, NonceError) as exc:
            raise HTTPException(status_code=400, detail=f"sign-in refused: {exc}") from None
        response = JSONResponse(Identity(address=message.address).model_dump())
        response.set_cookie(SESSION_COOKIE, sessions.open(message.address), httponly=True, samesite="strict",
                            path="/", secure=site(request).scheme == "https")
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

    def organisation_of(task_id: int, token: str | None) -> tuple[Federation, str]:
        """The federation and the signed-in wallet, if it holds the task's organisation role now.

        Read from the chain on every request: the role, not the task's creator, owns the
        notes, so a grant or a revocation takes effect at once."""
        f = known_task(task_id)
        address = sessions.address(token)
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

    @app.get("/api/tasks/{task_id}/notes", responses=_ERRORS)
    def read_notes(task_id: int, zkfl_session: str | None = Cookie(default=None)) -> Notes:
        """The organisation's private notes on its task (off chain; sign-in required)."""
        f, _ = organisation_of(task_id, zkfl_session)
        return Notes(notes=notes.get(task_key(chain_key(f.w3), f.address, task_id)))

    @app.put("/api/tasks/{task_id}/notes", responses=_ERRORS)
    def write_notes(task_id: int, body: Notes, zkfl_session: str | None = Cookie(default=None)) -> Notes:
        f, author = organisation_of(task_id, zkfl_session)
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

    @app.get("/api/tasks/{task_id}", responses=_ERRORS, response_model=TaskStatus)
    def get_task(task_id: int) -> TaskStatus:
        return task_status(known_task(task_id), task_id)

    @app.get("/api/tasks/{task_id}/events", include_in_schema=False)
    async def task_events(task_id: int, request: Request, poll: float = 1.0) -> StreamingResponse:
        """Server-sent events: the task's status whenever it changes (rounds, decisions, payouts)."""
        get_task(task_id)  # 404 before the stream opens

        async def stream() -> AsyncIterator[str]:
            last = ""
            while not await request.is_disconnected():
                status = await asyncio.to_thread(task_status, fed(), task_id)
                body = status.model_dump_json()
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
        # A wheel ships uPlot in static/vendor (copied from the pinned npm package by `make setup`);
        # a checkout without that copy serves it from the npm tools.
        for path in (STATIC / "vendor" / files[name], tools_dir() / "node_modules" / "uplot" / "dist" / files[name]):
            if path.exists():
                return FileResponse(path)
        raise HTTPException(status_code=404, detail="uPlot is not installed: run `make setup`")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
