"""The API against a real server: login, start, stream, status, replay, validation, auth
failures, WebSocket limits, CORS, health, the metadata (GET /meta), exports."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time

import httpx
import pytest
import websockets
from server_helpers import SIM, stream_all
from websockets.exceptions import ConnectionClosed

from eqx_jax.equilibrium import solve_spe

# Also run on 2 workers sharing Redis and PostgreSQL (make test's second run).
pytestmark = pytest.mark.shared_state

API = "/api/v1"


def start(client, server, user="alice", **overrides):
    r = client.post(f"{API}/simulation/start", json={**SIM, **overrides},
                    headers=server.headers(user))
    assert r.status_code == 201, r.text
    return r.json()


# ------------------------------------------------------------------------------------- auth
def test_login_returns_a_bearer_token(client):
    r = client.post(f"{API}/auth/login", json={"username": "alice", "password": "alice-password"})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["access_token"].count(".") == 2  # a JWT


@pytest.mark.parametrize("creds", [("alice", "wrong-password"), ("nobody", "whatever-pw")])
def test_login_rejects_bad_credentials(client, creds):
    r = client.post(f"{API}/auth/login", json={"username": creds[0], "password": creds[1]})
    assert r.status_code == 401
    assert r.json()["detail"] == "incorrect username or password"


@pytest.mark.parametrize("path,method", [
    ("/simulation/start", "post"), ("/simulation/x/status", "get"), ("/simulation/x", "get"),
    ("/agent/train", "post"), ("/agent/jobs/x", "get"), ("/agent/default/policy", "get"),
    ("/agent/default/download", "get"), ("/metrics/export", "post"), ("/agent/policies", "get"),
])
def test_every_endpoint_needs_a_token(client, path, method):
    r = client.request(method.upper(), API + path, json={})
    assert r.status_code == 401, (path, r.text)
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.request(method.upper(), API + path, json={},
                       headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401 and r.json()["detail"] == "invalid token"


def test_expired_and_foreign_tokens_are_rejected(client, server):
    import datetime as dt

    import jwt

    from serve.auth import SECRET_FILE

    secret = (server.data_dir / SECRET_FILE).read_text().strip()  # the server's generated key
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": "alice", "uid": 2, "adm": False, "jti": "j", "gen": 0,
              "iat": now - dt.timedelta(hours=2)}
    expired = jwt.encode({**claims, "exp": now - dt.timedelta(seconds=5)}, secret,
                         algorithm="HS256")
    r = client.get(f"{API}/agent/policies", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and r.json()["detail"] == "token expired"
    forged = jwt.encode({**claims, "exp": now + dt.timedelta(hours=1)},
                        "another-secret-another-secret-another", algorithm="HS256")
    r = client.get(f"{API}/agent/policies", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_health_and_docs_need_no_token(client, server):
    h = client.get("/health").json()
    redis = "connected" if server.scaleout else "not configured"
    assert h == {"status": "healthy", "database": "connected", "redis": redis,
                 "ollama": "not configured", "ray": "ready"}
    d = client.get("/health", headers=server.headers()).json()["details"]
    assert d["database"]["status"] == "connected"
    assert d["llm"]["backend"] == "template" and d["llm"]["reachable"] is True
    assert "stats" in d["llm"]
    assert d["jax"]["backend"] == "cpu" and d["jax"]["devices"]
    assert isinstance(d["policies"], list)
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert f"{API}/simulation/start" in spec["paths"]
    assert f"{API}/agent/train" in spec["paths"]


def test_meta_needs_no_token_and_states_the_servers_rules(client, server):
    from eqx_jax.env import EnvParams
    from eqx_jax.negotiators import NEGOTIATORS

    r = client.get(f"{API}/meta")
    assert r.status_code == 200
    m = r.json()
    assert m["negotiators"] == list(NEGOTIATORS)
    assert m["fallback_policies"] == {"supplier": "boulware", "retailer": "conceder"}
    assert m["game"]["max_price"] == EnvParams().max_price
    assert m["game"]["max_rounds"] == EnvParams().max_rounds
    sim, cmp = m["limits"]["simulation"], m["limits"]["tournament"]
    assert sim["supplier_valuation"] == {"min": 0.01, "max": EnvParams().max_price,
                                         "min_inclusive": True, "max_inclusive": False,
                                         "integer": False}
    assert sim["max_rounds"] == {"min": 1, "max": 100, "min_inclusive": True,
                                 "max_inclusive": True, "integer": True}
    assert sim["move_delay_s"]["max"] == 5 and not sim["move_delay_s"]["integer"]
    assert sim["seed"] == cmp["seed"] and sim["seed"]["max"] == 2**31 - 1
    assert (cmp["num_episodes"]["min"], cmp["num_episodes"]["max"]) == (10, 5000)
    training = m["limits"]["training"]
    assert training["total_timesteps"]["max"] == 50_000_000
    assert training["num_envs"] == {"min": 1, "max": 8192, "min_inclusive": True,
                                    "max_inclusive": True, "integer": True}
    # The bounds are the ones the server enforces: just outside each is a 422 on that field.
    h = server.headers("alice")
    for field, bad in [("supplier_valuation", sim["supplier_valuation"]["max"]),
                       ("max_rounds", sim["max_rounds"]["max"] + 1),
                       ("move_delay_s", sim["move_delay_s"]["max"] + 0.5)]:
        r = client.post(f"{API}/simulation/start", json={**SIM, field: bad}, headers=h)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", field]


# ------------------------------------------------------------------------------ simulations
def test_start_stream_status_replay(client, server):
    started = start(client, server, seed=7)
    sid = started["session_id"]
    assert started["status"] == "created"
    assert started["websocket_url"] == f"{API}/simulation/{sid}/stream"
    assert started["supplier_policy"] == "boulware" and started["retailer_policy"] == "conceder"
    assert started["created_at"].endswith("Z")

    messages, code = asyncio.run(stream_all(server, sid, server.token("alice")))
    assert code == 1000
    moves, final = messages[:-1], messages[-1]
    assert moves and all(m["type"] == "MOVE" for m in moves)
    for i, m in enumerate(moves):
        assert {"agent", "round", "action", "price", "message", "timestamp", "phraser",
                "quality"} <= set(m)
        assert m["round"] == i + 1
        assert m["agent"] == ("supplier" if i % 2 == 0 else "retailer")
        assert m["action"] in ("ACCEPT", "COUNTER", "WALK_AWAY")
        assert m["phraser"] == "template" and 0 <= m["quality"] <= 1
        assert m["message"]
    assert final["type"] == "SIMULATION_COMPLETE"
    assert {"deal_reached", "final_price", "total_rounds", "rewards", "nash_distance",
            "pareto_efficiency", "equilibrium_price"} <= set(final)
    assert final["total_rounds"] == len(moves)
    assert set(final["rewards"]) == {"supplier", "retailer"}
    spe = solve_spe(5000, 8000, 10)
    assert final["equilibrium_price"] == pytest.approx(spe.price)
    # Welfare against the best the session allowed: a deal in round 2, 3000 * 0.64 + 2 * 5.
    assert final["best_welfare"] == pytest.approx(1930.0)
    assert final["welfare_efficiency"] == pytest.approx(
        sum(final["rewards"].values()) / 1930.0)
    assert final["price_of_private_information"] == pytest.approx(
        {"supplier": spe.supplier_payoff - final["rewards"]["supplier"],
         "retailer": spe.retailer_payoff - final["rewards"]["retailer"]})
    if final["deal_reached"]:
        assert moves[-1]["action"] == "ACCEPT"
        assert final["final_price"] == pytest.approx(moves[-2]["price"])
        mid = 6500.0
        assert final["nash_distance"] == pytest.approx(abs(final["final_price"] - mid) / mid,
                                                       rel=1e-5)
        assert 0 <= final["pareto_efficiency"] <= 1

    st = client.get(f"{API}/simulation/{sid}/status", headers=server.headers("alice")).json()
    assert st["status"] == "completed" and st["current_round"] == len(moves)
    assert st["moves"] == len(moves) and st["max_rounds"] == 10
    assert st["deal_reached"] == final["deal_reached"]

    rep = client.get(f"{API}/simulation/{sid}", headers=server.headers("alice")).json()
    assert rep["messages"] == moves  # exactly what was streamed
    assert rep["result"] == final
    assert rep["seed"] == 7 and rep["request"]["supplier_style"] == "aggressive"
    assert rep["game"]["max_rounds"] == 10

    # A late client (after the end) gets the same stored stream.
    again, code = asyncio.run(stream_all(server, sid, server.token("alice")))
    assert again == messages and code == 1000


def test_same_seed_same_moves_and_styles_only_change_words(client, server):
    a = start(client, server, seed=123, supplier_policy="random", retailer_policy="random")
    b = start(client, server, seed=123, supplier_policy="random", retailer_policy="random",
              supplier_style="analytical", retailer_style="analytical")
    ma, _ = asyncio.run(stream_all(server, a["session_id"], server.token("alice")))
    mb, _ = asyncio.run(stream_all(server, b["session_id"], server.token("alice")))
    strip = lambda ms: [(m.get("agent"), m.get("action"), m.get("price")) for m in ms[:-1]]
    assert strip(ma) == strip(mb)
    assert [m["message"] for m in ma[:-1]] != [m["message"] for m in mb[:-1]]


def test_concurrent_sessions_and_live_follow(client, server):
    """Several sessions at once, with a delay, streamed while they run."""
    ids = [start(client, server, move_delay_s=0.05, max_rounds=6, seed=i)["session_id"]
           for i in range(5)]

    async def all_streams():
        return await asyncio.gather(*(stream_all(server, i, server.token("alice"))
                                      for i in ids))

    results = asyncio.run(all_streams())
    for msgs, code in results:
        assert code == 1000 and msgs[-1]["type"] == "SIMULATION_COMPLETE"
        assert [m["round"] for m in msgs[:-1]] == list(range(1, len(msgs)))


def test_status_while_running(client, server):
    sid = start(client, server, move_delay_s=0.3, max_rounds=8, seed=3)["session_id"]
    seen = set()
    deadline = time.time() + 60
    while time.time() < deadline:
        st = client.get(f"{API}/simulation/{sid}/status", headers=server.headers("alice")).json()
        seen.add(st["status"])
        if st["status"] == "completed":
            break
        time.sleep(0.1)
    assert "running" in seen and "completed" in seen


def test_other_users_cannot_see_a_session(client, server):
    sid = start(client, server, user="alice")["session_id"]
    for path in (f"/simulation/{sid}/status", f"/simulation/{sid}"):
        assert client.get(API + path, headers=server.headers("bob")).status_code == 404
        assert client.get(API + path, headers=server.headers("admin")).status_code == 200


def test_unknown_ids_are_404(client, server):
    h = server.headers("alice")
    for path in ("/simulation/nope/status", "/simulation/nope", "/agent/jobs/nope",
                 "/agent/nope/policy", "/agent/nope/download", "/metrics/export/nope"):
        r = client.get(API + path, headers=h)
        assert r.status_code == 404, path
        assert "not found" in r.json()["detail"]


# ------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("field,value", [
    ("supplier_valuation", 0), ("supplier_valuation", -5), ("retailer_valuation", 10000),
    ("retailer_valuation", "abc"), ("max_rounds", 0), ("max_rounds", 101), ("max_rounds", 2.5),
    ("supplier_style", "rude"), ("retailer_style", None), ("move_delay_s", 6),
    ("move_delay_s", -1), ("seed", -1), ("supplier_policy", "../../etc/passwd"),
    ("unknown_field", 1),
])
def test_bad_start_requests_are_422_naming_the_field(client, server, field, value):
    r = client.post(f"{API}/simulation/start", json={**SIM, field: value},
                    headers=server.headers("alice"))
    assert r.status_code == 422, r.text
    locs = [e["loc"] for e in r.json()["detail"]]
    assert ["body", field] in locs, locs
    assert "input" not in r.json()["detail"][0]  # the request is not echoed back


def test_missing_fields_and_bad_json_are_422(client, server):
    r = client.post(f"{API}/simulation/start", json={"max_rounds": 5},
                    headers=server.headers("alice"))
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["detail"]]
    assert ["body", "supplier_valuation"] in locs and ["body", "retailer_valuation"] in locs
    r = client.post(f"{API}/simulation/start", content=b"{not json",
                    headers={**server.headers("alice"), "Content-Type": "application/json"})
    assert r.status_code == 422


def test_unknown_policy_is_404_naming_the_field(client, server):
    r = client.post(f"{API}/simulation/start", json={**SIM, "retailer_policy": "no-such-policy"},
                    headers=server.headers("alice"))
    assert r.status_code == 404
    assert r.json()["detail"][0]["loc"] == ["body", "retailer_policy"]
    assert "no-such-policy" in r.json()["detail"][0]["msg"]


def test_no_traceback_on_errors(client, server):
    r = client.post(f"{API}/simulation/start", content=b"\xff\xfe",
                    headers={**server.headers("alice"), "Content-Type": "application/json"})
    assert r.status_code in (400, 422)
    assert "Traceback" not in r.text


# ------------------------------------------------------------------------------- WebSockets
async def _ws_close(url: str, send: list | None = None) -> tuple[int | None, str]:
    async with asyncio.timeout(30):
        async with websockets.connect(url, max_size=2**22) as ws:
            try:
                for frame in send or []:
                    await ws.send(frame)
                while True:
                    await ws.recv()
            except ConnectionClosed:
                pass
            return ws.close_code, ws.close_reason


def test_websocket_auth_failures_close_with_1008(client, server):
    sid = start(client, server)["session_id"]
    base = f"{server.ws_url}{API}/simulation/{sid}/stream"
    assert asyncio.run(_ws_close(f"{base}?token=garbage"))[0] == 1008
    # No token at all: the server waits for a {"token": ...} first frame.
    assert asyncio.run(_ws_close(base, [json.dumps({"hello": 1})]))[0] == 1008
    # Another user's session: not found (4404), not a leak.
    code, _ = asyncio.run(_ws_close(f"{base}?token={server.token('bob')}"))
    assert code == 4404
    code, _ = asyncio.run(_ws_close(
        f"{server.ws_url}{API}/simulation/nope/stream?token={server.token('alice')}"))
    assert code == 4404


def test_websocket_token_in_first_message(client, server):
    sid = start(client, server)["session_id"]

    async def go():
        async with websockets.connect(f"{server.ws_url}{API}/simulation/{sid}/stream") as ws:
            await ws.send(json.dumps({"token": server.token("alice")}))
            out = [json.loads(m) async for m in ws]
            return out, ws.close_code

    msgs, code = asyncio.run(go())
    assert code == 1000 and msgs[-1]["type"] == "SIMULATION_COMPLETE"


@pytest.mark.parametrize("frame", [
    "x" * 10_000,  # oversize (limit 4096 bytes)
    "{not json",
    "[1, 2, 3]",  # JSON but not an object
    b"\x00\x01binary",
    json.dumps({"type": "something-else"}),
])
def test_bad_websocket_frames_close_with_policy_violation(client, server, frame):
    sid = start(client, server, move_delay_s=0.5, max_rounds=10)["session_id"]
    url = f"{server.ws_url}{API}/simulation/{sid}/stream?token={server.token('alice')}"
    code, reason = asyncio.run(_ws_close(url, [frame]))
    assert code == 1008, reason


def test_websocket_ping_is_answered(client, server):
    sid = start(client, server, move_delay_s=0.2, max_rounds=4)["session_id"]

    async def go():
        url = f"{server.ws_url}{API}/simulation/{sid}/stream?token={server.token('alice')}"
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            return [json.loads(m)["type"] async for m in ws]

    types = asyncio.run(go())
    assert "pong" in types and types[-1] == "SIMULATION_COMPLETE"


# ------------------------------------------------------------------------------------- CORS
def test_cors_origins_from_settings(client):
    pre = {"Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization,content-type"}
    ok = client.options(f"{API}/simulation/start",
                        headers={"Origin": "http://allowed.example", **pre})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "http://allowed.example"
    bad = client.options(f"{API}/simulation/start",
                         headers={"Origin": "http://evil.example", **pre})
    assert "access-control-allow-origin" not in bad.headers
    r = client.get("/health", headers={"Origin": "http://allowed.example"})
    assert r.headers["access-control-allow-origin"] == "http://allowed.example"


# ------------------------------------------------------------------------------------ export
def _finished_sessions(client, server, n=2):
    ids = [start(client, server, seed=40 + i)["session_id"] for i in range(n)]
    for i in ids:
        asyncio.run(stream_all(server, i, server.token("alice")))
    return ids


def test_export_csv_and_json_then_expiry(client, server):
    ids = _finished_sessions(client, server)
    h = server.headers("alice")
    r = client.post(f"{API}/metrics/export", json={"session_ids": ids, "format": "csv"},
                    headers=h)
    assert r.status_code == 201, r.text
    exp = r.json()
    assert exp["format"] == "csv" and exp["sessions"] == 2 and exp["expires_at"]
    dl = client.get(exp["download_url"], headers=h)
    assert dl.status_code == 200 and dl.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(dl.text)))
    assert [row["session_id"] for row in rows] == ids
    for row in rows:
        assert row["supplier_valuation"] == "5000.0" and row["status"] == "completed"
        assert row["equilibrium_price"] and row["total_rounds"]
        assert row["supplier_policy"] == "boulware"

    r = client.post(f"{API}/metrics/export", json={"session_ids": ids, "format": "json"},
                    headers=h)
    doc = client.get(r.json()["download_url"], headers=h).json()
    assert [s["session_id"] for s in doc["sessions"]] == ids
    assert doc["sessions"][0]["result"]["type"] == "SIMULATION_COMPLETE"

    # Only the owner downloads; the URL expires (EQX_EXPORT_TTL_S=3 in the test server).
    assert client.get(exp["download_url"], headers=server.headers("bob")).status_code == 404
    time.sleep(3.2)
    gone = client.get(exp["download_url"], headers=h)
    assert gone.status_code == 410 and "expired" in gone.json()["detail"]


def test_export_validation(client, server):
    h = server.headers("alice")
    r = client.post(f"{API}/metrics/export", json={"session_ids": [], "format": "csv"},
                    headers=h)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "session_ids"]
    r = client.post(f"{API}/metrics/export", json={"session_ids": ["x"], "format": "xml"},
                    headers=h)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "format"]
    r = client.post(f"{API}/metrics/export", json={"session_ids": ["nope"], "format": "csv"},
                    headers=h)
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    # Someone else's session cannot be exported.
    sid = start(client, server, user="alice")["session_id"]
    r = client.post(f"{API}/metrics/export", json={"session_ids": [sid]},
                    headers=server.headers("bob"))
    assert r.status_code == 404


def test_health_reports_compiles_and_moves(client, server):
    _finished_sessions(client, server, n=1)
    deadline = time.monotonic() + 15  # the probes are cached for health_cache_s (5 s)
    while True:
        h = httpx.get(f"{server.url}/health", headers=server.headers()).json()["details"]
        if h["database"]["sessions"].get("completed", 0) >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert h["jax"]["compiled_policy_pairs"] >= 1
    assert h["jax"]["batches_measured"] >= 1 and h["jax"]["move_compute_ms_p50"] > 0
    assert h["llm"]["stats"]["messages"] >= 1
    assert h["database"]["sessions"].get("completed", 0) >= 1
