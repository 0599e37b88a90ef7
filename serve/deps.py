"""What the routers share: the services container, typed dependencies, error bodies.

``ServicesDep`` is the app's :class:`Services` (HTTP routes and the WebSocket alike);
``CurrentUser`` the authenticated caller of a route (bearer token, checked for revocation; also
counts one request against the caller's rate limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from serve import auth
from serve.bus import LocalBus
from serve.db import Database
from serve.engine import Engine
from serve.health import HealthCache
from serve.jobs import JobManager
from serve.phrasing import Phraser
from serve.ratelimit import RateLimiter, WebSocketGuards, retry_after_header
from serve.settings import Settings
from serve.simulation import SimulationManager

if TYPE_CHECKING:
    from serve.workers import Reaper

API = "/api/v1"


@dataclass
class Services:
    """Everything the routes share (one instance per app, on ``app.state.services``)."""

    settings: Settings
    db: Database
    engine: Engine
    phraser: Phraser
    sims: SimulationManager
    jobs: JobManager
    user_limits: RateLimiter
    login_limits: RateLimiter
    started_at: float
    health: HealthCache
    #: Built from ``settings`` (the secret is read, or generated in the data directory, there).
    tokens: auth.TokenService
    #: Login and password-change attempts per user name (``login_limits`` is per address).
    account_limits: RateLimiter
    #: The password checks' own bounded thread pool.
    login_pool: auth.LoginPool
    #: Unauthenticated sockets per address and client frames per socket.
    ws_guards: WebSocketGuards
    #: This worker's identity, and what it shares with the others (:mod:`serve.bus`).
    bus: LocalBus = field(default_factory=LocalBus)
    #: Comparison slots (``POST /tournament``), shared by the workers in scale-out mode.
    slots: Any = None
    #: Ends the sessions of dead workers (scale-out only).
    reaper: Reaper = None  # type: ignore[assignment]
    default_policy: str | None = None


def get_services(conn: HTTPConnection) -> Services:
    return conn.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


# ------------------------------------------------------------------------------- auth deps
_bearer = HTTPBearer(auto_error=False, description="JWT from POST /api/v1/auth/login")


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def principal_from_token(svc: Services, token: str) -> auth.Principal:
    """The caller a bearer token names, for HTTP routes and the WebSocket alike (signature,
    expiry and revocation checked: in memory, with the database read at most every
    ``token_cache_s`` per user); :class:`serve.auth.AuthError` otherwise. Does not count
    against the rate limit."""
    return await svc.tokens.verify(token)


async def current_user(
    svc: ServicesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> auth.Principal:
    """The caller of an authenticated route; also counts one request against its limit."""
    if creds is None:
        raise unauthorized("not authenticated: send Authorization: Bearer <token>")
    try:
        principal = await principal_from_token(svc, creds.credentials)
    except auth.AuthError as e:
        raise unauthorized(str(e)) from None
    wait = svc.user_limits.take(principal.user_id)
    if wait > 0:
        raise too_many(f"rate limit exceeded: {svc.settings.rate_limit_per_minute:g} requests "
                       "per minute", wait)
    return principal


CurrentUser = Annotated[auth.Principal, Depends(current_user)]


#: What each error status of the API means, for the OpenAPI document (``error_responses``).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "malformed request",
    401: "missing, invalid, expired or revoked bearer token",
    403: "not allowed for this user",
    404: "no such resource (or not the caller's)",
    409: "conflicts with the resource's state",
    410: "gone (expired)",
    413: "request body larger than the server accepts",
    422: "a field is invalid (the body names it and its allowed range)",
    429: "rate limit or quota reached (see Retry-After)",
    503: "a backing service is unavailable",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """``responses=`` for a route decorator: every error status it may return, documented with
    the common ``{"detail": ...}`` body (``error_responses(401, 404, 422)``)."""
    return {code: {"description": ERROR_DESCRIPTIONS[code],
                   "content": {"application/json": {"schema": {
                       "type": "object", "properties": {"detail": {}},
                       "required": ["detail"]}}}}
            for code in codes}


def not_found(kind: str, ident: str) -> HTTPException:
    return HTTPException(404, f"{kind} {ident!r} not found")


def too_many(detail: str, retry_after_s: float) -> HTTPException:
    """The 429 of every limit and quota: ``Retry-After`` is ``retry_after_s`` rounded up to
    whole seconds."""
    return HTTPException(429, detail, headers={"Retry-After": retry_after_header(retry_after_s)})


def too_busy(detail: str) -> HTTPException:
    """A 429 for work the server runs only so much of at once (retry in a few seconds)."""
    return too_many(detail, 5)


def field_error(field: str, message: str, where: str = "body",
                status: int = 422) -> JSONResponse:
    """A 422 (or ``status``: 404 for a name that does not exist) shaped like FastAPI's validation
    errors, naming the field."""
    kind = "not_found" if status == 404 else "value_error"
    return JSONResponse(status_code=status, content={"detail": [
        {"type": kind, "loc": [where, field], "msg": message}]})
