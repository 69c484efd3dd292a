"""Sign-in with Ethereum (EIP-4361): a challenge, its signed answer, who is signed in, sign-out.

Messages are written for the origin the request reached and checked against the served
origins alone, with a nonce bound to the wallet and domain it was issued for.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from zkfl.dashboard import siwe
from zkfl.dashboard.context import SESSION_COOKIE, DashboardContext, SessionToken
from zkfl.dashboard.models import ERRORS, Challenge, ChallengeRequest, Identity, SignIn
from zkfl.dashboard.sessions import NONCE_TTL_S, NonceError

SIGN_IN_STATEMENT = "Sign in to the zkfl dashboard to read and write your tasks' private notes."


def router(ctx: DashboardContext) -> APIRouter:
    api = APIRouter()

    @api.post("/api/auth/challenge", responses=ERRORS)
    def challenge(body: ChallengeRequest, request: Request) -> Challenge:
        """A fresh sign-in message for ``address``, with a single-use nonce, valid for 10 minutes."""
        try:
            address = siwe.to_checksum(body.address)
        except siwe.SiweError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        origin = ctx.site(request)
        chain_id = ctx.fed().w3.eth.chain_id
        now = datetime.now(UTC).replace(microsecond=0)
        message = siwe.SiweMessage(domain=origin.domain, address=address, uri=origin.uri, chain_id=chain_id,
                                   nonce=ctx.sessions.issue_nonce(address, origin.domain), issued_at=now,
                                   statement=SIGN_IN_STATEMENT, expiration_time=now + timedelta(seconds=NONCE_TTL_S))
        return Challenge(message=message.text())

    # Answers with a Response of its own (to set the cookie); response_model documents its body.
    @api.post("/api/auth/verify", responses=ERRORS, response_model=Identity)
    def sign_in(body: SignIn, request: Request) -> JSONResponse:
        chain_id = ctx.fed().w3.eth.chain_id
        try:
            message = siwe.verify(body.message, body.signature, origins=ctx.served_origins(request),
                                  chain_id=chain_id)
            ctx.sessions.consume_nonce(message.nonce, message.address, message.domain)
        except (siwe.SiweError, NonceError) as exc:
            raise HTTPException(status_code=400, detail=f"sign-in refused: {exc}") from None
        response = JSONResponse(Identity(address=message.address).model_dump())
        response.set_cookie(SESSION_COOKIE, ctx.sessions.open(message.address), httponly=True, samesite="strict",
                            path="/", secure=ctx.site(request).scheme == "https")
        return response

    @api.get("/api/auth/me")
    def me(zkfl_session: SessionToken = None) -> Identity:
        """Who is signed in (``null`` when nobody is: not an error, so pages can ask freely)."""
        return Identity(address=ctx.sessions.address(zkfl_session))

    @api.post("/api/auth/logout", status_code=204)
    def sign_out(zkfl_session: SessionToken = None) -> Response:
        ctx.sessions.close(zkfl_session)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return api
