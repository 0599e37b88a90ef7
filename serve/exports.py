"""Metric exports (routes: :mod:`serve.routers.exports`): ``POST /metrics/export`` writes a
CSV or JSON file of sessions' results under ``<data_dir>/exports/`` and returns a download URL
that expires after ``export_ttl_s`` seconds (``GET`` after that: 410 Gone). A user holds at
most ``max_exports_per_user`` unexpired exports (more: :class:`ExportQuota`, a 429 whose
Retry-After is the time until the oldest one expires), and a background sweeper
(:func:`run_sweeper`, every ``export_sweep_interval_s`` seconds) deletes the files of expired
exports, fetched or not; their rows stay, so a late GET is still a 410, not a 404.

CSV: one row per session (:data:`CSV_COLUMNS`). JSON: ``{"exported_at", "sessions": [...]}``
with the same fields per session plus the full result message. Only sessions the caller may see
(own, or any for an admin) are exported; an unknown or foreign id is a 404 naming it.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import logging
import uuid
from pathlib import Path
from typing import Any

from anyio import to_thread
from sqlalchemy import select

from serve.auth import Principal
from serve.db import Database, Export, Message, SimSession, utcnow

log = logging.getLogger("eqx.serve.exports")

CSV_COLUMNS = (
    "session_id", "status", "created_at", "finished_at", "supplier_valuation",
    "retailer_valuation", "max_rounds", "supplier_policy", "retailer_policy", "supplier_style",
    "retailer_style", "seed", "deal_reached", "final_price", "total_rounds", "supplier_reward",
    "retailer_reward", "nash_distance", "pareto_efficiency", "equilibrium_price", "game",
    "scenario",
)


class UnknownSession(LookupError):
    """A requested session that does not exist or that the caller may not see."""

    def __init__(self, session_id: str):
        super().__init__(session_id)
        self.session_id = session_id


def session_row(s: SimSession) -> dict[str, Any]:
    row: dict[str, Any] = {c: getattr(s, c, None) for c in CSV_COLUMNS
                           if c not in ("session_id", "game")}
    row["session_id"] = s.id
    row["game"] = s.game_name
    for k in ("created_at", "finished_at"):
        row[k] = row[k].isoformat() if row[k] is not None else None
    return {c: row[c] for c in CSV_COLUMNS}


#: The fields of a move in the JSONL dataset (one line per move; ``outcome`` is the session's).
MOVE_FIELDS = ("seq", "agent", "seat", "round", "action", "offer", "price", "message", "human",
               "via", "raw_text", "parsed", "deadline_expired", "phraser", "timestamp")


def dataset_lines(row: dict[str, Any], result: Any, moves: list[dict[str, Any]]) -> list[str]:
    """A session as JSONL: one line per move with the person's raw text and parsed move where a
    person played, and the session's outcome on every line (so each line stands alone)."""
    res = result or {}
    outcome = {k: res.get(k) for k in ("end", "deal_reached", "agreement", "final_price",
                                       "total_rounds", "rewards", "utilities")}
    if res.get("game", "price") == "price" and res.get("deal_reached"):
        outcome["agreement"] = {"price": res.get("final_price")}
    head = {"session_id": row["session_id"], "game": row.get("game") or "price",
            "scenario": row.get("scenario"), "status": row.get("status")}
    out = []
    for m in moves:
        line = {**head, **{k: m.get(k) for k in MOVE_FIELDS}, "outcome": outcome}
        line["human"] = bool(line["human"])
        out.append(json.dumps(line))
    return out


def render(rows: list[dict[str, Any]], results: list[Any], fmt: str,
           moves: list[list[dict[str, Any]]] | None = None) -> bytes:
    if fmt == "jsonl":
        lines = [x for r, res, ms in zip(rows, results, moves or [], strict=True)
                 for x in dataset_lines(r, res, ms)]
        return ("\n".join(lines) + "\n").encode() if lines else b""
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


class ExportQuota(Exception):
    """The caller already holds ``max_exports_per_user`` unexpired exports."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _check_quota(s: Any, user_id: int, max_per_user: int, now: dt.datetime) -> None:
    live = sorted(s.scalars(select(Export.expires_at).where(
        Export.user_id == user_id, Export.expires_at > now)))
    if len(live) >= max_per_user:
        raise ExportQuota(f"export quota reached: at most {max_per_user} unexpired exports "
                          "per user (EQX_MAX_EXPORTS_PER_USER)",
                          (live[0] - now).total_seconds())


def create_export(db: Database, out_dir: Path, ttl_s: int, user: Principal, ids: list[str],
                  fmt: str, max_per_user: int) -> Export:
    """Write the file of sessions ``ids`` (in that order) and store its row (blocking).
    :class:`UnknownSession` for the first id the caller may not export; :class:`ExportQuota`
    when the caller holds ``max_per_user`` unexpired exports."""
    export_id = str(uuid.uuid4())
    path = (out_dir / f"{export_id}.{fmt}").resolve()
    with db.session() as s:
        _check_quota(s, user.user_id, max_per_user, utcnow())
        found = {r.id: r for r in s.scalars(select(SimSession).where(SimSession.id.in_(ids)))}
        for i in ids:
            r = found.get(i)
            if r is None or (r.user_id != user.user_id and not user.is_admin):
                raise UnknownSession(i)
        sessions = [found[i] for i in ids]
        moves = None
        if fmt == "jsonl":
            stored: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
            for m in s.scalars(select(Message).where(Message.session_id.in_(ids))
                               .order_by(Message.session_id, Message.seq)):
                stored[m.session_id].append(m.payload)
            moves = [stored[i] for i in ids]
        data = render([session_row(r) for r in sessions], [r.result for r in sessions], fmt,
                      moves)
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    try:
        # The count again, with the insert, under the one writer lock: two requests cannot
        # both take the last slot (the file is rendered outside the lock).
        with db.write() as s:
            now = utcnow()
            _check_quota(s, user.user_id, max_per_user, now)
            exp = Export(id=export_id, user_id=user.user_id, format=fmt, path=str(path),
                         session_ids=ids, created_at=now,
                         expires_at=now + dt.timedelta(seconds=ttl_s))
            s.add(exp)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
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
    if exp.path:  # "" once the sweeper has deleted it
        Path(exp.path).unlink(missing_ok=True)
    return True


def sweep_expired(db: Database) -> int:
    """Delete the files of expired exports (blocking); their rows keep ``path = ""``. Returns
    how many files were swept."""
    with db.write() as s:
        rows = list(s.scalars(select(Export).where(Export.expires_at <= utcnow(),
                                                   Export.path != "")))
        for exp in rows:
            Path(exp.path).unlink(missing_ok=True)
            exp.path = ""
    return len(rows)


async def run_sweeper(db: Database, interval_s: float) -> None:
    """Sweep expired exports now (files a previous process left) and every ``interval_s``
    seconds, until cancelled."""
    while True:
        try:
            n = await to_thread.run_sync(sweep_expired, db)
            if n:
                log.info("deleted %d expired export file(s)", n)
        except Exception:  # noqa: BLE001 - a failed sweep is retried at the next interval
            log.exception("export sweep failed")
        await asyncio.sleep(interval_s)
