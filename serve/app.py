"""The FastAPI application: ``create_app(settings)``.

Routes (base ``/api/v1`` except ``/health`` and the docs at ``/docs``):

* ``POST /auth/login`` -> bearer token (JWT HS256, ``expires_in`` seconds)
* ``POST /simulation/start``, ``GET /simulation/{id}/status``, ``GET /simulation/{id}`` (replay),
  ``WS /simulation/{id}/stream?token=...``
* ``POST /agent/train``, ``GET /agent/jobs/{job_id}``, ``GET /agent/policies``,
  ``GET /agent/{agent_id}/policy``, ``GET /agent/{agent_id}/download``
* ``POST /metrics/export``, ``GET /metrics/export/{export_id}``
* ``GET /simulations`` (the caller's recent sessions) and ``POST /tournament`` (two players
  head to head, with confidence intervals), for the dashboard
* ``GET /health`` (no auth); the web dashboard at ``/`` (``serve/static/``, no auth)

One worker process: live sessions, rate-limit buckets and the job queue are in memory (the
database holds everything durable). Blocking work (database, JAX) runs in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from anyio import to_thread
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, text
from starlette.websockets import WebSocketDisconnect, WebSocketState

from serve import auth
from serve.db import Database, Job, SimSession
from serve.deps import API, Services, User, _unauthorized, field_error, not_found, services
from serve.engine import Engine, PolicyError
from serve.ratelimit import TokenBuckets, retry_after_header
from serve.schemas import (
    POLICY_PATTERN,
    LoginRequest,
    SimulationStartRequest,
    SimulationStartResponse,
    SimulationStatus,
    SimulationTranscript,
    TokenResponse,
)
from serve.settings import Settings
from serve.simulation import SimulationManager, TooManySessions, end_message

log = logging.getLogger("eqx.serve")


# WebSocket close codes (RFC 6455 + the application range 4000-4999).
WS_NORMAL = 1000
WS_POLICY_VIOLATION = 1008  # bad/missing token, oversize or malformed client frame
WS_TRY_AGAIN_LATER = 1013  # rate limited
WS_NOT_FOUND = 4404  # unknown session id (mirrors HTTP 404)


# ------------------------------------------------------------------------------------ routes
auth_router = APIRouter(prefix=f"{API}/auth", tags=["auth"])


@auth_router.post("/login", response_model=TokenResponse)
async def login(body: LoginRequest, request: Request) -> TokenResponse:
    """Exchange a username and password for a bearer token (rate-limited per client IP)."""
    svc = services(request)
    ip = request.client.host if request.client else "unknown"
    wait = svc.login_buckets.take(ip)
    if wait > 0:
        raise HTTPException(429, "too many login attempts", headers={
            "Retry-After": retry_after_header(wait)})
    try:
        principal = await to_thread.run_sync(auth.authenticate, svc.db, body.username,
                                             body.password)
    except auth.AuthError as e:
        raise _unauthorized(str(e)) from None
    token = auth.issue_token(principal, svc.settings.secret_key, svc.settings.token_ttl_s)
    return TokenResponse(access_token=token, expires_in=svc.settings.token_ttl_s)


sim_router = APIRouter(prefix=f"{API}/simulation", tags=["simulation"])


@sim_router.post("/start", response_model=SimulationStartResponse, status_code=201)
async def start_simulation(body: SimulationStartRequest, request: Request, user: User):
    """Start a negotiation between two policies; stream it from ``websocket_url``."""
    svc = services(request)
    try:
        row = await svc.sims.start(user, body)
    except PolicyError as e:
        return field_error(e.field, str(e))
    except TooManySessions:
        raise HTTPException(429, "too many simulations running; retry shortly",
                            headers={"Retry-After": "5"}) from None
    return SimulationStartResponse(
        session_id=row.id, websocket_url=f"{API}/simulation/{row.id}/stream",
        created_at=row.created_at, supplier_policy=row.supplier_policy,
        retailer_policy=row.retailer_policy, seed=row.seed)


async def _session_or_404(svc: Services, session_id: str, user: auth.Principal) -> SimSession:
    row = await to_thread.run_sync(svc.sims.get, session_id, user)
    if row is None:
        raise not_found("session", session_id)
    return row


@sim_router.get("/{session_id}/status", response_model=SimulationStatus)
async def simulation_status(session_id: str, request: Request, user: User):
    """Live status: ``created | running | completed | failed | interrupted``, current round."""
    svc = services(request)
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


@sim_router.get("/{session_id}", response_model=SimulationTranscript)
async def simulation_transcript(session_id: str, request: Request, user: User):
    """The full transcript (replay): request, game, every stored move, and the result."""
    svc = services(request)
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


# ------------------------------------------------------------------------------- WebSocket
class _Violation(Exception):
    pass


async def _receive_checked(ws: WebSocket, limit: int) -> dict[str, Any] | None:
    """One client frame as a JSON object; None on disconnect; ``_Violation`` if too big,
    binary, not JSON, or not an object."""
    msg = await ws.receive()
    if msg["type"] == "websocket.disconnect":
        return None
    data = msg.get("text")
    if data is None:
        raise _Violation("binary frames are not accepted")
    if len(data.encode()) > limit:
        raise _Violation(f"frame larger than {limit} bytes")
    try:
        obj = json.loads(data)
    except ValueError:
        raise _Violation("frame is not JSON") from None
    if not isinstance(obj, dict):
        raise _Violation("frame must be a JSON object")
    return obj


async def _close(ws: WebSocket, code: int, reason: str = "") -> None:
    if ws.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(code=code, reason=reason[:120])


async def stream(ws: WebSocket, session_id: str) -> None:
    """``WS /api/v1/simulation/{id}/stream``: stored moves, then live ones, then the result.

    Auth: ``?token=<jwt>``, or a first frame ``{"token": "<jwt>"}`` within
    ``ws_auth_timeout_s``; a bad or missing token closes with 1008. Client frames after that may
    only be ``{"type": "ping"}`` (answered with ``{"type": "pong"}``); anything oversize
    (> ``ws_max_message_bytes``), binary, or not a JSON object closes with 1008.
    """
    svc: Services = ws.app.state.services
    limit = svc.settings.ws_max_message_bytes
    await ws.accept()
    token = ws.query_params.get("token")
    try:
        if not token:
            try:
                first = await asyncio.wait_for(_receive_checked(ws, limit),
                                               svc.settings.ws_auth_timeout_s)
            except TimeoutError:
                first = {}
            if first is None:
                return
            token = first.get("token") if isinstance(first.get("token"), str) else None
        if not token:
            await _close(ws, WS_POLICY_VIOLATION, "missing token")
            return
        try:
            principal = auth.decode_token(token, svc.settings.secret_key)
        except auth.AuthError as e:
            await _close(ws, WS_POLICY_VIOLATION, str(e))
            return
    except _Violation as e:
        await _close(ws, WS_POLICY_VIOLATION, str(e))
        return
    if svc.user_buckets.take(principal.user_id) > 0:
        await _close(ws, WS_TRY_AGAIN_LATER, "rate limit exceeded")
        return
    row = await to_thread.run_sync(svc.sims.get, session_id, principal)
    if row is None:
        await _close(ws, WS_NOT_FOUND, "session not found")
        return

    send_lock = asyncio.Lock()

    async def send(obj: dict[str, Any]) -> None:
        async with send_lock:
            await ws.send_text(json.dumps(obj))

    async def writer() -> str:
        feed = svc.sims.live.get(session_id)
        if feed is not None:
            async for payload in feed.follow():
                await send(payload)
        else:
            # Finished (or interrupted) before we connected: the database has everything.
            fresh = await to_thread.run_sync(svc.sims.get, session_id, principal)
            for payload in await to_thread.run_sync(svc.sims.stored_messages, session_id):
                await send(payload)
            await send(end_message(fresh or row))
        return "done"

    async def reader() -> str:
        while True:
            obj = await _receive_checked(ws, limit)
            if obj is None:
                return "disconnect"
            if obj.get("type") == "ping":
                await send({"type": "pong", "timestamp": time.time()})
            elif set(obj) == {"token"}:
                continue  # a client that sends its token again is harmless
            else:
                raise _Violation("unexpected message: only {\"type\": \"ping\"} is accepted")

    w, r = asyncio.create_task(writer()), asyncio.create_task(reader())
    try:
        done, _ = await asyncio.wait({w, r}, return_when=asyncio.FIRST_COMPLETED)
        if w in done:
            w.result()
            await _close(ws, WS_NORMAL, "simulation finished")
        else:
            try:
                r.result()
            except _Violation as e:
                await _close(ws, WS_POLICY_VIOLATION, str(e))
    except (WebSocketDisconnect, RuntimeError, ConnectionError):
        pass  # the client went away mid-send
    finally:
        for t in (w, r):
            t.cancel()
        await asyncio.gather(w, r, return_exceptions=True)


# ------------------------------------------------------- session list (for the dashboard)
list_router = APIRouter(prefix=API, tags=["simulation"])


@list_router.get("/simulations")
async def list_simulations(request: Request, user: User,
                           limit: int = Query(50, ge=1, le=500)) -> list[dict[str, Any]]:
    """The caller's most recent sessions (an admin's: everyone's), newest first, one row each
    with the export's CSV columns (``serve.exports.CSV_COLUMNS``): what the dashboard's
    analytics, replay list and export selection read."""
    from serve.exports import session_row

    svc = services(request)

    def rows() -> list[dict[str, Any]]:
        q = select(SimSession).order_by(SimSession.created_at.desc()).limit(limit)
        if not user.is_admin:
            q = q.where(SimSession.user_id == user.user_id)
        with svc.db.session() as s:
            return [session_row(r) for r in s.scalars(q)]

    return await to_thread.run_sync(rows)


# ---------------------------------------------------------- head to head (for the dashboard)
class TournamentRequest(BaseModel):
    """Two players (trained policy ids or classic negotiators), each pairing both ways."""

    model_config = ConfigDict(extra="forbid")
    policy_a: str = Field(pattern=POLICY_PATTERN)
    policy_b: str = Field(pattern=POLICY_PATTERN)
    num_episodes: int = Field(1000, ge=10, le=5000, description="episodes per pairing")
    max_rounds: int = Field(10, ge=1, le=100)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    deterministic: bool = Field(True, description="trained policies play greedily")


_tournament_lock = threading.Lock()


def _ci(x: np.ndarray) -> dict[str, float | int | None]:
    """Mean and 95 % normal-approximation interval (1.96 s / sqrt(n))."""
    n = int(x.size)
    if n == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    m = float(x.mean())
    h = float(1.96 * x.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return {"mean": m, "low": m - h, "high": m + h, "n": n}


def _wilson(k: int, n: int) -> dict[str, float | int | None]:
    if n == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    z, p = 1.96, k / n
    d = 1 + z * z / n
    c, h = (p + z * z / (2 * n)) / d, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return {"mean": p, "low": float(c - h), "high": float(c + h), "n": n}


def _pairing(svc: Services, body: TournamentRequest, sup_name: str,
             ret_name: str) -> dict[str, Any]:
    import jax

    from eqx_jax.env import AGENTS, BargainingEnv
    from eqx_jax.metrics import episode_metrics
    from eqx_jax.simulate import play_batch

    row: dict[str, Any] = {"supplier": sup_name, "retailer": ret_name}
    try:
        sup = svc.sims.resolve(sup_name, "supplier")
        ret = svc.sims.resolve(ret_name, "retailer")
        params, num_history = svc.engine.game_params(sup, ret, body.max_rounds)
    except PolicyError as e:
        return {**row, "skipped": str(e)}
    env = BargainingEnv(num_history)
    fs = svc.engine.policy_fn(sup, AGENTS[0], body.deterministic)
    fr = svc.engine.policy_fn(ret, AGENTS[1], body.deterministic)
    rec = jax.jit(lambda k: play_batch(k, params, fs, fr, body.num_episodes, env))(
        jax.random.key(body.seed))
    e = {k: np.asarray(v, np.float64) for k, v in rec.items()}
    deal = e["deal"] > 0.5
    per = {k: np.asarray(v, np.float64) for k, v in episode_metrics(
        deal, e["price"], e["round"], e["supplier_value"], e["retailer_value"],
        np.full(deal.shape, float(params.max_rounds))).items()}
    return {**row, "episodes": int(deal.size), "deal_rate": _wilson(int(deal.sum()), deal.size),
            "price": _ci(e["price"][deal]), "rounds": _ci(e["round"]),
            "supplier_reward": _ci(e["supplier_reward"]),
            "retailer_reward": _ci(e["retailer_reward"]),
            "nash_distance": _ci(per["nash_distance"][deal]),
            "pareto_score": _ci(per["pareto_score"][deal]),
            "supplier_share": _ci(per["supplier_share"][deal & (e["retailer_value"]
                                                               > e["supplier_value"])])}


@list_router.post("/tournament")
async def tournament(body: TournamentRequest, request: Request, user: User) -> dict[str, Any]:
    """Head to head: A as supplier against B as retailer, then B against A, ``num_episodes``
    each (``eqx_jax.simulate.play_batch`` on the pair's game, valuations drawn from its
    priors), with 95 % confidence intervals (deal rate: Wilson; means: normal). A pairing a
    trained policy cannot play (its roles) is ``skipped`` with the reason. One at a time per
    server (else 429)."""
    svc = services(request)
    for field, name in (("policy_a", body.policy_a), ("policy_b", body.policy_b)):
        try:  # an unknown name is a 422 on its field (the role is checked per pairing)
            await to_thread.run_sync(svc.sims.resolve, name, "supplier")
        except PolicyError as e:
            return field_error(field, str(e))
    pairs = [(body.policy_a, body.policy_b)]
    if body.policy_b != body.policy_a:
        pairs.append((body.policy_b, body.policy_a))
    if not _tournament_lock.acquire(blocking=False):
        raise HTTPException(429, "a comparison is already running; retry shortly",
                            headers={"Retry-After": "5"})
    try:
        t0 = time.perf_counter()
        rows = [await to_thread.run_sync(_pairing, svc, body, s, r) for s, r in pairs]
    finally:
        _tournament_lock.release()
    if all("skipped" in r for r in rows):
        return field_error("policy_b", "these players cannot face each other: "
                           + "; ".join(r["skipped"] for r in rows))
    return {"num_episodes": body.num_episodes, "max_rounds": body.max_rounds,
            "seed": body.seed, "deterministic": body.deterministic, "pairings": rows,
            "wall_s": round(time.perf_counter() - t0, 3)}


# ------------------------------------------------------------------------------ dashboard
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _mount_dashboard(app: FastAPI) -> None:
    """The web dashboard (docs/dashboard.md): ``/`` is its page, ``/static`` its files. No
    auth here: the page holds no data; it logs in through the API."""
    if not (STATIC_DIR / "index.html").is_file():
        return

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


# ------------------------------------------------------------------------------------ health
health_router = APIRouter(tags=["health"])


@health_router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Database, LLM (reachable, model present, phrasing stats), JAX backend and devices, loaded
    policies, sessions and jobs. ``status``: ok, or degraded when something is missing."""
    svc = services(request)

    def db_check() -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            with svc.db.session() as s:
                s.execute(text("SELECT 1"))
                sessions = dict(s.execute(select(SimSession.status, func.count())
                                          .group_by(SimSession.status)).all())
                jobs = dict(s.execute(select(Job.status, func.count())
                                      .group_by(Job.status)).all())
            return {"status": "connected", "url": svc.db.engine.url.render_as_string(True),
                    "latency_ms": round((time.perf_counter() - t0) * 1000, 2),
                    "sessions": sessions, "jobs": jobs}
        except Exception as e:  # noqa: BLE001
            return {"status": "error", "detail": f"{type(e).__name__}: {e}"[:300]}

    def jax_check() -> dict[str, Any]:
        import jax

        return {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
                "version": jax.__version__, **svc.engine.stats.summary()}

    db_info = await to_thread.run_sync(db_check)
    jax_info = await to_thread.run_sync(jax_check)
    try:
        llm = await asyncio.wait_for(svc.phraser.health(), 5.0)
    except Exception as e:  # noqa: BLE001
        llm = {"reachable": False, "detail": f"{type(e).__name__}: {e}"[:300]}
    llm = {**llm, "stats": svc.phraser.stats()}
    from serve.policies import list_policies

    policies = [{"agent_id": p.id, "agent_type": p.agent_type, "source": p.source,
                 "loaded": p.id in svc.engine._policies}
                for p in await to_thread.run_sync(list_policies, svc.db)]
    ok = db_info["status"] == "connected" and bool(llm.get("reachable")) and bool(
        llm.get("model_present", True))
    return {
        "status": "ok" if ok else "degraded",
        "database": db_info,
        "llm": llm,
        "jax": jax_info,
        "policies": policies,
        "default_policy": svc.default_policy,
        "live_sessions": len(svc.sims.live),
        "move_writer": svc.sims.writer.stats(),
        "jobs": svc.jobs.summary() if svc.jobs is not None else None,
        "uptime_s": round(time.time() - svc.started_at, 1),
        "mode": svc.settings.mode,
    }


