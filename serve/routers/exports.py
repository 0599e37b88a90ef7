"""``POST /metrics/export`` and ``GET /metrics/export/{id}``: sessions' results as a CSV or
JSON file behind a download URL that expires (:mod:`serve.exports`)."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from serve.deps import API, CurrentUser, ServicesDep, not_found
from serve.exports import UnknownSession, create_export, discard_if_expired, get_export
from serve.schemas import ExportRequest, ExportResponse

router = APIRouter(prefix=f"{API}/metrics", tags=["metrics"])


@router.post("/export", response_model=ExportResponse, status_code=201)
async def export_metrics(body: ExportRequest, svc: ServicesDep, user: CurrentUser):
    """Export sessions' results as CSV or JSON; the download URL expires."""
    ids = list(dict.fromkeys(body.session_ids))  # unique, in the requested order
    if len(ids) > svc.settings.max_export_sessions:
        raise HTTPException(422, f"at most {svc.settings.max_export_sessions} session ids")
    try:
        exp = await to_thread.run_sync(
            create_export, svc.db, svc.settings.data_dir / "exports", svc.settings.export_ttl_s,
            user, ids, body.format)
    except UnknownSession as e:
        raise not_found("session", e.session_id) from None
    return ExportResponse(export_id=exp.id, download_url=f"{API}/metrics/export/{exp.id}",
                          expires_at=exp.expires_at, format=body.format, sessions=len(ids))


@router.get("/export/{export_id}", response_class=FileResponse,
            responses={410: {"description": "the download URL has expired"}})
async def download_export(export_id: str, svc: ServicesDep, user: CurrentUser):
    """The export file (until it expires: then 410 Gone)."""
    exp = await to_thread.run_sync(get_export, svc.db, export_id, user)
    if exp is None:
        raise not_found("export", export_id)
    if discard_if_expired(exp):
        raise HTTPException(410, f"export {export_id!r} expired at {exp.expires_at.isoformat()}")
    media = "text/csv" if exp.format == "csv" else "application/json"
    return FileResponse(exp.path, media_type=media, filename=f"eqx-export-{export_id}."
                                                              f"{exp.format}")
