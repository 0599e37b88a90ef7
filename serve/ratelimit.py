"""In-memory token buckets: per-user request limits and per-IP login limits.

One process, one bucket table (the server runs one worker; see docs/server.md). A bucket holds
up to ``burst`` tokens and refills at ``rate_per_minute / 60`` tokens per second; a request takes
one token or is refused with the seconds until the next token (``Retry-After``).
"""

from __future__ import annotations

import math
import threading
import time


class TokenBuckets:
    """Token buckets keyed by any hashable (user id, client IP)."""

    def __init__(self, rate_per_minute: float, burst: int, max_keys: int = 100_000):
        self.rate = rate_per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[object, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def take(self, key: object, now: float | None = None) -> float:
        """Take one token. Returns 0.0 if allowed, else the seconds to wait (> 0)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                allowed = 0.0
            else:
                self._buckets[key] = (tokens, now)
                allowed = (1.0 - tokens) / self.rate
            if len(self._buckets) > self.max_keys:
                # Full buckets carry no state worth keeping: drop them to bound memory.
                full = [k for k, (t, ts) in self._buckets.items()
                        if t + (now - ts) * self.rate >= self.burst]
                for k in full:
                    del self._buckets[k]
        return allowed


def retry_after_header(wait_s: float) -> str:
    """Retry-After is whole seconds (RFC 9110); round up so a retry then succeeds."""
    return str(max(1, math.ceil(wait_s)))
