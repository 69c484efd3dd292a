"""The dashboard's ASGI guards: they answer before any route, or any JSON parser, runs.

:class:`HostCheck` refuses (421) a ``Host`` that is not one of the dashboard's origins,
so a DNS-rebinding domain or another site's name never reaches the API; :class:`BodyGuard`
bounds request bodies in size and JSON nesting before FastAPI parses them.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zkfl.dashboard import siwe
from zkfl.jsonsafe import MAX_JSON_DEPTH, json_depth

MAX_BODY_BYTES = 64 * 1024  # sign-in messages and notes are a few KB


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
