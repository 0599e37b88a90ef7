"""What the routers share: the services container, typed dependencies, error bodies.

``ServicesDep`` is the app's :class:`Services` (HTTP routes and the WebSocket alike);
``CurrentUser`` the authenticated caller of a route (bearer token; also counts one request
against the caller's rate limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from serve import auth
from serve.db import Database
from serve.engine import Engine
from serve.jobs import JobManager
from serve.phrasing import Phraser
from serve.ratelimit import RateLimiter, retry_after_header
from serve.settings import Settings
from serve.simulation import SimulationManager

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
    default_policy: str | None = None


def get_services(conn: HTTPConnection) -> Services:
    return conn.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


# ------------------------------------------------------------------------------- auth deps
_bearer = HTTPBearer(auto_error=False, description="JWT from POST /api/v1/auth/login")


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_user(
    svc: ServicesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> auth.Principal:
    """The caller of an authenticated route; also counts one request against its limit."""
    if creds is None:
        raise unauthorized("not authenticated: send Authorization: Bearer <token>")
    try:
        principal = auth.decode_token(creds.credentials, svc.settings.secret_key)
    except auth.AuthError as e:
        raise unauthorized(str(e)) from None
    wait = svc.user_limits.take(principal.user_id)
    if wait > 0:
        raise HTTPException(429, f"rate limit exceeded: {svc.settings.rate_limit_per_minute:g} "
                                 "requests per minute", headers={"Retry-After":
                                                                 retry_after_header(wait)})
    return principal


CurrentUser = Annotated[auth.Principal, Depends(current_user)]


def not_found(kind: str, ident: str) -> HTTPException:
    return HTTPException(404, f"{kind} {ident!r} not found")


def too_busy(detail: str) -> HTTPException:
    """A 429 for work the server runs only so much of at once (retry in a few seconds)."""
    return HTTPException(429, detail, headers={"Retry-After": "5"})


def field_error(field: str, message: str, where: str = "body") -> JSONResponse:
    """A 422 shaped like FastAPI's validation errors, naming the field."""
    return JSONResponse(status_code=422, content={"detail": [
        {"type": "value_error", "loc": [where, field], "msg": message}]})
