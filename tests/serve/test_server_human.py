"""A person at the table, against a real server over the WebSocket: the session waits for the
person's seat (YOUR_TURN with the deadline and the legal actions); structured moves are applied,
free text is parsed and echoed for confirmation (nothing applied unconfirmed), unparseable or
invalid input gets an ERROR naming what is missing; the deadline walks the seat away; only the
owner plays; the stored session replays with the person's raw text."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets
from server_helpers import ADMIN, SIM, start_server, with_users

# Also run on 2 workers sharing Redis and PostgreSQL (make test's second run).
pytestmark = pytest.mark.shared_state

API = "/api/v1"
DEADLINE_S = 4.0


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = with_users(start_server(tmp_path_factory.mktemp("eqx-human") / "data",
                                EQX_HUMAN_MOVE_TIMEOUT_S=str(DEADLINE_S)))
    yield s
    s.stop()


def start(srv, body: dict, user: str = "alice") -> str:
    r = httpx.post(f"{srv.url}{API}/simulation/start", json=body, headers=srv.headers(user),
                   timeout=60)
    assert r.status_code == 201, r.text
    return r.json()["session_id"]


async def play(srv, sid: str, script, user: str = "alice", timeout: float = 90.0):
    """Stream the session; on each YOUR_TURN call ``script(turn, ws, frames)`` (a coroutine
    that sends the person's frames). Returns every frame received."""
    frames: list[dict] = []
    url = f"{srv.ws_url}{API}/simulation/{sid}/stream"
    async with asyncio.timeout(timeout):
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": srv.token(user)}))
            await ws.send(json.dumps({"type": "config"}))
            async for raw in ws:
                msg = json.loads(raw)
                frames.append(msg)
                if msg["type"] == "YOUR_TURN":
                    await script(msg, ws, frames)
    return frames


async def reply(ws, frames: list[dict], frame: dict) -> dict:
    """Send a frame and wait for the server's direct answer (PROPOSED_MOVE or ERROR)."""
    await ws.send(json.dumps(frame))
    while True:
        msg = json.loads(await ws.recv())
        frames.append(msg)
        if msg["type"] in ("PROPOSED_MOVE", "ERROR"):
            return msg


def test_person_takes_the_retailer_seat_of_the_price_game(srv):
    """Two counter-offers (a form move, then free text confirmed), an unparseable text that
    is asked about, then the person accepts the agent's offer."""
    sid = start(srv, {**SIM, "supplier_policy": "boulware", "retailer_policy": "human",
                      "seed": 3})
    turns: list[dict] = []

    async def script(turn, ws, frames):
        turns.append(turn)
        assert turn["agent"] == "retailer" and turn["seat"] == 1
        assert turn["deadline_s"] == DEADLINE_S and turn["deadline_at"] > time.time()
        assert turn["issues"][0]["name"] == "price"
        k = len(turns)
        if k == 1:
            bad = await reply(ws, frames, {"type": "move", "action": "COUNTER",
                                           "offer": {"price": -5}})
            assert bad["error"] == "invalid_move" and bad["field"] == "offer.price"
            await ws.send(json.dumps({"type": "move", "action": "COUNTER",
                                      "offer": {"price": 5200}}))
        elif k == 2:
            err = await reply(ws, frames, {"type": "say", "text": "hmm, can you do better?"})
            assert err["error"] == "unparsed" and err["missing"] == ["action"]
            got = await reply(ws, frames, {"type": "say", "text": "I can do 5,400 dollars"})
            assert got["type"] == "PROPOSED_MOVE"
            assert got["move"] == {"action": "COUNTER", "offer": {"price": 5400.0}}
            await ws.send(json.dumps({"type": "confirm"}))
        else:
            assert "ACCEPT" in turn["legal_actions"] and turn["standing_offer"] is not None
            got = await reply(ws, frames, {"type": "say", "text": "OK, deal."})
            assert got["move"]["action"] == "ACCEPT"
            await ws.send(json.dumps({"type": "confirm"}))

    frames = asyncio.run(play(srv, sid, script))
    moves = [f for f in frames if f["type"] == "MOVE"]
    final = frames[-1]
    assert final["type"] == "SIMULATION_COMPLETE" and final["deal_reached"]
    mine = [m for m in moves if m["agent"] == "retailer"]
    assert [m["action"] for m in mine] == ["COUNTER", "COUNTER", "ACCEPT"]
    assert mine[0]["price"] == 5200 and mine[0]["human"] and mine[0]["via"] == "form"
    assert mine[1]["price"] == 5400 and mine[1]["raw_text"] == "I can do 5,400 dollars"
    assert mine[1]["message"] == "I can do 5,400 dollars" and mine[1]["phraser"] == "human"
    assert final["final_price"] == moves[-2]["price"]  # the agent's offer the person accepted
    assert all(not m.get("human") for m in moves if m["agent"] == "supplier")
    # The stored session replays with the person's words.
    tr = httpx.get(f"{srv.url}{API}/simulation/{sid}", headers=srv.headers("alice")).json()
    assert [m["seq"] for m in tr["messages"]] == [m["seq"] for m in moves]
    assert tr["messages"][3]["raw_text"] == "I can do 5,400 dollars"
    assert tr["request"]["retailer_policy"] == "human"
    # The person's result against the equilibrium and against an agent in their seat: the same
    # session replayed with the seat's default agent (no trained policy here: the conceder).
    me = final["human"][0]
    assert me["seat"] == 1 and me["reward"] == final["rewards"]["retailer"]
    assert me["utility"] == pytest.approx(8000 - final["final_price"])
    assert me["equilibrium"]["payoff"] == final["equilibrium_payoffs"]["retailer"]
    assert me["equilibrium"]["utility"] == pytest.approx(8000 - final["equilibrium_price"])
    bench = asyncio.run(_session(srv, {**SIM, "supplier_policy": "boulware",
                                       "retailer_policy": "conceder", "seed": 3}))
    assert me["benchmark"]["policy"] == "conceder"
    assert me["benchmark"]["reward"] == pytest.approx(bench["rewards"]["retailer"])
    assert me["benchmark"]["deal"] == bench["deal_reached"]
    # The class's sessions as data: the JSONL dataset has every move with the raw text.
    r = httpx.post(f"{srv.url}{API}/metrics/export", json={"session_ids": [sid],
                                                          "format": "jsonl"},
                   headers=srv.headers("alice"))
    assert r.status_code == 201, r.text
    got = httpx.get(f"{srv.url}{r.json()['download_url']}", headers=srv.headers("alice"))
    assert got.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in got.text.splitlines()]
    assert [x["seq"] for x in lines] == [m["seq"] for m in moves]
    said = [x for x in lines if x["raw_text"]]
    assert [x["raw_text"] for x in said] == ["I can do 5,400 dollars", "OK, deal."]
    assert said[0]["parsed"] == {"action": "COUNTER", "offer": {"price": 5400.0}}
    assert all(x["outcome"]["end"] == "deal" and x["game"] == "price" for x in lines)
    assert lines[-1]["outcome"]["agreement"] == {"price": final["final_price"]}


