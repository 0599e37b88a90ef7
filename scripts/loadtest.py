"""Load test of a running EquilibriumX server: N concurrent simulations over WebSockets.

    python scripts/loadtest.py --url http://127.0.0.1:8000 --user alice --sessions 100

(password from --password, $EQX_LOADTEST_PASSWORD, or a prompt). Each session is one
``POST /api/v1/simulation/start`` followed by its WebSocket stream to the end; all N run at once.
Prints one JSON object:

* ``completed`` / ``failed``: sessions that ended with SIMULATION_COMPLETE / anything else;
* ``moves_streamed`` / ``moves_stored``: MOVE messages received, and the moves the database
  holds for those sessions (``GET .../status``); ``sessions_streamed_not_stored``: sessions whose
  two counts differ (0: none lost);
* ``per_move_latency_ms``: time between consecutive messages of a session as the client receives
  them (with the default per-move delay of 0 this is the server's whole cost of a move: the JAX
  step, the phrasing, the database write and the send), p50/p95/max over all moves;
* ``first_move_latency_ms``: from the start response to the session's first message;
* ``api_latency_ms``: ``POST /simulation/start`` and ``GET /simulation/{id}/status`` (one per
  session, after it ended) round trips;
* ``warmup``: one session played before the measured ones (its first move includes the JAX
  compilation when the server has not played this policy pair yet), not in the figures above.

The server's per-user rate limit must allow the requests (2 per session + 1 WebSocket):
start it with e.g. ``EQX_RATE_LIMIT_PER_MINUTE=100000 EQX_RATE_LIMIT_BURST=100000``.
Times are milliseconds unless named ``_s``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from typing import Any

import httpx
import websockets

API = "/api/v1"


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, q in 0..100; None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return round(s[k], 3)


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": pct(values, 50), "p95": pct(values, 95),
            "max": round(max(values), 3) if values else None}


async def one_session(client: httpx.AsyncClient, ws_base: str, token: str,
                      body: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Start one simulation and read its stream to the end; timings in ms."""
    out: dict[str, Any] = {"ok": False, "moves": [], "error": None}
    headers = {"Authorization": f"Bearer {token}"}
    try:
        t0 = time.perf_counter()
        r = await client.post(f"{API}/simulation/start", json=body, headers=headers)
        out["start_ms"] = (time.perf_counter() - t0) * 1000
        if r.status_code != 201:
            out["error"] = f"start: HTTP {r.status_code} {r.text[:200]}"
            return out
        started = r.json()
        t_prev = time.perf_counter()
        first = True
        async with asyncio.timeout(timeout):
            url = f"{ws_base}{started['websocket_url']}"
            async with websockets.connect(url, max_size=2**20) as ws:
                # The token in the first frame (never in the URL); "config" starts the session
                # at once instead of after the config window.
                await ws.send(json.dumps({"type": "config", "token": token}))
                async for raw in ws:
                    now = time.perf_counter()
                    msg = json.loads(raw)
                    out["streamed"] = out.get("streamed", 0) + (msg.get("type") == "MOVE")
                    if first:
                        out["first_move_ms"] = (now - t_prev) * 1000
                        first = False
                    elif msg.get("type") == "MOVE":
                        out["moves"].append((now - t_prev) * 1000)
                    t_prev = now
                    if msg.get("type") == "SIMULATION_COMPLETE":
                        out["ok"] = True
                        out["final"] = msg
                    elif msg.get("type", "MOVE") != "MOVE":
                        out["error"] = f"stream ended with {msg.get('type')}: {msg.get('error')}"
            out["close_code"] = ws.close_code
        t1 = time.perf_counter()
        try:
            r = await client.get(f"{API}/simulation/{started['session_id']}/status",
                                 headers=headers)
        except httpx.TransportError:
            # A pooled keep-alive connection the server had just closed: retry once (GET is
            # idempotent), and count it.
            out["retried"] = True
            t1 = time.perf_counter()
            r = await client.get(f"{API}/simulation/{started['session_id']}/status",
                                 headers=headers)
        out["status_ms"] = (time.perf_counter() - t1) * 1000
        if r.status_code == 200:
            out["stored"] = r.json().get("moves")
        if r.status_code != 200 or r.json().get("status") != "completed":
            out["ok"] = False
            out["error"] = out["error"] or f"status: HTTP {r.status_code} {r.text[:200]}"
    except Exception as e:  # noqa: BLE001 - count every failure, keep going
        out["ok"] = False
        out["error"] = f"{type(e).__name__}: {e}"[:300]
    return out


