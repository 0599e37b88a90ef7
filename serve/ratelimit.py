"""Per-key request limits (per-user requests, per-IP logins) on the ``limits`` library.

A limit is set, like a token bucket, by a sustained rate (``rate_per_minute``) and a burst
(``burst`` requests at once). It is enforced as moving windows (``MovingWindowRateLimiter``):

* the rate window: at most ``max(burst, ceil(rate))`` requests in the time that many requests
  take at ``rate`` (one minute when the rate is at least the burst), so the long-run rate is
  ``rate`` and a full burst fits;
* the burst window, when the burst is below that: at most ``burst`` requests per refill interval
  (``60 / rate`` seconds, at least 1 s), so a client that spent its burst may retry after one
  interval, as with a bucket.

A refused request gets the seconds until every window that refused it has room again
(``Retry-After``). The storage is a ``limits`` storage URI: ``memory://`` (this process; the
server runs one worker, see docs/server.md) or a shared one such as ``redis://host:6379`` (the
default when ``REDIS_URL`` is set). While a shared storage is unreachable, each worker counts in
its own memory until it answers again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

if TYPE_CHECKING:
    from serve.settings import Settings

log = logging.getLogger("eqx.serve.ratelimit")


class RateLimiter:
    """Moving-window limits keyed by any value (user id, client IP), one namespace each."""

    def __init__(self, rate_per_minute: float, burst: int, *, namespace: str = "eqx",
                 storage_uri: str = "memory://"):
        sustained = max(burst, math.ceil(rate_per_minute))
        self.items = [RateLimitItemPerSecond(
            sustained, max(1, round(60.0 * sustained / rate_per_minute)), namespace=namespace)]
        if burst < sustained:
            self.items.append(RateLimitItemPerSecond(
                burst, max(1, round(60.0 / rate_per_minute)), namespace=namespace))
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.shared = not storage_uri.startswith("memory://")
        #: While a shared storage is unreachable the limits are counted in this process
        #: (per worker), rather than refusing every request or letting every one through.
        self.fallback = (MovingWindowRateLimiter(storage_from_string("memory://"))
                         if self.shared else None)
        self.fallbacks = 0
        # Check-then-hit over several windows is one step for this process.
        self._lock = threading.Lock()

    def take(self, key: object) -> float:
        """Count one request. Returns 0.0 if allowed, else the seconds to wait (> 0)."""
        try:
            return self._take(self.limiter, str(key))
        except Exception as e:  # noqa: BLE001 - limits raises the storage's own errors
            if self.fallback is None:
                raise
            if self.fallbacks % 1000 == 0:
                log.warning("rate-limit storage unreachable (%s): counting in this process",
                            type(e).__name__)
            self.fallbacks += 1
            return self._take(self.fallback, str(key))

    def _take(self, limiter: MovingWindowRateLimiter, ident: str) -> float:
        with self._lock:
            full = [it for it in self.items if not limiter.test(it, ident)]
            if not full:
                full = [it for it in self.items if not limiter.hit(it, ident)]
                if not full:
                    return 0.0
            now = time.time()
            resets = [limiter.get_window_stats(it, ident).reset_time for it in full]
        return max(1e-3, max(resets) - now)


def retry_after_header(wait_s: float) -> str:
    """Retry-After is whole seconds (RFC 9110); round up so a retry then succeeds."""
    return str(max(1, math.ceil(wait_s)))


class WebSocketGuards:
    """The app's WebSocket limits that span sockets: unauthenticated sockets per client IP
    (counted in Redis across the workers when the server has one, else in this process), and
    the per-socket frame rate."""

    def __init__(self, settings: Settings, redis: Any = None):
        self.max_unauthenticated = settings.ws_max_unauthenticated_per_ip
        self.unauthenticated: Counter[str] = Counter()
        self.redis = redis
        # A worker killed while sockets wait leaves its counts behind: they expire after the
        # longest possible wait plus a margin.
        self.count_ttl_s = max(1, math.ceil(settings.ws_auth_timeout_s)) + 60
        # Keys are per socket, so process memory is the right storage whatever the server's.
        self.frames = RateLimiter(settings.ws_frames_per_minute, settings.ws_frames_burst,
                                  namespace="ws-frames")

    async def enter(self, ip: str) -> bool:
        """Count one unauthenticated socket of ``ip``; False (not counted) over the cap."""
        if self.redis is not None:
            key = f"eqx:ws-unauth:{ip}"
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    n, _ = await pipe.incr(key).expire(key, self.count_ttl_s).execute()
                if n > self.max_unauthenticated:
                    await self.redis.decr(key)
                    return False
                return True
            except Exception as e:  # noqa: BLE001 - Redis down: count in this process
                log.warning("unauthenticated-socket count unreachable (%s)", type(e).__name__)
        if self.unauthenticated[ip] >= self.max_unauthenticated:
            return False
        self.unauthenticated[ip] += 1
        return True

    async def leave(self, ip: str) -> None:
        """Uncount one socket of ``ip`` (a local count first: one made while Redis was down)."""
        if self.unauthenticated.get(ip, 0) > 0:
            self.unauthenticated[ip] -= 1
            if self.unauthenticated[ip] <= 0:
                del self.unauthenticated[ip]
            return
        if self.redis is not None:
            try:
                await self.redis.decr(f"eqx:ws-unauth:{ip}")
            except Exception:  # noqa: BLE001 - the count expires by itself
                log.debug("could not uncount a socket of %s", ip)
