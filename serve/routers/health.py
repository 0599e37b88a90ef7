"""``GET /health`` (also ``/api/v1/health``, outside the schema): the founding design's health
answer, safe to show to anyone.

Without a token: only the founding design's top-level fields, each a short state word::

    {"status": "healthy" | "degraded",
     "database": "connected" | "error",
     "redis": "not configured" | "connected" | "unreachable",
     "ollama": "ready" | "not configured" | "unreachable" | "model missing",
     "ray": "running" | "ready"}

``ollama`` is the phrasing LLM backend's state (whatever the backend: Ollama, an OpenAI-compatible
server or the embedded llama.cpp; ``not configured`` with template phrasing); ``ray`` is the
training backend's (``running`` while a training job runs, else ``ready``); ``redis`` is the
rate-limit storage (``not configured`` while it is in memory). With a valid bearer token the
answer adds ``details``: database latency and counts, LLM health and phrasing stats, JAX backend
and compile times, the policies, live sessions, jobs, uptime; URLs and file paths only for an
admin (passwords in URLs never).

The probes run at most once per ``health_cache_s`` seconds (:mod:`serve.health`).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import jax
from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from serve import auth
from serve.deps import API, Services, ServicesDep, principal_from_token
from serve.health import Probe

router = APIRouter(tags=["health"])

_optional_bearer = HTTPBearer(auto_error=False, description="optional: details with a token")


class HealthResponse(BaseModel):
    """The founding design's health answer; ``details`` only for a caller with a token."""

    status: Literal["healthy", "degraded"]
    database: Literal["connected", "error"]
    redis: Literal["not configured", "connected", "unreachable"]
    ollama: Literal["ready", "not configured", "unreachable", "model missing"] = Field(
        description="the phrasing LLM backend's state")
    ray: Literal["running", "ready"] = Field(description="the training backend's state")
    details: dict[str, Any] | None = Field(None, description="only with a bearer token")


def llm_state(svc: Services, llm: dict[str, Any]) -> str:
    if svc.phraser.backend is None:
        return "not configured"
    if not llm.get("reachable"):
        return "unreachable"
    return "ready" if llm.get("model_present", True) else "model missing"


def _details(svc: Services, probe: Probe, admin: bool) -> dict[str, Any]:
    database = dict(probe.database)
    llm = {**probe.llm, "stats": svc.phraser.stats()}
    if not admin:  # where things live (URLs, paths, ports) is for admins only
        database.pop("url", None)
        llm = {k: v for k, v in llm.items()
               if k in ("backend", "reachable", "model_present", "stats")}
    return {
        "database": database, "llm": llm,
        "jax": {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
                "version": jax.__version__, **svc.engine.stats.summary()},
        "policies": probe.policies, "default_policy": svc.default_policy,
        "live_sessions": len(svc.sims.live), "move_writer": svc.sims.writer.stats(),
        "jobs": svc.jobs.summary(), "uptime_s": round(time.time() - svc.started_at, 1),
        "mode": svc.settings.mode, "health_probes": svc.health.probes,
        "health_cache_s": svc.settings.health_cache_s,
        "worker": {"id": svc.bus.worker_id, "scale_out": svc.bus.scale_out,
                   "sessions_reaped": svc.reaper.reaped if svc.reaper else 0},
    }


async def _caller(svc: Services, creds: HTTPAuthorizationCredentials | None,
                  ) -> auth.Principal | None:
    if creds is None:
        return None
    try:
        return await principal_from_token(svc, creds.credentials)
    except auth.AuthError:
        return None  # a bad token gets the public answer, as no token does


@router.get("/health", response_model=HealthResponse, response_model_exclude_none=True)
async def health(
    svc: ServicesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)],
) -> HealthResponse:
    """State words for the database, Redis, the LLM (``ollama``) and training (``ray``);
    ``status`` is ``healthy`` when the database is connected and the LLM (if any) is ready.
    With a bearer token: ``details``."""
    probe = await svc.health.get(svc)
    database = "connected" if probe.database["status"] == "connected" else "error"
    ollama = llm_state(svc, probe.llm)
    redis = probe.redis
    healthy = (database == "connected" and ollama in ("ready", "not configured")
               and redis != "unreachable")
    principal = await _caller(svc, creds)
    return HealthResponse(
        status="healthy" if healthy else "degraded", database=database, redis=redis,
        ollama=ollama, ray="running" if svc.jobs.summary()["running"] else "ready",
        details=None if principal is None else _details(svc, probe, principal.is_admin))


router.add_api_route(f"{API}/health", health, methods=["GET"], include_in_schema=False,
                     response_model=HealthResponse, response_model_exclude_none=True)
