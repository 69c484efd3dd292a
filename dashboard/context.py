"""What the dashboard's routers share: the chain, the sign-in state, the notes, the origins.

One :class:`DashboardContext` is made per app by :func:`zkfl.dashboard.app.create_app` and
handed to each router factory, so two apps (two tests, two origins) never share sessions
or a federation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Cookie, HTTPException, Request
from requests.exceptions import RequestException
from web3.exceptions import BadResponseFormat, ProviderConnectionError, Web3RPCError

from zkfl.contracts.chain import connect
from zkfl.contracts.federation import Federation, resolve_federation
from zkfl.dashboard import siwe
from zkfl.dashboard.guards import bound_origin
from zkfl.dashboard.notes import NotesStore
from zkfl.dashboard.portal import Portal
from zkfl.dashboard.sessions import SessionStore
from zkfl.errors import ZkflError
from zkfl.store import ContentStore

SESSION_COOKIE = "zkfl_session"

#: What a chain that stopped answering properly raises (refused connections, timeouts, HTTP 429 or
#: 502 from a provider, a malformed or error answer): the API says 503, never 500.
CHAIN_UNAVAILABLE: tuple[type[Exception], ...] = (RequestException, Web3RPCError, BadResponseFormat,
                                                  ProviderConnectionError)


def shareable_rpc(url: str) -> str | None:
    """``url`` if it can be shown to anyone: no user, password, path, query or fragment (where
    RPC providers put API keys); else None, and the page asks participants for their own."""
    parts = urlsplit(url)
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        return None
    return url

# The session token a browser sends back; None when it has none. The parameter that takes it
# must be named like the cookie (FastAPI reads the cookie of the parameter's name).
SessionToken = Annotated[str | None, Cookie()]


@dataclass
class DashboardContext:
    rpc_url: str
    federation: str | None  # the Federation's address; None: zkfl's canonical one on this chain
    origins: list[siwe.Origin]  # configured; empty: the socket's bound address (see bound_origin)
    sessions: SessionStore
    notes: NotesStore
    store: ContentStore  # this machine's: the packages the portal describes and serves
    public_rpc: str | None  # what the page may show participants; never a URL with credentials
    _fed: Federation | None = field(default=None, init=False, repr=False)
    _portal: Portal | None = field(default=None, init=False, repr=False)

    def fed(self) -> Federation:
        """The Federation, resolved on first use and kept: the app starts even while the chain
        is down, and each request answers 503 until the chain does."""
        if self._fed is None:
            try:
                self._fed = resolve_federation(connect(self.rpc_url), self.federation)
            except ZkflError as exc:  # the message may name the URL, and a URL may carry an API key
                raise HTTPException(status_code=503, detail=str(exc).replace(self.rpc_url, "<rpc>")) from None
        return self._fed

    def portal(self) -> Portal:
        if self._portal is None:
            self._portal = Portal(self.fed(), self.store)
        return self._portal

    def known_task(self, task_id: int) -> Federation:
        """The Federation, once it is known to hold ``task_id`` (404 otherwise)."""
        f = self.fed()
        if not 1 <= task_id <= f.task_count():
            raise HTTPException(status_code=404, detail=f"task {task_id} does not exist")
        return f

    def served_origins(self, request: Request) -> list[siwe.Origin]:
        return self.origins or bound_origin(request.scope)

    def site(self, request: Request) -> siwe.Origin:
        """The configured origin this request reached (HostCheck has refused any other)."""
        reached = siwe.origin_for_host(self.served_origins(request), request.headers.get("host"))
        if reached is None:  # unreachable behind HostCheck; refuse rather than guess
            raise HTTPException(status_code=421, detail="the request's Host is not this dashboard's origin")
        return reached
