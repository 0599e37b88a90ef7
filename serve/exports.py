"""Metric exports (routes: :mod:`serve.routers.exports`): ``POST /metrics/export`` writes a
CSV or JSON file of sessions' results under ``<data_dir>/exports/`` and returns a download URL
that expires after ``export_ttl_s`` seconds (``GET`` after that: 410 Gone, and the file is
deleted).

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

from sqlalchemy import select

from serve.auth import Principal
from serve.db import Database, Export, SimSession, utcnow

CSV_COLUMNS = (
    "session_id", "status", "created_at", "finished_at", "supplier_valuation",
    "retailer_valuation", "max_rounds", "supplier_policy", "retailer_policy", "supplier_style",
    "retailer_style", "seed", "deal_reached", "final_price", "total_rounds", "supplier_reward",
    "retailer_reward", "nash_distance", "pareto_efficiency", "equilibrium_price",
)


class UnknownSession(LookupError):
    """A requested session that does not exist or that the caller may not see."""

    def __init__(self, session_id: str):
        super().__init__(session_id)
        self.session_id = session_id


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


def create_export(db: Database, out_dir: Path, ttl_s: int, user: Principal, ids: list[str],
                  fmt: str) -> Export:
    """Write the file of sessions ``ids`` (in that order) and store its row (blocking).
    :class:`UnknownSession` for the first id the caller may not export."""
    export_id = str(uuid.uuid4())
    path = (out_dir / f"{export_id}.{fmt}").resolve()
    expires = utcnow() + dt.timedelta(seconds=ttl_s)
    with db.session() as s:
        found = {r.id: r for r in s.scalars(select(SimSession).where(SimSession.id.in_(ids)))}
        for i in ids:
            r = found.get(i)
            if r is None or (r.user_id != user.user_id and not user.is_admin):
                raise UnknownSession(i)
        sessions = [found[i] for i in ids]
        data = render([session_row(r) for r in sessions], [r.result for r in sessions], fmt)
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        exp = Export(id=export_id, user_id=user.user_id, format=fmt, path=str(path),
                     session_ids=ids, created_at=utcnow(), expires_at=expires)
        s.add(exp)
    return exp


def get_export(db: Database, export_id: str, user: Principal) -> Export | None:
    """The export if it exists and the caller may download it (owner or admin)."""
    with db.session() as s:
        exp = s.get(Export, export_id)
    if exp is None or (exp.user_id != user.user_id and not user.is_admin):
        return None
    return exp


def discard_if_expired(exp: Export) -> bool:
    """Whether the download URL has expired; if so the file is deleted too."""
    if utcnow() < exp.expires_at:
        return False
    Path(exp.path).unlink(missing_ok=True)
    return True
