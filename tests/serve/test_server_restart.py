"""A server killed mid-session (SIGKILL) restarts with that session ``interrupted`` and every
finished session still readable and exportable; a stopped server (SIGTERM) marks its running
sessions ``interrupted`` itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time

import httpx
import websockets
from server_helpers import SIM, free_port, start_server, stream_all
from websockets.exceptions import ConnectionClosed

API = "/api/v1"


def _start(c, srv, **kw):
    r = c.post(f"{API}/simulation/start", json={**SIM, **kw}, headers=srv.headers("alice"))
    assert r.status_code == 201, r.text
    return r.json()["session_id"]


def _wait_for_moves(c, srv, sid, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = c.get(f"{API}/simulation/{sid}/status", headers=srv.headers("alice")).json()
        if st["moves"] >= n:
            return st
        time.sleep(0.1)
    raise AssertionError(f"session {sid} made fewer than {n} moves")


def _finish_one_then_kill_mid_session(data):
    """On a server with an unreachable LLM, play one session to the end, start a second one
    (1 s per move), and SIGKILL the server once the second has made 2 moves.

    Returns ``(done_id, done_msgs, killed_id)``: the finished session, its streamed messages,
    and the session that was running when the server was killed.
    """
    # This server's LLM is an Ollama host that is down: the server still starts, /health says
    # "degraded", and every move falls back to the template phraser.
    srv = start_server(data, EQX_LLM_BACKEND="ollama",
                       OLLAMA_HOST=f"http://127.0.0.1:{free_port()}")
    srv.add_user("alice", "alice-password")
    srv.token("alice", "alice-password")
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            done_id = _start(c, srv, seed=1)
            done_msgs, code = asyncio.run(stream_all(srv, done_id, srv.tokens["alice"]))
            assert code == 1000 and done_msgs[-1]["type"] == "SIMULATION_COMPLETE"
            assert {m["phraser"] for m in done_msgs[:-1]} == {"template"}
            assert done_msgs[0]["fallback_reason"] == "unreachable"
            health = c.get("/health").json()
            assert health["status"] == "degraded" and health["ollama"] == "unreachable"
            llm = c.get("/health", headers=srv.headers("alice")).json()["details"]["llm"]
            assert llm["backend"] == "ollama" and llm["reachable"] is False
            killed_id = _start(c, srv, seed=2, move_delay_s=1.0)
            st = _wait_for_moves(c, srv, killed_id, 2)
            assert st["status"] == "running"
    finally:
        srv.stop(signal.SIGKILL)  # no shutdown handler runs
    return done_id, done_msgs, killed_id


def _check_killed_session(c, h, killed_id):
    """After the restart, the killed session is ``interrupted`` with its stored moves (>= 2)
    and no result."""
    st = c.get(f"{API}/simulation/{killed_id}/status", headers=h).json()
    assert st["status"] == "interrupted" and st["moves"] >= 2
    assert "stopped" in st["error"]
    rep = c.get(f"{API}/simulation/{killed_id}", headers=h).json()
    assert rep["result"] is None and len(rep["messages"]) == st["moves"]


def _check_finished_session(c, srv2, h, done_id, done_msgs, killed_id):
    """After the restart, the finished session is intact: status, transcript, stream, and an
    export of both sessions. Returns the finished session's report."""
    st = c.get(f"{API}/simulation/{done_id}/status", headers=h).json()
    assert st["status"] == "completed"
    rep = c.get(f"{API}/simulation/{done_id}", headers=h).json()
    assert rep["messages"] + [rep["result"]] == done_msgs
    again, code = asyncio.run(stream_all(srv2, done_id, srv2.tokens["alice"]))
    assert again == done_msgs and code == 1000
    r = c.post(f"{API}/metrics/export", json={"session_ids": [done_id, killed_id],
                                              "format": "json"}, headers=h)
    assert r.status_code == 201
    doc = c.get(r.json()["download_url"], headers=h).json()
    assert [s["status"] for s in doc["sessions"]] == ["completed", "interrupted"]
    return rep


async def _sigterm_while_streaming(srv2, live_id):
    """Open ``live_id``'s stream, SIGTERM the server after the first message, and read until
    the socket closes; returns ``(first message, close code)``."""
    url = (f"{srv2.ws_url}{API}/simulation/{live_id}/stream"
           f"?token={srv2.tokens['alice']}")
    async with websockets.connect(url) as ws:
        first = json.loads(await ws.recv())
        srv2.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass
        return first, ws.close_code


def test_restart_marks_interrupted_and_keeps_finished(tmp_path):
    data = tmp_path / "data"
    done_id, done_msgs, killed_id = _finish_one_then_kill_mid_session(data)

    srv2 = start_server(data)
    try:
        with httpx.Client(base_url=srv2.url, timeout=60) as c:
            h = srv2.headers("alice") if srv2.token("alice", "alice-password") else None
            _check_killed_session(c, h, killed_id)
            rep = _check_finished_session(c, srv2, h, done_id, done_msgs, killed_id)

            # The interrupted session streams its stored moves, then says it was interrupted.
            msgs, code = asyncio.run(stream_all(srv2, killed_id, srv2.tokens["alice"]))
            assert code == 1000 and msgs[-1]["type"] == "SIMULATION_INTERRUPTED"
            assert len(msgs) - 1 == len(rep["messages"]) or len(msgs) - 1 >= 2

            # New sessions work after the restart; a graceful stop interrupts running ones.
            live_id = _start(c, srv2, seed=3, move_delay_s=1.0)
            first, code = asyncio.run(_sigterm_while_streaming(srv2, live_id))
            assert first["type"] == "MOVE"
            # uvicorn closes open WebSockets with 1012 (service restart) when it stops.
            assert code in (1000, 1012)
            srv2.proc.wait(30)
    finally:
        srv2.stop()

    # The stopped server marked the session itself (no restart needed to see it).
    from serve.db import Database, SimSession

    db = Database(f"sqlite:///{data / 'eqx.db'}")
    with db.session() as s:
        assert s.get(SimSession, live_id).status == "interrupted"
    db.dispose()
