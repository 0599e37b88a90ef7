"""``POST /api/v1/auth/login``: a username and password for a bearer token."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Request

from serve import auth
from serve.deps import API, ServicesDep, unauthorized
from serve.ratelimit import retry_after_header
from serve.schemas import LoginRequest, TokenResponse

router = APIRouter(prefix=f"{API}/auth", tags=["auth"])


@router.post("/login", response_model=TokenResponse)
async def login(body: LoginRequest, request: Request, svc: ServicesDep) -> TokenResponse:
    """Exchange a username and password for a bearer token (rate-limited per client IP)."""
    ip = request.client.host if request.client else "unknown"
    wait = svc.login_limits.take(ip)
    if wait > 0:
        raise HTTPException(429, "too many login attempts", headers={
            "Retry-After": retry_after_header(wait)})
    try:
        principal = await to_thread.run_sync(auth.authenticate, svc.db, body.username,
                                             body.password)
    except auth.AuthError as e:
        raise unauthorized(str(e)) from None
    token = auth.issue_token(principal, svc.settings.secret_key, svc.settings.token_ttl_s)
    return TokenResponse(access_token=token, expires_in=svc.settings.token_ttl_s)
