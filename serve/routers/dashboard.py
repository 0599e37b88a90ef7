"""The web dashboard (docs/dashboard.md): ``/`` is its page, ``/static`` its files. No auth
here: the page holds no data; it logs in through the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


def mount(app: FastAPI) -> None:
    """Serve the dashboard, when its files are present."""
    if not (STATIC_DIR / "index.html").is_file():
        return

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
