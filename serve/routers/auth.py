"""``/api/v1/auth``: log in (a username and password for a bearer token), log out (revoke the
caller's token), change the password (revoke all of the user's tokens).

Password attempts are limited per client address (``login_attempts_per_minute``; the address is
the socket peer unless it is one of ``trusted_proxies``, then X-Forwarded-For) and per user
name from any address (``login_attempts_per_account_per_minute``); each argon2 check runs on the
login pool (``login_hash_workers`` threads, ``login_max_pending`` at most), never on the thread
pool the other requests share.
"""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Request, Response

from serve import auth
from serve.deps import (
    API,
    CurrentUser,
    Services,
    ServicesDep,
    error_responses,
    too_many,
    unauthorized,
)
from serve.ratelimit import RateLimiter
from serve.schemas import LoginRequest, PasswordChangeRequest, TokenResponse

router = APIRouter(prefix=f"{API}/auth", tags=["auth"])


def client_address(request: Request) -> str:
    """The client's address: uvicorn has already replaced the socket peer by X-Forwarded-For
    when (and only when) the peer is a trusted proxy."""
    return request.client.host if request.client else "unknown"


def _take(limits: RateLimiter, key: str, detail: str) -> None:
    wait = limits.take(key)
    if wait > 0:
        raise too_many(detail, wait)


def _limit_attempt(svc: Services, request: Request, username: str) -> None:
    """Count one password attempt against the address, then the account; 429 when spent.
    The address goes first so that one address cannot spend an account's attempts alone."""
    _take(svc.login_limits, client_address(request), "too many login attempts from this address")
    _take(svc.account_limits, username, "too many login attempts for this account")


def _busy(e: auth.LoginBusy) -> HTTPException:
    return too_many(str(e), 1)


@router.post("/login", response_model=TokenResponse, responses=error_responses(401, 413, 422, 429))
async def login(body: LoginRequest, request: Request, svc: ServicesDep) -> TokenResponse:
    """Exchange a username and password for a bearer token (`expires_in` seconds). Limited
    per client address and per account: 429 with Retry-After."""
    _limit_attempt(svc, request, body.username)
    try:
        principal = await svc.login_pool.run(auth.authenticate, svc.db, body.username,
                                             body.password)
    except auth.LoginBusy as e:
        raise _busy(e) from None
    except auth.AuthError as e:
        raise unauthorized(str(e)) from None
    return TokenResponse(access_token=svc.tokens.issue(principal),
                         expires_in=svc.settings.token_ttl_s)


@router.post("/logout", status_code=204, response_class=Response,
             responses=error_responses(401, 413, 429))
async def logout(user: CurrentUser, svc: ServicesDep) -> Response:
    """Revoke the caller's token (it is refused from now on, by HTTP and WebSocket alike)."""
    await to_thread.run_sync(svc.tokens.revoke, user)
    return Response(status_code=204)


@router.post("/password", response_model=TokenResponse,
             responses=error_responses(401, 403, 413, 422, 429))
async def change_password(body: PasswordChangeRequest, request: Request, user: CurrentUser,
                          svc: ServicesDep) -> TokenResponse:
    """Change the caller's password (`old_password` must match: else 403). Every token of the
    user is revoked, the one of this request included; the response is a new token."""
    _limit_attempt(svc, request, user.username)
    try:
        generation = await svc.login_pool.run(auth.set_password, svc.db, user.username,
                                              body.new_password, body.old_password)
    except auth.LoginBusy as e:
        raise _busy(e) from None
    except auth.AuthError as e:
        raise HTTPException(403, str(e)) from None
    except ValueError as e:  # the user was deleted meanwhile
        raise unauthorized(str(e)) from None
    svc.tokens.revoke_all(user.user_id, generation)
    fresh = auth.Principal(user.user_id, user.username, user.is_admin, generation=generation)
    return TokenResponse(access_token=svc.tokens.issue(fresh),
                         expires_in=svc.settings.token_ttl_s)
