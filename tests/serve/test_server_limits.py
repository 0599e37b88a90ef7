"""Per-user rate limits (429 + Retry-After, WebSocket 1013) and per-IP login limits, on a server
of its own with small limits."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from server_helpers import SIM, start_server
from websockets.exceptions import ConnectionClosed

API = "/api/v1"


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("eqx-limits") / "data",
                       EQX_RATE_LIMIT_PER_MINUTE="6", EQX_RATE_LIMIT_BURST="5",
                       EQX_LOGIN_ATTEMPTS_PER_MINUTE="4")
    srv.add_user("alice", "alice-password")
    srv.add_user("bob", "bob-password")
    yield srv
    srv.stop()


def test_rate_limit_per_user_then_login_limit_per_ip(limited):
    with httpx.Client(base_url=limited.url, timeout=60) as c:
        # Login attempts 1 and 2 (of 4 per minute per IP).
        limited.token("alice", "alice-password")
        hb = {"Authorization": f"Bearer {limited.token('bob', 'bob-password')}"}
        ha = {"Authorization": f"Bearer {limited.tokens['alice']}"}
        # Burst of 5 requests, then 429 with Retry-After (refill: one every 10 s).
        codes = [c.get(f"{API}/agent/policies", headers=ha).status_code for _ in range(5)]
        assert codes == [200] * 5
        r = c.get(f"{API}/agent/policies", headers=ha)
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 10
        assert "rate limit" in r.json()["detail"]
        r = c.post(f"{API}/simulation/start", json=SIM, headers=ha)
        assert r.status_code == 429
        # Buckets are per user: bob is not limited.
        assert c.get(f"{API}/agent/policies", headers=hb).status_code == 200
        # /health is not limited.
        assert all(c.get("/health").status_code == 200 for _ in range(8))

        # A rate-limited user's WebSocket is closed with 1013 (try again later).
        async def ws_code():
            url = (f"{limited.ws_url}{API}/simulation/whatever/stream"
                   f"?token={limited.tokens['alice']}")
            async with websockets.connect(url) as ws:
                try:
                    while True:
                        await ws.recv()
                except ConnectionClosed:
                    return ws.close_code

        assert asyncio.run(ws_code()) == 1013

        # Login: attempts 3 and 4 are answered (401), the 5th is refused with 429.
        for _ in range(2):
            r = c.post(f"{API}/auth/login", json={"username": "alice", "password": "bad-pass"})
            assert r.status_code == 401
        r = c.post(f"{API}/auth/login", json={"username": "alice", "password": "alice-password"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