async def _session(srv, body: dict) -> dict:
    from server_helpers import stream_all

    msgs, _ = await stream_all(srv, start(srv, body), srv.token("alice"))
    return msgs[-1]


def test_deadline_walks_the_seat_away_and_group_moves_name_the_issue(srv):
    sid = start(srv, {"game": "group", "scenario": "supply-chain-3p-fixed", "seed": 1,
                      "policies": ["boulware", "human", "conceder"]})
    seen: list[dict] = []

    async def script(turn, ws, frames):
        seen.append(turn)
        assert turn["agent"] == "retailer" and turn["game"] == "group"
        names = [i["name"] for i in turn["issues"]]
        assert names == ["unit_price", "quantity", "delivery_weeks"]
        if len(seen) == 1:
            bad = await reply(ws, frames, {"type": "move", "action": "COUNTER", "offer": {
                "unit_price": 10, "quantity": 250, "delivery_weeks": 2}})
            assert bad["field"] == "offer.quantity" and "100" in bad["message"]
            part = await reply(ws, frames, {"type": "say", "text": "300 units at $10.20"})
            assert part["error"] == "unparsed" and part["missing"] == ["delivery_weeks"]
            await ws.send(json.dumps({"type": "move", "action": "COUNTER", "offer": {
                "unit_price": 10.2, "quantity": 300, "delivery_weeks": 2}}))
        # Later turns: let the deadline pass.

    t0 = time.monotonic()
    frames = asyncio.run(play(srv, sid, script))
    moves = [f for f in frames if f["type"] == "MOVE"]
    mine = [m for m in moves if m["agent"] == "retailer"]
    assert mine[0]["offer"] == {"unit_price": 10.2, "quantity": 300.0, "delivery_weeks": 2.0}
    final = frames[-1]
    assert len(seen) == 2  # the agents do not close before the person's second turn
    assert mine[-1]["action"] == "WALK_AWAY" and mine[-1]["deadline_expired"]
    assert final["end"] == "walk_away" and final["deal_reached"] is False
    assert time.monotonic() - t0 >= DEADLINE_S
    bench = asyncio.run(_session(srv, {"game": "group", "scenario": "supply-chain-3p-fixed",
                                       "seed": 1,
                                       "policies": ["boulware", "conceder", "conceder"]}))
    me = final["human"][0]
    assert me["agent"] == "retailer" and me["benchmark"]["policy"] == "conceder"
    assert me["benchmark"]["reward"] == pytest.approx(bench["rewards"]["retailer"])
    assert me["equilibrium"]["utility"] == pytest.approx(
        final["equilibrium"]["utilities"]["retailer"])


