"""``GET /health`` (also ``/api/v1/health``, outside the schema): no auth, no rate limit."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jax
from anyio import to_thread
from fastapi import APIRouter
from sqlalchemy import func, select, text

from serve.db import Job, SimSession
from serve.deps import API, Services, ServicesDep
from serve.policies import list_policies

router = APIRouter(tags=["health"])


def _database(svc: Services) -> dict[str, Any]:
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


def _jax(svc: Services) -> dict[str, Any]:
    return {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "version": jax.__version__, **svc.engine.stats.summary()}


async def _llm(svc: Services) -> dict[str, Any]:
    try:
        llm = await asyncio.wait_for(svc.phraser.health(), 5.0)
    except Exception as e:  # noqa: BLE001
        llm = {"reachable": False, "detail": f"{type(e).__name__}: {e}"[:300]}
    return {**llm, "stats": svc.phraser.stats()}


@router.get("/health")
async def health(svc: ServicesDep) -> dict[str, Any]:
    """Database, LLM (reachable, model present, phrasing stats), JAX backend and devices, loaded
    policies, sessions and jobs. ``status``: ok, or degraded when something is missing."""
    db_info = await to_thread.run_sync(_database, svc)
    jax_info = await to_thread.run_sync(_jax, svc)
    llm = await _llm(svc)
    policies = [{"agent_id": p.id, "agent_type": p.agent_type, "source": p.source,
                 "loaded": svc.engine.is_loaded(p.id)}
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
        "jobs": svc.jobs.summary(),
        "uptime_s": round(time.time() - svc.started_at, 1),
        "mode": svc.settings.mode,
    }


router.add_api_route(f"{API}/health", health, methods=["GET"], include_in_schema=False)
