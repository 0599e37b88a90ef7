"""Simulations: start one, its live status, its transcript (replay), the caller's list.

``POST /simulation/start`` answers at once with the session id and its WebSocket URL
(:mod:`serve.routers.stream`); the session runs in the background (:mod:`serve.simulation`),
its first move held briefly for a stream client's config frame. A caller over its own cap of
running sessions, or the server over its cap, gets 429 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Query

from serve import auth
from serve.db import SimSession
from serve.deps import (
    API,
    CurrentUser,
    Services,
    ServicesDep,
    error_responses,
    field_error,
    not_found,
    too_busy,
    too_many,
)
from serve.engine import PolicyError
from serve.exports import session_row
from serve.schemas import (
    SimulationStartRequest,
    SimulationStartResponse,
    SimulationStatus,
    SimulationTranscript,
)
from serve.simulation import SessionRules, TooManySessions, stored_request

router = APIRouter(prefix=API, tags=["simulation"])


#: Seconds a client over a session cap is told to wait: sessions last seconds (0 delay) to
#: a minute or so (``move_delay_s`` 5, 10 rounds).
SESSION_CAP_RETRY_S = 5


def session_cap_exceeded(e: TooManySessions) -> HTTPException:
    """The 429 for a start over a cap, naming the cap and its setting."""
    if e.scope == "user":
        return too_many(f"too many simulations running for this user: at most {e.limit} at "
                        "once (EQX_MAX_RUNNING_SESSIONS_PER_USER); retry when one has finished",
                        SESSION_CAP_RETRY_S)
    return too_busy(f"too many simulations running on this server: at most {e.limit} at once "
                    "(EQX_MAX_RUNNING_SESSIONS); retry shortly")


@router.post("/simulation/start", response_model=SimulationStartResponse, status_code=201,
             responses=error_responses(401, 404, 413, 422, 429))
async def start_simulation(body: SimulationStartRequest, svc: ServicesDep, user: CurrentUser):
    """Start a negotiation between two policies; stream it from ``websocket_url``. Its first
    move waits for a stream client's config frame (``EQX_WS_CONFIG_WAIT_S`` after the first
    client authenticated) or, with no client, ``EQX_SESSION_START_HOLD_S``."""
    try:
        row = await svc.sims.start(user, body, SessionRules.from_settings(svc.settings))
    except PolicyError as e:
        return field_error(e.field, str(e), status=e.status)
    except TooManySessions as e:
        raise session_cap_exceeded(e) from None
    return SimulationStartResponse(
        session_id=row.id, websocket_url=f"{API}/simulation/{row.id}/stream",
        created_at=row.created_at, supplier_policy=row.supplier_policy,
        retailer_policy=row.retailer_policy, seed=row.seed)


async def _session_or_404(svc: Services, session_id: str, user: auth.Principal) -> SimSession:
    row = await to_thread.run_sync(svc.sims.get, session_id, user)
    if row is None:
        raise not_found("session", session_id)
    return row


@router.get("/simulation/{session_id}/status", response_model=SimulationStatus,
            responses=error_responses(401, 404, 429))
async def simulation_status(session_id: str, svc: ServicesDep, user: CurrentUser):
    """Live status: ``created | running | completed | failed | interrupted``, current round."""
    row = await _session_or_404(svc, session_id, user)
    feed = svc.sims.live.get(session_id)
    moves = (feed.moves() if feed is not None
             else await to_thread.run_sync(svc.sims.move_count, session_id))
    return SimulationStatus(
        session_id=row.id, status=row.status, current_round=row.current_round,
        max_rounds=row.max_rounds, moves=moves, deal_reached=row.deal_reached,
        final_price=row.final_price, supplier_policy=row.supplier_policy,
        retailer_policy=row.retailer_policy, error=row.error, created_at=row.created_at,
        started_at=row.started_at, updated_at=row.updated_at, finished_at=row.finished_at)


@router.get("/simulation/{session_id}", response_model=SimulationTranscript,
            responses=error_responses(401, 404, 429))
async def simulation_transcript(session_id: str, svc: ServicesDep, user: CurrentUser):
    """The full transcript (replay): request, game, every stored move, and the result."""
    row = await _session_or_404(svc, session_id, user)
    messages = await to_thread.run_sync(svc.sims.stored_messages, session_id)
    return SimulationTranscript(
        session_id=row.id, status=row.status, request=session_request(row), game=row.game,
        seed=row.seed, messages=messages, result=row.result, error=row.error,
        created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at)


def session_request(row: SimSession) -> dict[str, Any]:
    """The replay's ``request``: the session's configuration without the seed (its own
    field)."""
    return {k: v for k, v in stored_request(row).items() if k != "seed"}


@router.get("/simulations", responses=error_responses(401, 422, 429))
async def list_simulations(svc: ServicesDep, user: CurrentUser,
                           limit: int = Query(50, ge=1, le=500)) -> list[dict[str, Any]]:
    """The caller's most recent sessions (an admin's: everyone's), newest first, one row each
    with the export's CSV columns (``serve.exports.CSV_COLUMNS``): what the dashboard's
    analytics, replay list and export selection read."""
    rows = await to_thread.run_sync(svc.sims.recent, user, limit)
    return [session_row(r) for r in rows]
