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

This module assembles the app: the guards in :mod:`zkfl.dashboard.guards`, the routers
in :mod:`zkfl.dashboard.routes`, and the state they share in
:mod:`zkfl.dashboard.context`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from zkfl.dashboard import siwe
from zkfl.dashboard.context import CHAIN_UNAVAILABLE, DashboardContext, shareable_rpc
from zkfl.dashboard.guards import BodyGuard, HostCheck
from zkfl.dashboard.notes import NotesStore
from zkfl.dashboard.routes import auth, gateway, notes, portal, static, tasks
from zkfl.dashboard.sessions import SessionStore
from zkfl.errors import ConfigError
from zkfl.paths import zkfl_home
from zkfl.store import ContentStore, open_store


def create_app(rpc_url: str, federation: str | None = None, notes_path: Path | None = None, *,
               origin: str | Sequence[str] | None = None, store: ContentStore | None = None,
               public_rpc: str | None = None) -> FastAPI:
    """The dashboard for ``federation`` on the chain at ``rpc_url``.

    ``origin``: the public origin(s) browsers reach it at (``http://127.0.0.1:8000``,
    ``https://fl.example.org``); requests naming any other ``Host`` are refused, and
    sign-in messages name these alone. Without it, the origin is the address the
    server's socket is bound to (as the ASGI server reports it, not as a client says).
    ``store``: the content store the portal reads packages from and serves at ``/ipfs/``
    (default: this process's configured store). ``public_rpc``: the RPC URL the page shows
    participants (default: ``rpc_url`` when it carries no credentials, path or query).
    """
    try:
        origins = [siwe.Origin.parse(o) for o in ([origin] if isinstance(origin, str) else origin or [])]
    except siwe.SiweError as exc:
        raise ConfigError(f"dashboard origin: {exc}") from None
    ctx = DashboardContext(rpc_url, federation, origins, SessionStore(),
                           NotesStore(notes_path or zkfl_home() / "dashboard" / "notes.sqlite"),
                           store if store is not None else open_store(),
                           public_rpc if public_rpc is not None else shareable_rpc(rpc_url))
    app = FastAPI(title="zkfl dashboard", version="0.2.0")
    app.add_middleware(BodyGuard)
    app.add_middleware(HostCheck, origins=origins)  # added last: runs first, before the body is read
    for unavailable in CHAIN_UNAVAILABLE:
        app.add_exception_handler(unavailable, _chain_unreachable)
    for router in (auth.router(ctx), notes.router(ctx), tasks.router(ctx), portal.router(ctx),
                   gateway.router(ctx), static.router):
        app.include_router(router)
    return app


async def _chain_unreachable(request: Request, exc: Exception) -> JSONResponse:
    """The chain stopped answering (properly) after the app reached it: 503, as before it first did."""
    return JSONResponse({"detail": "the chain does not answer properly"}, status_code=503)
