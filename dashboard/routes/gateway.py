"""``/ipfs/{cid}``: the client packages (and every artifact this machine holds), by CID."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import FileResponse, Response

from zkfl.dashboard.context import DashboardContext
from zkfl.dashboard.gateway import RAW_BLOCK, Gateway, NotHere, canonical_cid
from zkfl.errors import ZkflError

IMMUTABLE = "public, max-age=29030400, immutable"


def router(ctx: DashboardContext) -> APIRouter:
    api = APIRouter()
    gateway = Gateway(ctx.store)

    @api.get("/ipfs/{cid}", response_class=Response, responses={
        200: {"content": {"application/octet-stream": {}, RAW_BLOCK: {}},
              "description": "the file's bytes (checked against the CID), or one block with ?format=raw"},
        400: {"description": "not a CID zkfl reads"}, 404: {"description": "not held by this portal"}})
    def ipfs(cid: str, format: str | None = None, accept: Annotated[str | None, Header()] = None) -> Response:
        try:
            name = canonical_cid(cid)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        raw = format == "raw" or (accept is not None and RAW_BLOCK in accept)
        if format is not None and format != "raw":
            raise HTTPException(status_code=400, detail=f"format {format[:20]!r}: only 'raw' (one block) is served")
        # One URL, two bodies (the file, or one block): caches must key on Accept, and the ETags differ.
        headers = {"Cache-Control": IMMUTABLE, "X-Ipfs-Path": f"/ipfs/{name}", "X-Content-Type-Options": "nosniff",
                   "Vary": "Accept", "Etag": f'"{name}.raw"' if raw else f'"{name}"'}
        try:
            if raw:
                return Response(gateway.block(name), media_type=RAW_BLOCK, headers=headers)
            path = gateway.file(name)
        except (NotHere, KeyError):
            raise HTTPException(status_code=404, detail=f"{name} is not held by this portal") from None
        except ZkflError as exc:  # the store's copy no longer matches its CID
            raise HTTPException(status_code=404, detail=str(exc)) from None
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return FileResponse(path, media_type="application/octet-stream", headers=headers)

    return api
