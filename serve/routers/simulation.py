"""Simulations: start one, its live status, its transcript (replay), the caller's list.

``POST /simulation/start`` answers at once with the session id and its WebSocket URL
(:mod:`serve.routers.stream`); the session runs in the background (:mod:`serve.simulation`).
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Query

from serve import auth
from serve.db import SimSession
from serve.deps import API, CurrentUser, Services, ServicesDep, field_error, not_found, too_busy
from serve.engine import PolicyError
from serve.exports import session_row
from serve.schemas import (
    SimulationStartRequest,
    SimulationStartResponse,
    SimulationStatus,
    SimulationTranscript,
)
from serve.simulation import TooManySessions

router = APIRouter(prefix=API, tags=["simulation"])


@router.post("/simulation/start", response_model=SimulationStartResponse, status_code=201)
async def start_simulation(body: SimulationStartRequest, svc: ServicesDep, user: CurrentUser):
    """Start a negotiation between two policies; stream it from ``websocket_url``."""
    try:
        row = await svc.sims.start(user, body)
    except PolicyError as e:
        return field_error(e.field, str(e))
    except TooManySessions:
        raise too_busy("too many simulations running; retry shortly") from None
    return SimulationStartResponse(
        session_id=row.id, websocket_url=f"{API}/simulation/{row.id}/stream",
        created_at=row.created_at, supplier_policy=row.supplier_policy,
        retailer_policy=row.retailer_policy, seed=row.seed)


async def _session_or_404(svc: Services, session_id: str, user: auth.Principal) -> SimSession:
    row = await to_thread.run_sync(svc.sims.get, session_id, user)
    if row is None:
        raise not_found("session", session_id)
    return row


@router.get("/simulation/{session_id}/status", response_model=SimulationStatus)
async def simulation_status(session_id: str, svc: ServicesDep, user: CurrentUser):
    """Live status: ``created | running | completed | failed | interrupted``, current round."""
    row = await _session_or_404(svc, session_id, user)
    feed = svc.sims.live.get(session_id)
    moves = (len(feed.messages) if feed is not None
             else await to_thread.run_sync(svc.sims.move_count, session_id))
    return SimulationStatus(
        session_id=row.id, status=row.status, current_round=row.current_round,
        max_rounds=row.max_rounds, moves=moves, deal_reached=row.deal_reached,
        final_price=row.final_price, supplier_policy=row.supplier_policy,
        retailer_policy=row.retailer_policy, error=row.error, created_at=row.created_at,
        started_at=row.started_at, updated_at=row.updated_at, finished_at=row.finished_at)


@router.get("/simulation/{session_id}", response_model=SimulationTranscript)
async def simulation_transcript(session_id: str, svc: ServicesDep, user: CurrentUser):
    """The full transcript (replay): request, game, every stored move, and the result."""
    row = await _session_or_404(svc, session_id, user)
    messages = await to_thread.run_sync(svc.sims.stored_messages, session_id)
    return SimulationTranscript(
        session_id=row.id, status=row.status, request=session_request(row), game=row.game,
        seed=row.seed, messages=messages, result=row.result, error=row.error,
        created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at)


def session_request(row: SimSession) -> dict[str, Any]:
    return {"supplier_valuation": row.supplier_valuation,
            "retailer_valuation": row.retailer_valuation, "max_rounds": row.max_rounds,
            "supplier_style": row.supplier_style, "retailer_style": row.retailer_style,
            "supplier_policy": row.supplier_policy, "retailer_policy": row.retailer_policy,
            "move_delay_s": row.move_delay_s, "deterministic": row.deterministic}


@router.get("/simulations")
async def list_simulations(svc: ServicesDep, user: CurrentUser,
                           limit: int = Query(50, ge=1, le=500)) -> list[dict[str, Any]]:
    """The caller's most recent sessions (an admin's: everyone's), newest first, one row each
    with the export's CSV columns (``serve.exports.CSV_COLUMNS``): what the dashboard's
    analytics, replay list and export selection read."""
    rows = await to_thread.run_sync(svc.sims.recent, user, limit)
    return [session_row(r) for r in rows]
