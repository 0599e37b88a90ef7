"""The probes behind ``GET /health`` (:mod:`serve.routers.health`), cached.

The probes (database queries, the LLM probe, the Redis ping, the policy list) run at most once
per ``health_cache_s`` seconds, whoever asks and however many ask at once (single flight): a
flood of ``/health`` costs the database and the LLM one probe per interval.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from sqlalchemy import func, select, text

from serve.db import Job, SimSession
from serve.policies import list_policies

if TYPE_CHECKING:
    from serve.deps import Services


@dataclass
class Probe:
    """One round of probes, kept for ``health_cache_s`` seconds."""

    at: float
    database: dict[str, Any]
    llm: dict[str, Any]
    redis: str
    policies: list[dict[str, Any]]


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
    except Exception as e:  # noqa: BLE001 - any failure means "error"; the detail says which
        return {"status": "error", "detail": f"{type(e).__name__}: {e}"[:300]}


def _redis(svc: Services) -> str:
    uri = svc.settings.limits_storage
    if not uri.startswith(("redis://", "rediss://", "redis+")):
        return "not configured"
    try:
        return "connected" if svc.user_limits.limiter.storage.check() else "unreachable"
    except Exception:  # noqa: BLE001 - a storage that raises is unreachable
        return "unreachable"


def _policies(svc: Services) -> list[dict[str, Any]]:
    try:
        rows = list_policies(svc.db)
    except Exception:  # noqa: BLE001 - the database probe reports why; no list meanwhile
        return []
    return [{"agent_id": p.id, "agent_type": p.agent_type, "source": p.source,
             "loaded": svc.engine.is_loaded(p.id)} for p in rows]


async def _llm(svc: Services) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(svc.phraser.health(), 5.0)
    except Exception as e:  # noqa: BLE001 - a probe that fails is "unreachable"
        return {"reachable": False, "detail": f"{type(e).__name__}: {e}"[:300]}


class HealthCache:
    """Single-flight, time-bounded probes: concurrent callers share one probe round."""

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self.probe: Probe | None = None
        self.probes = 0
        self._lock = asyncio.Lock()

    async def get(self, svc: Services) -> Probe:
        async with self._lock:
            if self.probe is None or time.monotonic() - self.probe.at >= self.ttl_s:
                self.probes += 1
                self.probe = Probe(
                    at=time.monotonic(),
                    database=await to_thread.run_sync(_database, svc),
                    llm=await _llm(svc),
                    redis=(await svc.bus.ping() if svc.bus.scale_out
                           else await to_thread.run_sync(_redis, svc)),
                    policies=await to_thread.run_sync(_policies, svc))
            return self.probe


def _cache(svc: Services) -> HealthCache:
    cache = getattr(svc, "health_cache", None)
    if cache is None:
        cache = svc.health_cache = HealthCache(svc.settings.health_cache_s)
    return cache