# ------------------------------------------------------------------------------- the factory
def _ensure_admin(svc: Services) -> None:
    s = svc.settings
    if s.admin_user and s.admin_password:
        auth.create_user(svc.db, s.admin_user, s.admin_password, is_admin=True, exist_ok=True)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application. Raises :class:`serve.settings.SettingsError` for settings that must
    stop the server (e.g. production mode with the default secret)."""
    settings = settings or Settings()
    settings.check()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from serve.jobs import JobManager
        from serve.phrasing import make_phraser
        from serve.policies import register_default

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.db_url)
        await to_thread.run_sync(db.migrate)
        engine = Engine()
        phraser = make_phraser(settings.phrasing_settings())
        sims = SimulationManager(db, engine, phraser, max_running=settings.max_running_sessions,
                                 default_supplier=settings.default_supplier_policy,
                                 default_retailer=settings.default_retailer_policy)
        svc = Services(settings=settings, db=db, engine=engine, phraser=phraser, sims=sims,
                       jobs=None,
                       user_buckets=TokenBuckets(settings.rate_limit_per_minute,
                                                 settings.rate_limit_burst),
                       login_buckets=TokenBuckets(settings.login_attempts_per_minute,
                                                  max(1, int(settings.login_attempts_per_minute))),
                       started_at=time.time())
        sims.writer.start()
        await to_thread.run_sync(_ensure_admin, svc)
        n = await to_thread.run_sync(sims.mark_interrupted)
        if n:
            log.warning("%d session(s) from a previous run marked interrupted", n)
        svc.default_policy = await to_thread.run_sync(register_default, db,
                                                      settings.default_policy_dir)
        svc.jobs = JobManager(db, settings)
        await svc.jobs.start()
        await phraser.start()
        app.state.services = svc
        log.info("EquilibriumX server ready (database %s, LLM %s, default policy %s)",
                 db.engine.url.render_as_string(True), settings.llm_backend, svc.default_policy)
        try:
            yield
        finally:
            await sims.shutdown()
            await svc.jobs.shutdown()
            await phraser.aclose()
            engine.close()
            db.dispose()

    app = FastAPI(
        title="EquilibriumX live server",
        version="0.1.0",
        description="Trained eqx_jax agents negotiating live, each move phrased by an LLM. "
                    "Get a token from POST /api/v1/auth/login and click Authorize.",
        lifespan=lifespan,
    )
    app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                       allow_credentials=True, allow_methods=["*"], allow_headers=["*"],
                       expose_headers=["Retry-After"])

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's body, minus the echoed input (it may hold a password) and the ctx objects.
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")}
                  for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal server error"})

    from serve.exports import router as export_router
    from serve.jobs import router as jobs_router

    app.include_router(health_router)
    app.add_api_route(f"{API}/health", health, methods=["GET"], tags=["health"],
                      include_in_schema=False)
    app.include_router(auth_router)
    app.include_router(sim_router)
    app.add_api_websocket_route(f"{API}/simulation/{{session_id}}/stream", stream)
    app.include_router(jobs_router)
    app.include_router(export_router)
    app.include_router(list_router)
    _mount_dashboard(app)
    return app
