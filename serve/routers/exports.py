"""``POST /metrics/export`` and ``GET /metrics/export/{id}``: sessions' results as a CSV or
JSON file behind a download URL that expires (:mod:`serve.exports`).

The router's lifespan runs the sweeper that deletes expired export files
(:func:`serve.exports.run_sweeper`); FastAPI enters it after the app's own lifespan has started
the services.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from anyio import to_thread
from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse

from serve.deps import API, CurrentUser, ServicesDep, error_responses, not_found, too_many
from serve.exports import (
    ExportQuota,
    UnknownSession,
    create_export,
    discard_if_expired,
    get_export,
    run_sweeper,
)
from serve.schemas import ExportRequest, ExportResponse


@contextlib.asynccontextmanager
async def sweeper_lifespan(app: FastAPI) -> AsyncIterator[None]:
    svc = app.state.services
    task = asyncio.create_task(run_sweeper(svc.db, svc.settings.export_sweep_interval_s),
                               name="export-sweeper")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


router = APIRouter(prefix=f"{API}/metrics", tags=["metrics"], lifespan=sweeper_lifespan)


@router.post("/export", response_model=ExportResponse, status_code=201,
             responses=error_responses(401, 404, 413, 422, 429))
async def export_metrics(body: ExportRequest, svc: ServicesDep, user: CurrentUser):
    """Export sessions' results as CSV or JSON; the download URL expires. At most
    ``EQX_MAX_EXPORTS_PER_USER`` unexpired exports per user (else 429, Retry-After: until the
    oldest expires)."""
    ids = list(dict.fromkeys(body.session_ids))  # unique, in the requested order
    if len(ids) > svc.settings.max_export_sessions:
        raise HTTPException(422, f"at most {svc.settings.max_export_sessions} session ids")
    try:
        exp = await to_thread.run_sync(
            create_export, svc.db, svc.settings.data_dir / "exports", svc.settings.export_ttl_s,
            user, ids, body.format, svc.settings.max_exports_per_user)
    except UnknownSession as e:
        raise not_found("session", e.session_id) from None
    except ExportQuota as e:
        raise too_many(str(e), e.retry_after_s) from None
    return ExportResponse(export_id=exp.id, download_url=f"{API}/metrics/export/{exp.id}",
                          expires_at=exp.expires_at, format=body.format, sessions=len(ids))


@router.get("/export/{export_id}", response_class=FileResponse,
            responses={200: {"description": "the export file",
                             "content": {"text/csv": {}, "application/json": {},
                                         "application/x-ndjson": {}}},
                       **error_responses(401, 404, 410, 429)})
async def download_export(export_id: str, svc: ServicesDep, user: CurrentUser):
    """The export file (until it expires: then 410 Gone)."""
    exp = await to_thread.run_sync(get_export, svc.db, export_id, user)
    if exp is None:
        raise not_found("export", export_id)
    if discard_if_expired(exp) or not Path(exp.path).is_file():  # swept at its expiry
        raise HTTPException(410, f"export {export_id!r} expired at {exp.expires_at.isoformat()}")
    media = {"csv": "text/csv", "jsonl": "application/x-ndjson"}.get(exp.format,
                                                                     "application/json")
    return FileResponse(exp.path, media_type=media, filename=f"eqx-export-{export_id}."
                                                              f"{exp.format}")
