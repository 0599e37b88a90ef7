"""Shared pieces of the routes: the services container, the auth dependency, error bodies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serve import auth
from serve.db import Database
from serve.engine import Engine
from serve.ratelimit import TokenBuckets, retry_after_header
from serve.settings import Settings

API = "/api/v1"


@dataclass
class Services:
    """Everything the routes share (one instance per app, on ``app.state.services``)."""

    settings: Settings
    db: Database
    engine: Engine
    phraser: Any  # serve.phrasing.Phraser
    sims: Any  # serve.simulation.SimulationManager
    jobs: Any  # serve.jobs.JobManager
    user_buckets: TokenBuckets
    login_buckets: TokenBuckets
    started_at: float
    default_policy: str | None = None


def services(request: Request) -> Services:
    return request.app.state.services


# ------------------------------------------------------------------------------- auth deps
_bearer = HTTPBearer(auto_error=False, description="JWT from POST /api/v1/auth/login")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_user(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> auth.Principal:
    """The caller of an authenticated route; also takes one token of its rate-limit bucket."""
    svc = services(request)
    if creds is None:
        raise _unauthorized("not authenticated: send Authorization: Bearer <token>")
    try:
        principal = auth.decode_token(creds.credentials, svc.settings.secret_key)
    except auth.AuthError as e:
        raise _unauthorized(str(e)) from None
    wait = svc.user_buckets.take(principal.user_id)
    if wait > 0:
        raise HTTPException(429, f"rate limit exceeded: {svc.settings.rate_limit_per_minute:g} "
                                 "requests per minute", headers={"Retry-After":
                                                                 retry_after_header(wait)})
    return principal


User = Annotated[auth.Principal, Depends(current_user)]


def not_found(kind: str, ident: str) -> HTTPException:
    return HTTPException(404, f"{kind} {ident!r} not found")


def field_error(field: str, message: str, where: str = "body") -> JSONResponse:
    """A 422 shaped like FastAPI's validation errors, naming the field."""
    return JSONResponse(status_code=422, content={"detail": [
        {"type": "value_error", "loc": [where, field], "msg": message}]})
