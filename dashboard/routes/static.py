"""The page itself and what it loads: index.html, the vendored uPlot, and an empty favicon.

uPlot is served from this machine (no CDN), so the page works offline.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

from zkfl.paths import tools_dir

STATIC = Path(__file__).resolve().parent.parent / "static"
VENDORED = {"uplot.js": "uPlot.iife.min.js", "uplot.css": "uPlot.min.css"}

router = APIRouter(include_in_schema=False)


@router.get("/vendor/{name}")
def vendor(name: str) -> FileResponse:
    if name not in VENDORED:
        raise HTTPException(status_code=404, detail=f"no vendored file {name}")
    # A wheel ships uPlot in static/vendor (copied from the pinned npm package by `make setup`);
    # a checkout without that copy serves it from the npm tools.
    for path in (STATIC / "vendor" / VENDORED[name], tools_dir() / "node_modules" / "uplot" / "dist" / VENDORED[name]):
        if path.exists():
            return FileResponse(path)
    raise HTTPException(status_code=404, detail="uPlot is not installed: run `make setup`")


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")
