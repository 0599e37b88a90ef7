"""Scripted attacks against a live ``eqx serve``: what a hostile client can do, one line each.

    python scripts/attack_check.py --url http://127.0.0.1:8000 --user alice --password ...

Each check prints ``SAFE`` or ``EXPOSED`` and what it saw; ``--json`` prints them as JSON. The
checks are the exposure measured against the server (docs/server.md, "Exposure"): a token signed
with the old constant development secret, an unauthenticated 16 MiB body, 50 tokenless
WebSockets held open, a ping flood, one user starting 60 sessions, a training job asking for a
2^20-wide network, login guesses with a rotating ``X-Forwarded-For``, what ``/health`` shows
without a token, the security headers, a denormal valuation and an unbounded seed.

It needs a user that may be used up (its sessions and tokens): not an admin of a real server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import socket
import time
from typing import Any
from urllib.parse import urlparse

import httpx

#: The development secret the server used to ship in its source (any mode but production).
OLD_CONSTANT_SECRET = "eqx-dev-secret-change-me-0123456789abcdef"
API = "/api/v1"


def check(name: str, safe: bool, seen: str) -> dict[str, Any]:
    return {"check": name, "safe": bool(safe), "seen": seen}


def forged_admin_token(c: httpx.Client) -> dict[str, Any]:
    import jwt

    now = dt.datetime.now(dt.UTC)
    tok = jwt.encode({"sub": "admin", "uid": 1, "adm": True, "iat": now,
                      "exp": now + dt.timedelta(hours=1), "jti": "x"},
                     OLD_CONSTANT_SECRET, algorithm="HS256")
    r = c.get(f"{API}/simulations", headers={"Authorization": f"Bearer {tok}"})
    return check("token signed with the old source constant", r.status_code == 401,
                 f"GET /simulations -> {r.status_code}")


def big_unauthenticated_body(url: str) -> dict[str, Any]:
    u = urlparse(url)
    t0 = time.perf_counter()
    with socket.create_connection((u.hostname, u.port or 80), timeout=30) as s:
        s.sendall(b"POST /api/v1/simulation/start HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: 16777216\r\n\r\n")
        s.settimeout(2.0)
        try:
            first = s.recv(200).decode(errors="replace")
        except TimeoutError:
            first = "(no answer: waiting for the body)"
    status = first.split("\r\n", 1)[0]
    return check("16 MiB body without a token", " 413" in status,
                 f"{status} after {time.perf_counter() - t0:.2f} s, before sending the body")


async def _hold_sockets(ws_url: str, n: int) -> tuple[int, list[int | None]]:
    import websockets

    socks, codes = [], []
    for _ in range(n):
        try:
            socks.append(await websockets.connect(ws_url, open_timeout=5))
        except Exception:  # noqa: BLE001 - a refused handshake is what we hope for
            codes.append(None)
    await asyncio.sleep(1.0)
    alive = 0
    for ws in socks:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.recv(), 0.05)
        if ws.close_code is None:
            alive += 1
        codes.append(ws.close_code)
        await ws.close()
    return alive, codes


def tokenless_sockets(url: str, n: int = 50) -> dict[str, Any]:
    ws_url = url.replace("http", "ws", 1) + f"{API}/simulation/x/stream"
    alive, codes = asyncio.run(_hold_sockets(ws_url, n))
    closed = {c: codes.count(c) for c in set(codes) if c is not None}
    return check(f"{n} tokenless WebSockets held open", alive <= 10,
                 f"{alive} still open after 1 s; closed with {closed}")


async def _ping_flood(ws_url: str, token: str, n: int) -> tuple[int, int | None]:
    import websockets

    answered = 0
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        for _ in range(n):
            try:
                await ws.send(json.dumps({"type": "ping"}))
            except Exception:  # noqa: BLE001 - closed by the server
                break
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                async for raw in ws:
                    answered += json.loads(raw).get("type") == "pong"
        return answered, ws.close_code


def ping_flood(c: httpx.Client, url: str, token: str, n: int = 500) -> dict[str, Any]:
    r = c.post(f"{API}/simulation/start", headers={"Authorization": f"Bearer {token}"},
               json={"supplier_valuation": 5000, "retailer_valuation": 8000, "max_rounds": 100,
                     "move_delay_s": 5})
    if r.status_code != 201:
        return check("ping flood", True, f"could not start a session: {r.status_code}")
    ws_url = url.replace("http", "ws", 1) + f"{API}/simulation/{r.json()['session_id']}/stream"
    answered, code = asyncio.run(_ping_flood(ws_url, token, n))
    return check(f"{n} pings on one socket", answered < n,
                 f"{answered} pongs, close code {code}")


def many_sessions(c: httpx.Client, token: str, n: int = 60) -> dict[str, Any]:
    codes = []
    for _ in range(n):
        r = c.post(f"{API}/simulation/start", headers={"Authorization": f"Bearer {token}"},
                   json={"supplier_valuation": 5000, "retailer_valuation": 8000,
                         "max_rounds": 100, "move_delay_s": 5})
        codes.append(r.status_code)
    ok = codes.count(201)
    return check(f"one user starts {n} long sessions", ok < n,
                 f"{ok} started, then {sorted(set(codes) - {201})}")


def huge_job(c: httpx.Client, token: str) -> dict[str, Any]:
    r = c.post(f"{API}/agent/train", headers={"Authorization": f"Bearer {token}"},
               json={"agent_type": "both", "algorithm": "ppo",
                     "training_config": {"hidden": [1 << 20], "num_envs": 1 << 20}})
    if r.status_code == 202:  # do not leave it running
        c.delete(f"{API}/agent/jobs/{r.json()['job_id']}",
                 headers={"Authorization": f"Bearer {token}"})
    return check("training job with a 2^20-wide network", r.status_code == 422,
                 f"POST /agent/train -> {r.status_code}")


def rotating_forwarded_for(c: httpx.Client, user: str, n: int = 40) -> dict[str, Any]:
    codes = []
    for i in range(n):
        r = c.post(f"{API}/auth/login", json={"username": user, "password": f"guess-{i}"},
                   headers={"X-Forwarded-For": f"10.0.{i // 250}.{i % 250}"})
        codes.append(r.status_code)
    guesses = codes.count(401)
    return check(f"{n} password guesses, X-Forwarded-For rotated", guesses < n,
                 f"{guesses} checked, {codes.count(429)} refused with 429")


def public_health(c: httpx.Client) -> dict[str, Any]:
    r = c.get("/health")
    body = r.text
    leaks = [w for w in ("sqlite", "postgresql", "://", "model_path", "port", "policies")
             if w in body]
    return check("/health without a token", not leaks, f"{len(body)} bytes; shows {leaks}")


def headers(c: httpx.Client) -> dict[str, Any]:
    h = c.get("/").headers
    want = ("x-content-type-options", "content-security-policy", "referrer-policy")
    missing = [k for k in want if k not in h]
    creds = c.options(f"{API}/meta", headers={"Origin": "http://localhost:3000",
                                               "Access-Control-Request-Method": "GET"}
                      ).headers.get("access-control-allow-credentials")
    return check("security headers, CORS credentials", not missing and creds is None,
                 f"missing {missing}; allow-credentials {creds}")


def bad_numbers(c: httpx.Client, token: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    r1 = c.post(f"{API}/simulation/start", headers=auth,
                json={"supplier_valuation": 5e-324, "retailer_valuation": 8000})
    r2 = c.post(f"{API}/agent/train", headers=auth, json={"training_config": {
        "seed": 10**30, "total_timesteps": 1000}})
    if r2.status_code == 202:
        c.delete(f"{API}/agent/jobs/{r2.json()['job_id']}", headers=auth)
    return check("valuation 5e-324, seed 10^30", r1.status_code == 422 and r2.status_code == 422,
                 f"valuation -> {r1.status_code}, seed -> {r2.status_code}")


def run_all(url: str, user: str, password: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=url, timeout=60) as c:
        r = c.post(f"{API}/auth/login", json={"username": user, "password": password})
        r.raise_for_status()
        token = r.json()["access_token"]
        return [forged_admin_token(c), big_unauthenticated_body(url), tokenless_sockets(url),
                ping_flood(c, url, token), huge_job(c, token), bad_numbers(c, token),
                public_health(c), headers(c), many_sessions(c, token),
                rotating_forwarded_for(c, user)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    results = run_all(a.url.rstrip("/"), a.user, a.password)
    if a.json:
        print(json.dumps(results, indent=1))
    else:
        for res in results:
            print(f"{'SAFE   ' if res['safe'] else 'EXPOSED'}  {res['check']}: {res['seen']}")
    return 0 if all(res["safe"] for res in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
