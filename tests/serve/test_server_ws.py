"""The WebSocket stream against a real server: the founding design's config frame (before and
after the first move), every way to authenticate, the first move's hold, the WebSocket limits
(pre-auth timeout, unauthenticated sockets per IP, frame rate), the per-user session cap, the
valuation floor, and no token in the server's log (run at --log-level info)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets
from server_helpers import SIM, start_server, stream_all, with_users
from websockets.exceptions import ConnectionClosed

from eqx_jax.equilibrium import solve_spe

# Also run on 2 workers sharing Redis and PostgreSQL (make test's second run).
pytestmark = pytest.mark.shared_state

API = "/api/v1"
HOLD_S = 5.0  # first-move hold without a client: long, so a test can tell it from the window
CONFIG_WAIT_S = 0.3
AUTH_TIMEOUT_S = 1.5
UNAUTH_PER_IP = 3
FRAMES_BURST = 5
PER_USER = 6
USERS = ("alice", "bob", "carol", "dave")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = with_users(start_server(
        tmp_path_factory.mktemp("eqx-ws") / "data", log_level="info",
        EQX_SESSION_START_HOLD_S=str(HOLD_S), EQX_WS_CONFIG_WAIT_S=str(CONFIG_WAIT_S),
        EQX_WS_AUTH_TIMEOUT_S=str(AUTH_TIMEOUT_S),
        EQX_WS_MAX_UNAUTHENTICATED_PER_IP=str(UNAUTH_PER_IP),
        EQX_WS_FRAMES_BURST=str(FRAMES_BURST), EQX_WS_FRAMES_PER_MINUTE="60",
        EQX_MAX_RUNNING_SESSIONS_PER_USER=str(PER_USER)), USERS)
    yield s
    s.stop()


def start(srv, user: str = "alice", **over) -> dict:
    r = httpx.post(f"{srv.url}{API}/simulation/start", json={**SIM, **over},
                   headers=srv.headers(user), timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def status(srv, sid: str, user: str = "alice") -> dict:
    r = httpx.get(f"{srv.url}{API}/simulation/{sid}/status", headers=srv.headers(user),
                  timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def stream_url(srv, sid: str, query: str = "") -> str:
    return f"{srv.ws_url}{API}/simulation/{sid}/stream{query}"


async def talk(url: str, frames: list, *, timeout: float = 30,
               **connect) -> tuple[list[dict], int | None, str, websockets.ClientConnection]:
    """Connect, send ``frames``, read to the close: (messages, close code, reason, socket)."""
    out: list[dict] = []
    async with asyncio.timeout(timeout):
        async with websockets.connect(url, **connect) as ws:
            try:
                for f in frames:
                    await ws.send(f if isinstance(f, str | bytes) else json.dumps(f))
                async for raw in ws:
                    out.append(json.loads(raw))
            except ConnectionClosed:
                pass
            return out, ws.close_code, ws.close_reason, ws


def assert_founding_stream(msgs: list[dict]) -> None:
    """What the founding design's client needs: only moves (agent, round, message), then the
    result; nothing it did not ask for."""
    assert msgs and msgs[-1]["type"] == "SIMULATION_COMPLETE"
    for m in msgs[:-1]:
        assert m["type"] == "MOVE", m
        assert isinstance(m["agent"], str) and isinstance(m["round"], int) and m["message"]


# ------------------------------------------------------------------------------ config frame
def test_founding_client_config_frame_sets_the_session(srv):
    """The founding design's Quick Start flow, with websocket-client (its library) and the
    token in the Authorization header: the config frame sets valuations and rounds."""
    import websocket  # websocket-client, the founding client's library

    sid = start(srv, seed=11)["session_id"]
    ws = websocket.WebSocket()
    ws.connect(stream_url(srv, sid), header=[f"Authorization: Bearer {srv.token('alice')}"])
    ws.send(json.dumps({"supplier_valuation": 4000, "retailer_valuation": 9000,
                        "max_rounds": 4}))
    msgs = []
    while True:
        msgs.append(json.loads(ws.recv()))
        if msgs[-1].get("type") == "SIMULATION_COMPLETE":
            break
    ws.close()
    assert_founding_stream(msgs)
    final = msgs[-1]
    assert final["total_rounds"] <= 4 and len(msgs) - 1 <= 4
    assert final["equilibrium_price"] == pytest.approx(solve_spe(4000, 9000, 4).price)
    rep = httpx.get(f"{srv.url}{API}/simulation/{sid}", headers=srv.headers("alice")).json()
    assert rep["request"]["supplier_valuation"] == 4000
    assert rep["request"]["retailer_valuation"] == 9000
    assert rep["request"]["max_rounds"] == 4 and rep["game"]["max_rounds"] == 4
    assert rep["request"]["supplier_style"] == SIM["supplier_style"]  # not in the frame: kept
    assert rep["seed"] == 11


def test_config_frame_carrying_the_token_authenticates_and_configures(srv):
    sid = start(srv)["session_id"]
    frame = {"supplier_valuation": 5000, "retailer_valuation": 8000, "max_rounds": 3,
             "token": srv.token("alice")}
    msgs, code, _, _ = asyncio.run(talk(stream_url(srv, sid), [frame]))
    assert code == 1000
    assert_founding_stream(msgs)
    assert len(msgs) - 1 <= 3 and status(srv, sid)["max_rounds"] == 3


@pytest.mark.parametrize("fields, name", [
    ({"supplier_valuation": -5}, "supplier_valuation"),
    ({"supplier_valuation": 5e-324}, "supplier_valuation"),
    ({"retailer_valuation": 10_000}, "retailer_valuation"),
    ({"max_rounds": 1000}, "max_rounds"),
    ({"supplier_style": "rude"}, "supplier_style"),
    ({"retailer_policy": "no-such-policy"}, "retailer_policy"),
    ({"bogus": 1}, "bogus"),
])
def test_invalid_config_frame_closes_1008_naming_the_field(srv, fields, name):
    sid = start(srv)["session_id"]
    msgs, code, reason, _ = asyncio.run(talk(
        stream_url(srv, sid), [{"type": "auth", "token": srv.token("alice")}, fields]))
    assert code == 1008 and name in reason and "invalid config" in reason, reason
    assert not any(m.get("type") == "MOVE" for m in msgs)
    # The session plays on with its stored configuration after the hold: wait for its end, so
    # that the next cases do not meet this module's per-user cap on a busy machine.
    deadline = time.monotonic() + 60
    while status(srv, sid)["status"] in ("created", "running") and time.monotonic() < deadline:
        time.sleep(0.2)


def test_config_frame_after_the_first_move_must_equal_the_running_one(srv):
    sid = start(srv, move_delay_s=0.3, max_rounds=6, seed=5)["session_id"]
    same = {k: SIM[k] for k in ("supplier_valuation", "retailer_valuation")} | {"max_rounds": 6}

    async def go():
        out = []
        async with asyncio.timeout(30), websockets.connect(stream_url(srv, sid)) as ws:
            await ws.send(json.dumps({"type": "auth", "token": srv.token("alice")}))
            await ws.send(json.dumps({"type": "config"}))  # start now
            out.append(json.loads(await ws.recv()))
            assert out[0]["type"] == "MOVE"
            await ws.send(json.dumps(same))  # equal: no reply
            await ws.send(json.dumps({"max_rounds": 3, "retailer_valuation": 8000}))
            out += [json.loads(m) async for m in ws]
            return out, ws.close_code

    msgs, code = asyncio.run(go())
    assert code == 1000 and msgs[-1]["type"] == "SIMULATION_COMPLETE"
    errors = [m for m in msgs if m["type"] == "ERROR"]
    assert len(errors) == 1, msgs  # the equal frame got nothing
    assert errors[0]["error"] == "config_mismatch"
    assert errors[0]["fields"] == {"max_rounds": {"running": 6, "requested": 3}}
    assert "max_rounds" in errors[0]["message"]
    assert [m["type"] for m in msgs if m["type"] != "ERROR"][:-1] == ["MOVE"] * (len(msgs) - 2)
    assert status(srv, sid)["max_rounds"] == 6  # the running configuration is unchanged


def test_config_frame_to_a_finished_session_is_compared(srv):
    """A late client's config frame (with its token, so it is read before the replay starts):
    equal gets nothing, different gets the ERROR frame first, then the stored stream."""
    sid = start(srv, max_rounds=4)["session_id"]
    first, _ = asyncio.run(stream_all(srv, sid, srv.token("alice")))
    token = srv.token("alice")
    same, code, _, _ = asyncio.run(talk(stream_url(srv, sid), [
        {"max_rounds": 4, "retailer_valuation": 8000, "token": token}]))
    assert code == 1000 and same == first
    msgs, code, _, _ = asyncio.run(talk(stream_url(srv, sid), [
        {"supplier_valuation": 4500, "max_rounds": 4, "token": token}]))
    assert code == 1000
    assert msgs[0]["type"] == "ERROR" and msgs[0]["fields"] == {
        "supplier_valuation": {"running": 5000.0, "requested": 4500.0}}
    assert msgs[1:] == first


# ------------------------------------------------------------------------------ the hold
def test_first_move_is_held_until_a_client_or_the_hold_time(srv):
    # No client: the session waits HOLD_S, then plays to the end on its own.
    t0 = time.monotonic()
    quiet = start(srv, "dave")["session_id"]
    assert status(srv, quiet, "dave")["status"] == "created"
    # A client that sends nothing after its header auth: the session starts CONFIG_WAIT_S
    # after it connected, long before the hold time is over.
    sid = start(srv, "dave")["session_id"]
    msgs, code, _, _ = asyncio.run(talk(
        stream_url(srv, sid), [],
        additional_headers={"Authorization": f"Bearer {srv.token('dave')}"}))
    assert code == 1000
    assert_founding_stream(msgs)
    assert time.monotonic() - t0 < HOLD_S - 0.5, "the connected session waited the hold"
    assert status(srv, quiet, "dave")["status"] == "created"
    deadline = time.monotonic() + HOLD_S + 30
    while (st := status(srv, quiet, "dave"))["status"] != "completed":
        assert time.monotonic() < deadline, st
        time.sleep(0.2)
    assert st["moves"] > 0


# ------------------------------------------------------------------------------ auth methods
@pytest.mark.parametrize("how", ["auth_frame", "legacy_frame", "header", "subprotocol",
                                 "query"])
def test_every_auth_method_streams_and_a_bad_token_is_1008(srv, how):
    sid = start(srv)["session_id"]

    def connect(token: str):
        url, frames, kw = stream_url(srv, sid), [], {}
        if how == "auth_frame":
            frames = [{"type": "auth", "token": token}]
        elif how == "legacy_frame":
            frames = [{"token": token}]
        elif how == "header":
            kw = {"additional_headers": {"Authorization": f"Bearer {token}"}}
        elif how == "subprotocol":
            kw = {"subprotocols": ["bearer", token]}
        else:
            url += f"?token={token}"
        return asyncio.run(talk(url, frames + [{"type": "config"}], **kw))

    _, code, reason, _ = connect("garbage-token")
    assert code == 1008 and "token" in reason, reason
    msgs, code, _, ws = connect(srv.token("alice"))
    assert code == 1000
    assert_founding_stream(msgs)
    if how == "subprotocol":
        assert ws.subprotocol == "bearer"  # the server picks the offered scheme


def test_no_token_within_the_auth_timeout_closes_1008(srv):
    sid = start(srv, "bob")["session_id"]
    t0 = time.monotonic()
    _, code, reason, _ = asyncio.run(talk(stream_url(srv, sid), []))
    assert code == 1008 and "timeout" in reason, reason
    assert AUTH_TIMEOUT_S - 0.2 <= time.monotonic() - t0 < AUTH_TIMEOUT_S + 10
    # A first frame that is neither auth nor config: 1008 at once.
    _, code, reason, _ = asyncio.run(talk(stream_url(srv, sid), [{"type": "ping"}]))
    assert code == 1008 and "missing token" in reason


def test_unauthenticated_sockets_per_ip_are_capped_with_1013(srv):
    sid = start(srv)["session_id"]
    url = stream_url(srv, sid)

    async def go():
        held = [await websockets.connect(url) for _ in range(UNAUTH_PER_IP)]
        try:
            # The server counts a socket once it is accepted: the next one is over the cap.
            _, code, reason, _ = await talk(url, [])
            assert code == 1013 and "try again later" in reason, (code, reason)
            # A socket with its token in the upgrade request is not waiting: not capped.
            msgs, code, _, _ = await talk(url, [{"type": "config"}], additional_headers={
                "Authorization": f"Bearer {srv.token('alice')}"})
            assert code == 1000 and msgs[-1]["type"] == "SIMULATION_COMPLETE"
        finally:
            await held[0].close()
        # One left: a waiting socket is accepted again (the server sees the close soon).
        deadline = time.monotonic() + 10
        while True:
            msgs, code, _, _ = await talk(url, [{"type": "auth", "token": srv.token("alice")}])
            if code == 1000:
                break
            assert code == 1013 and time.monotonic() < deadline
            await asyncio.sleep(0.1)
        for ws in held[1:]:
            await ws.close()

    asyncio.run(go())


def test_client_frames_are_rate_limited(srv):
    sid = start(srv, move_delay_s=0.5, max_rounds=10)["session_id"]
    msgs, code, reason, _ = asyncio.run(talk(
        stream_url(srv, sid), [{"type": "auth", "token": srv.token("alice")}]
        + [{"type": "ping"}] * (FRAMES_BURST * 4)))
    assert code == 1008 and "too many client frames" in reason, reason
    assert 1 <= sum(m["type"] == "pong" for m in msgs) <= FRAMES_BURST


# ------------------------------------------------------------------------------ sessions
def test_per_user_running_session_cap_is_429_with_retry_after(srv):
    h = srv.headers("carol")
    ids = [start(srv, "carol", move_delay_s=0.05, max_rounds=4)["session_id"]
           for _ in range(PER_USER)]
    r = httpx.post(f"{srv.url}{API}/simulation/start", json=SIM, headers=h)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert f"at most {PER_USER}" in r.json()["detail"]
    assert "EQX_MAX_RUNNING_SESSIONS_PER_USER" in r.json()["detail"]
    start(srv, "bob")  # another user is not affected
    for sid in ids:  # once carol's sessions have finished, she may start again
        asyncio.run(stream_all(srv, sid, srv.token("carol")))
    deadline = time.monotonic() + 10
    while (r := httpx.post(f"{srv.url}{API}/simulation/start", json=SIM,
                           headers=h)).status_code == 429:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert r.status_code == 201


@pytest.mark.parametrize("value", [5e-324, 1e-40, 0.0099, 0])
def test_valuations_too_small_for_float32_are_422(srv, value):
    r = httpx.post(f"{srv.url}{API}/simulation/start",
                   json={**SIM, "supplier_valuation": value}, headers=srv.headers("bob"))
    assert r.status_code == 422
    err = r.json()["detail"][0]
    assert err["loc"] == ["body", "supplier_valuation"] and "0.01" in err["msg"]


def test_smallest_valuation_plays(srv):
    sid = start(srv, "bob", supplier_valuation=0.01)["session_id"]
    msgs, code = asyncio.run(stream_all(srv, sid, srv.token("bob")))
    assert code == 1000 and msgs[-1]["type"] == "SIMULATION_COMPLETE"
    rep = httpx.get(f"{srv.url}{API}/simulation/{sid}", headers=srv.headers("bob")).json()
    assert rep["request"]["supplier_valuation"] == 0.01


# ------------------------------------------------------------------------------ logs
def test_no_token_in_the_server_log(srv):
    """A dashboard-like session (token in the first frame) and an old client's ?token= session
    (and a rejected one), then every token is absent from the INFO log."""
    token = srv.token("alice")
    sid = start(srv)["session_id"]
    msgs, code, _, _ = asyncio.run(talk(stream_url(srv, sid), [{"type": "config",
                                                                 "token": token}]))
    assert code == 1000
    sid = start(srv)["session_id"]
    msgs, code, _, _ = asyncio.run(talk(stream_url(srv, sid, f"?token={token}"),
                                        [{"type": "config"}]))
    assert code == 1000
    fake = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    _, code, _, _ = asyncio.run(talk(stream_url(srv, sid, f"?a=1&token={fake}&b=2"), []))
    assert code == 1008
    deadline = time.monotonic() + 10
    while "token=[redacted]&b=2" not in (log := srv.log()):
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.1)
    assert f'"WebSocket {API}/simulation/{sid}/stream?token=[redacted]"' in log
    for secret in [token, fake, *srv.tokens.values()]:
        assert secret not in log
        for part in secret.split("."):
            assert part not in log


def test_only_the_owner_sets_the_configuration(srv):
    """An admin may watch anyone's session; its config frame is only compared."""
    sid = start(srv, max_rounds=5)["session_id"]
    msgs, code, _, _ = asyncio.run(talk(stream_url(srv, sid), [
        {"max_rounds": 3, "token": srv.token("admin")}]))
    assert code == 1000 and msgs[0]["type"] == "ERROR"
    assert msgs[0]["fields"] == {"max_rounds": {"running": 5, "requested": 3}}
    assert msgs[-1]["type"] == "SIMULATION_COMPLETE" and status(srv, sid)["max_rounds"] == 5


def test_log_filter_redacts_uvicorn_records():
    """The filter on uvicorn's access formatter (arguments stay a tuple) and on tracebacks."""
    import logging

    from uvicorn.logging import AccessFormatter

    from serve.logredact import RedactTokens, redact

    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    rec = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                            '%s - "%s %s HTTP/%s" %d',
                            ("1.2.3.4:5", "GET", f"/x?Token={jwt}&y=1", "1.1", 200), None)
    assert RedactTokens().filter(rec)
    line = AccessFormatter("%(message)s", use_colors=False).format(rec)
    assert jwt not in line and "/x?Token=[redacted]&y=1" in line
    try:
        raise ValueError(f"bad {jwt}")
    except ValueError:
        import sys

        err = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    RedactTokens().filter(err)
    assert jwt not in logging.Formatter().format(err)
    assert redact("a token=abc%2Edef b") == "a token=[redacted] b"
    assert redact("no secrets here, tokens=3") == "no secrets here, tokens=3"