async def run(args: argparse.Namespace, password: str) -> dict[str, Any]:
    base = args.url.rstrip("/")
    ws_base = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    limits = httpx.Limits(max_connections=args.sessions + 10,
                          max_keepalive_connections=args.sessions + 10)
    async with httpx.AsyncClient(base_url=base, timeout=args.timeout, limits=limits) as client:
        r = await client.post(f"{API}/auth/login",
                              json={"username": args.user, "password": password})
        r.raise_for_status()
        token = r.json()["access_token"]
        body = {"supplier_valuation": args.supplier_valuation,
                "retailer_valuation": args.retailer_valuation, "max_rounds": args.max_rounds,
                "supplier_style": args.supplier_style, "retailer_style": args.retailer_style,
                "move_delay_s": args.delay}
        for side in ("supplier", "retailer"):
            if getattr(args, f"{side}_policy"):
                body[f"{side}_policy"] = getattr(args, f"{side}_policy")
        warm = None
        if args.warmup:
            t0 = time.perf_counter()
            w = await one_session(client, ws_base, token, body, args.timeout)
            warm = {"ok": w["ok"], "wall_s": round(time.perf_counter() - t0, 3),
                    "first_move_ms": round(w.get("first_move_ms", 0.0), 3),
                    "error": w["error"]}
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one_session(client, ws_base, token, body, args.timeout)
                                         for _ in range(args.sessions)))
        wall = time.perf_counter() - t0
        # With the token: the details (the server's JAX step times, the phrasing latency).
        health = (await client.get("/health", headers={"Authorization": f"Bearer {token}"})
                  ).json().get("details") or {}
    moves = [m for r in results for m in r["moves"]]
    n_moves = sum(len(r["moves"]) + (1 if "first_move_ms" in r else 0) for r in results)
    errors = [r["error"] for r in results if r["error"]]
    return {
        "url": base,
        "sessions": args.sessions,
        "completed": sum(r["ok"] for r in results),
        "failed": sum(not r["ok"] for r in results),
        "wall_s": round(wall, 3),
        "moves": n_moves,
        "moves_per_s": round(n_moves / wall, 1) if wall else None,
        "per_move_latency_ms": summary(moves),
        "first_move_latency_ms": summary([r["first_move_ms"] for r in results
                                          if "first_move_ms" in r]),
        "api_latency_ms": {
            "start": summary([r["start_ms"] for r in results if "start_ms" in r]),
            "status": summary([r["status_ms"] for r in results if "status_ms" in r]),
        },
        "deals": sum(bool(r.get("final", {}).get("deal_reached")) for r in results),
        # None lost: every session's streamed moves are exactly its stored ones.
        "moves_streamed": sum(r.get("streamed", 0) for r in results),
        "moves_stored": sum(r.get("stored") or 0 for r in results),
        "sessions_streamed_not_stored": sum(
            1 for r in results if r.get("stored") is not None
            and r.get("streamed", 0) != r["stored"]),
        "status_retries": sum(bool(r.get("retried")) for r in results),
        "warmup": warm,
        "settings": {"max_rounds": args.max_rounds, "move_delay_s": args.delay,
                     "supplier_style": args.supplier_style,
                     "retailer_style": args.retailer_style},
        "server": {"llm_backend": health.get("llm", {}).get("backend"),
                   "jax": {k: health.get("jax", {}).get(k)
                           for k in ("backend", "devices", "compile_s", "move_compute_ms_p50",
                                     "move_compute_ms_p95", "batch_compute_ms_p50",
                                     "batch_size_mean", "batch_size_max")},
                   "phrasing_latency_ms_p50": health.get("llm", {}).get("stats", {})
                   .get("latency_ms_p50")},
        "errors": errors[:5],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="N concurrent simulations against a running server")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    p.add_argument("--user", default=os.environ.get("EQX_LOADTEST_USER", "admin"))
    p.add_argument("--password", default=None,
                   help="default: $EQX_LOADTEST_PASSWORD, else a prompt")
    p.add_argument("--sessions", type=int, default=100, help="concurrent sessions (default 100)")
    p.add_argument("--max-rounds", type=int, default=10)
    p.add_argument("--delay", type=float, default=0.0, help="per-move delay, seconds")
    p.add_argument("--supplier-valuation", type=float, default=5000.0)
    p.add_argument("--retailer-valuation", type=float, default=8000.0)
    p.add_argument("--supplier-style", default="aggressive")
    p.add_argument("--retailer-style", default="cooperative")
    p.add_argument("--supplier-policy", default=None)
    p.add_argument("--retailer-policy", default=None)
    p.add_argument("--warmup", type=int, default=1, choices=[0, 1],
                   help="play one session first (default 1)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per session")
    args = p.parse_args(argv)
    if args.sessions < 1:
        p.error("--sessions must be >= 1")
    password = args.password or os.environ.get("EQX_LOADTEST_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password for {args.user}: ")
    result = asyncio.run(run(args, password))
    print(json.dumps(result, indent=2))
    return 0 if result["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
