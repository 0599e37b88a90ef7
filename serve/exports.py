"""Metric exports: ``POST /metrics/export`` writes a CSV or JSON file of sessions' results under
``<data_dir>/exports/`` and returns a download URL that expires after ``export_ttl_s`` seconds
(``GET`` after that: 410 Gone, and the file is deleted).

CSV: one row per session (:data:`CSV_COLUMNS`). JSON: ``{"exported_at", "sessions": [...]}``
with the same fields per session plus the full result message. Only sessions the caller may see
(own, or any for an admin) are exported; an unknown or foreign id is a 404 naming it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from sqlalchemy import select

from serve.db import Export, SimSession, utcnow
from serve.deps import API, User, not_found, services
from serve.schemas import ExportRequest, ExportResponse

router = APIRouter(prefix=f"{API}/metrics", tags=["metrics"])

CSV_COLUMNS = (
    "session_id", "status", "created_at", "finished_at", "supplier_valuation",
    "retailer_valuation", "max_rounds", "supplier_policy", "retailer_policy", "supplier_style",
    "retailer_style", "seed", "deal_reached", "final_price", "total_rounds", "supplier_reward",
    "retailer_reward", "nash_distance", "pareto_efficiency", "equilibrium_price",
)


def session_row(s: SimSession) -> dict[str, Any]:
    row: dict[str, Any] = {c: getattr(s, c, None) for c in CSV_COLUMNS if c != "session_id"}
    row["session_id"] = s.id
    for k in ("created_at", "finished_at"):
        row[k] = row[k].isoformat() if row[k] is not None else None
    return {c: row[c] for c in CSV_COLUMNS}


def render(rows: list[dict[str, Any]], results: list[Any], fmt: str) -> bytes:
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        return buf.getvalue().encode()
    doc = {"exported_at": utcnow().isoformat(),
           "sessions": [{**r, "result": res} for r, res in zip(rows, results, strict=True)]}
    return json.dumps(doc, indent=1).encode()


@router.post("/export", response_model=ExportResponse, status_code=201)
async def export_metrics(body: ExportRequest, request: Request, user: User):
    """Export sessions' results as CSV or JSON; the download URL expires."""
    svc = services(request)
    ids = list(dict.fromkeys(body.session_ids))  # unique, in the requested order
    if len(ids) > svc.settings.max_export_sessions:
        raise HTTPException(422, f"at most {svc.settings.max_export_sessions} session ids")
    export_id = str(uuid.uuid4())
    out_dir = svc.settings.data_dir / "exports"
    path = (out_dir / f"{export_id}.{body.format}").resolve()
    expires = utcnow() + dt.timedelta(seconds=svc.settings.export_ttl_s)

    def work() -> str | None:
        with svc.db.session() as s:
            found = {r.id: r for r in s.scalars(select(SimSession).where(
                SimSession.id.in_(ids)))}
            for i in ids:
                r = found.get(i)
                if r is None or (r.user_id != user.user_id and not user.is_admin):
                    return i
            sessions = [found[i] for i in ids]
            data = render([session_row(r) for r in sessions], [r.result for r in sessions],
                          body.format)
            out_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            s.add(Export(id=export_id, user_id=user.user_id, format=body.format,
                         path=str(path), session_ids=ids, created_at=utcnow(),
                         expires_at=expires))
        return None

    missing = await to_thread.run_sync(work)
    if missing is not None:
        raise not_found("session", missing)
    return ExportResponse(export_id=export_id, download_url=f"{API}/metrics/export/{export_id}",
                          expires_at=expires, format=body.format, sessions=len(ids))


@router.get("/export/{export_id}", response_class=FileResponse,
            responses={410: {"description": "the download URL has expired"}})
async def download_export(export_id: str, request: Request, user: User):
    """The export file (until it expires: then 410 Gone)."""
    svc = services(request)

    def get() -> Export | None:
        with svc.db.session() as s:
            return s.get(Export, export_id)

    exp = await to_thread.run_sync(get)
    if exp is None or (exp.user_id != user.user_id and not user.is_admin):
        raise not_found("export", export_id)
    if utcnow() >= exp.expires_at:
        Path(exp.path).unlink(missing_ok=True)
        raise HTTPException(410, f"export {export_id!r} expired at {exp.expires_at.isoformat()}")
    media = "text/csv" if exp.format == "csv" else "application/json"
    return FileResponse(exp.path, media_type=media, filename=f"eqx-export-{export_id}."
                                                              f"{exp.format}")
