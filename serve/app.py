"""The FastAPI application: ``create_app(settings)`` starts the services and includes the
routers (:mod:`serve.routers`, one module per resource).

Routes (base ``/api/v1`` except ``/health`` and the docs at ``/docs``):

* ``POST /auth/login`` -> bearer token (JWT HS256, ``expires_in`` seconds) (``routers.auth``)
* ``POST /simulation/start``, ``GET /simulation/{id}/status``, ``GET /simulation/{id}`` (replay),
  ``GET /simulations`` (the caller's recent sessions) (``routers.simulation``);
  ``WS /simulation/{id}/stream`` (``routers.stream``)
* ``POST /agent/train``, ``GET /agent/jobs/{job_id}`` (``routers.jobs``); ``GET /agent/policies``,
  ``GET /agent/{agent_id}/policy``, ``GET /agent/{agent_id}/download`` (``routers.agents``)
* ``POST /metrics/export``, ``GET /metrics/export/{export_id}`` (``routers.exports``)
* ``POST /tournament`` (two players head to head, with confidence intervals)
  (``routers.tournament``) and ``GET /meta`` (negotiators, default game, field bounds; no auth)
  (``routers.meta``), for the dashboard
* ``GET /health`` (state words without a token, details with one) (``routers.health``);
  the web dashboard at ``/`` (``serve/static/``, no auth) (``routers.dashboard``)

One worker process by default: live sessions, rate-limit windows and the job queue are in memory
(the database holds everything durable). With ``REDIS_URL`` and a PostgreSQL ``DATABASE_URL``,
several workers share the feeds, limits and heartbeats through Redis (:mod:`serve.bus`,
:mod:`serve.workers`; docs/deploy.md). Blocking work (database, JAX) runs in worker threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLTimeoutError

from serve import auth, openapi
from serve.bus import make_bus
from serve.db import Database
from serve.deps import Services
from serve.engine import Engine
from serve.health import HealthCache
from serve.jobs import JobManager
from serve.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from serve.phrasing import make_phraser
from serve.policies import register_default
from serve.ratelimit import RateLimiter, WebSocketGuards
from serve.routers import (
    agents,
    dashboard,
    exports,
    health,
    jobs,
    meta,
    simulation,
    stream,
    tournament,
)
from serve.routers import auth as auth_routes
from serve.settings import Settings
from serve.simulation import SimulationManager
from serve.tournament import make_slots
from serve.workers import Reaper, register_handlers

log = logging.getLogger("eqx.serve")


def build_services(settings: Settings) -> Services:
    """The services, not started yet (no database access, no task)."""
    db = Database(settings.db_url, settings.db_pool_size, settings.db_max_overflow)
    engine = Engine()
    phraser = make_phraser(settings.llm)
    bus = make_bus(settings.redis_url, settings.worker_ttl_s, settings.worker_call_timeout_s)
    sims = SimulationManager(db, engine, phraser, max_running=settings.max_running_sessions,
                             default_supplier=settings.default_supplier_policy,
                             default_retailer=settings.default_retailer_policy, bus=bus)
    register_handlers(sims, bus)
    storage = settings.limits_storage
    login_rate = settings.login_attempts_per_minute
    account_rate = settings.login_attempts_per_account_per_minute
    return Services(
        settings=settings, db=db, engine=engine, phraser=phraser, sims=sims,
        jobs=JobManager(db, settings, bus=bus),
        user_limits=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst,
                                namespace="user", storage_uri=storage),
        login_limits=RateLimiter(login_rate, max(1, int(login_rate)), namespace="login",
                                 storage_uri=storage),
        account_limits=RateLimiter(account_rate, max(1, int(account_rate)),
                                   namespace="login-account",
                                   storage_uri=storage),
        tokens=auth.TokenService(db, auth.server_secret(settings), settings.token_ttl_s,
                                 settings.token_cache_s),
        login_pool=auth.LoginPool(settings.login_hash_workers, settings.login_max_pending),
        ws_guards=WebSocketGuards(settings, getattr(bus, "redis", None)),
        started_at=time.time(), health=HealthCache(settings.health_cache_s), bus=bus,
        reaper=Reaper(sims, settings.worker_ttl_s / 2),
        slots=make_slots(getattr(bus, "redis", None)))


def _ensure_admin(svc: Services) -> None:
    s = svc.settings
    if s.admin_user and s.admin_password:
        auth.create_user(svc.db, s.admin_user, s.admin_password, is_admin=True, exist_ok=True)


async def start_services(settings: Settings) -> Services:
    """Migrate the database, then start the move writer, the admin user, the default policy,
    the job workers and the phraser. Sessions a previous process left running are marked
    ``interrupted``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    svc = build_services(settings)
    await to_thread.run_sync(svc.db.migrate)
    await svc.bus.start()
    svc.sims.writer.start()
    await to_thread.run_sync(_ensure_admin, svc)
    if not svc.bus.scale_out:
        # One process: whatever a previous run left running cannot go on. With several
        # workers the reaper ends only the sessions of workers that died.
        n = len(await to_thread.run_sync(svc.sims.mark_interrupted))
        if n:
            log.warning("%d session(s) from a previous run marked interrupted", n)
    svc.reaper.start()
    svc.default_policy = await to_thread.run_sync(register_default, svc.db,
                                                  settings.default_policy_dir)
    await svc.jobs.start()
    await svc.phraser.start()
    log.info("EquilibriumX server ready (database %s, LLM %s, default policy %s)",
             svc.db.engine.url.render_as_string(True), settings.llm.backend, svc.default_policy)
    return svc