def test_only_the_owner_plays_and_moves_out_of_turn_are_refused(srv):
    sid = start(srv, {"game": "price-quantity", "seed": 4,
                      "policies": ["human", "conceder"]})
    url = f"{srv.ws_url}{API}/simulation/{sid}/stream"

    async def watch_as_admin():
        async with asyncio.timeout(60):
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"type": "auth", "token": srv.token(ADMIN[0])}))
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg["type"] == "YOUR_TURN":
                        await ws.send(json.dumps({"type": "move", "action": "WALK_AWAY"}))
                    if msg["type"] == "ERROR":
                        return msg

    err = asyncio.run(watch_as_admin())
    assert err["error"] == "not_owner"

    async def owner_walks(turn, ws, frames):
        assert turn["legal_actions"] == ["COUNTER", "WALK_AWAY"]  # nothing to accept yet
        bad = await reply(ws, frames, {"type": "move", "action": "ACCEPT"})
        assert bad["field"] == "action"
        await ws.send(json.dumps({"type": "move", "action": "WALK_AWAY"}))

    frames = asyncio.run(play(srv, sid, owner_walks))
    assert frames[-1]["end"] == "walk_away" and frames[-1]["agents"] == ["supplier", "retailer"]
    # A session without a person's seat refuses move frames.
    sid2 = start(srv, {**SIM, "move_delay_s": 0.5})

    async def stray():
        async with asyncio.timeout(60):
            async with websockets.connect(f"{srv.ws_url}{API}/simulation/{sid2}/stream") as ws:
                await ws.send(json.dumps({"type": "auth", "token": srv.token("alice")}))
                await ws.send(json.dumps({"type": "say", "text": "deal"}))
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg["type"] == "ERROR":
                        return msg

    assert asyncio.run(stray())["error"] == "no_seat"


def test_the_benchmark_is_the_trained_agent_in_the_persons_seat(tmp_path_factory):
    """With a trained self-play policy at the table, the person's result is compared with that
    policy playing their seat in the same session (same seed)."""
    from server_helpers import make_policy_run

    root = tmp_path_factory.mktemp("eqx-human-trained")
    run = make_policy_run(root / "runs" / "default")
    s = with_users(start_server(root / "data", EQX_DEFAULT_POLICY_DIR=str(run),
                                EQX_HUMAN_MOVE_TIMEOUT_S=str(DEADLINE_S)))
    try:
        sid = start(s, {**SIM, "supplier_policy": "default", "retailer_policy": "human",
                        "seed": 9})

        async def walk(turn, ws, frames):
            await ws.send(json.dumps({"type": "move", "action": "WALK_AWAY"}))

        frames = asyncio.run(play(s, sid, walk))
        final = frames[-1]
        me = final["human"][0]
        assert me["benchmark"]["policy"] == "default"
        both = asyncio.run(_session(s, {**SIM, "supplier_policy": "default",
                                        "retailer_policy": "default", "seed": 9}))
        assert me["benchmark"]["reward"] == pytest.approx(both["rewards"]["retailer"])
        assert me["benchmark"]["deal"] == both["deal_reached"]
    finally:
        s.stop()
