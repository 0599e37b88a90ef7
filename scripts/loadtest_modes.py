"""Side by side: ``scripts/loadtest.py`` against the embedded server and against 2 workers on
Redis + PostgreSQL, interleaved (embedded, scale-out, embedded, scale-out), on throwaway
services started as the tests start them (``tests/serve/services.py``: Debian's redis-server
and PostgreSQL must be installed; ``make test`` installs both).

    python scripts/loadtest_modes.py --sessions 100    # JSON to loadtest_modes_100x10.json

The limits that a load from one client address hits are raised for the measurement (per-user
rate and running sessions, unauthenticated WebSockets per address).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMITS = {"EQX_MAX_RUNNING_SESSIONS_PER_USER": "100000",
          "EQX_WS_MAX_UNAUTHENTICATED_PER_IP": "10000"}
KEYS = ("completed", "failed", "moves_streamed", "moves_stored",
        "sessions_streamed_not_stored", "moves_per_s", "per_move_latency_ms",
        "api_latency_ms", "wall_s")


def measure(url: str, sessions: int, max_rounds: int) -> dict:
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "loadtest.py"), "--url", url,
                        "--user", "alice", "--password", "alice-password", "--sessions",
                        str(sessions), "--max-rounds", str(max_rounds)],
                       capture_output=True, text=True, timeout=1200)
    return json.loads(p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-rounds", type=int, default=10,
                    help="rounds per session (longer sessions: steady-state moves/s)")
    a = ap.parse_args()
    sys.path.insert(0, str(REPO / "tests" / "serve"))
    from server_helpers import start_server, with_users
    from services import start_postgres, start_redis

    root = Path(tempfile.mkdtemp())
    redis_server, pg = start_redis(root / "redis"), start_postgres(root / "pg")
    servers = {}
    try:
        servers["embedded"] = with_users(start_server(root / "emb" / "data", **LIMITS),
                                         ("alice",))
        servers["2 workers, Redis + PostgreSQL"] = with_users(start_server(
            root / "so" / "data", workers=2, REDIS_URL=redis_server.url,
            DATABASE_URL=pg.url, **LIMITS), ("alice",))
        out: dict[str, list] = {}
        for rep in range(a.repeats):
            for name, srv in servers.items():
                res = measure(srv.url, a.sessions, a.max_rounds)
                out.setdefault(name, []).append(res)
                print(name, rep, json.dumps({k: res[k] for k in KEYS}), flush=True)
        name = f"loadtest_modes_{a.sessions}x{a.max_rounds}.json"
        Path(name).write_text(json.dumps(out, indent=1))
    finally:
        for srv in servers.values():
            srv.stop()
        pg.stop("immediate")
        redis_server.stop()


if __name__ == "__main__":
    main()