async def stop_services(svc: Services) -> None:
    await svc.reaper.stop()
    await svc.sims.shutdown()
    await svc.bus.stop()
    await svc.jobs.shutdown()
    await svc.phraser.aclose()
    svc.login_pool.close()
    svc.engine.close()
    svc.db.dispose()


def add_exception_handlers(app: FastAPI) -> None:
    """422 bodies without the echoed input; a plain 500 for anything unexpected (logged)."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's body, minus the echoed input (it may hold a password) and the ctx objects.
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")}
                  for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(OperationalError)
    @app.exception_handler(SQLTimeoutError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        # The database is unreachable (stopped, restarting, out of connections): nothing was
        # written; the pool reconnects by itself (pre-ping) once it answers again.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    type(exc).__name__)
        retry = request.app.state.services.settings.db_retry_after_s
        return JSONResponse(status_code=503, headers={"Retry-After": str(retry)},
                            content={"detail": "the database is unavailable; retry in "
                                               f"{retry} s", "dependency": "database"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal server error"})


def include_routers(app: FastAPI) -> None:
    # Jobs before agents: /agent/jobs/{id} is matched before /agent/{agent_id}/policy.
    for module in (health, auth_routes, simulation, stream, jobs, agents, exports, tournament,
                   meta):
        app.include_router(module.router)
    dashboard.mount(app)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application. Raises :class:`serve.settings.SettingsError` for settings that must
    stop the server (e.g. an ``EQX_SECRET_KEY`` shorter than 32 characters)."""
    settings = settings or Settings()
    settings.check()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = await start_services(settings)
        app.state.services = svc
        try:
            yield
        finally:
            await stop_services(svc)

    docs = settings.docs_enabled if settings.docs_enabled is not None else (
        settings.mode != "production")
    app = FastAPI(
        title="EquilibriumX live server",
        version="0.1.0",
        description="Trained eqx_jax agents negotiating live, each move phrased by an LLM. "
                    "Get a token from POST /api/v1/auth/login and click Authorize.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    # Innermost first: the body limit runs before anything reads a body; CORS and the security
    # headers wrap every answer, the 413 included. No credentials: tokens travel in the
    # Authorization header, never in cookies.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                       allow_credentials=False, allow_methods=["*"], allow_headers=["*"],
                       expose_headers=["Retry-After"])
    app.add_middleware(SecurityHeadersMiddleware)
    add_exception_handlers(app)
    include_routers(app)
    openapi.install(app, settings.max_job_timesteps)
    return app
