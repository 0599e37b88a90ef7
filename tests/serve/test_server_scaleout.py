"""Several workers on a real Redis and PostgreSQL (started by the fixtures, see services.py).

Two ``eqx serve`` processes on different ports share one Redis and one PostgreSQL: a test picks
which worker a request or a WebSocket goes to, so each cross-worker path is exercised for sure
(``eqx serve --workers 2``, where the kernel picks, runs the shared-state modules in the second
run of ``make test``). Then the faults: a worker killed with SIGKILL, Redis restarted, PostgreSQL
stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time

import httpx
import pytest
import websockets
from server_helpers import SIM, server_env, start_server, stop_process, stream_all, with_users
from services import missing_services, start_postgres, start_redis

pytestmark = [pytest.mark.scaleout,
              pytest.mark.skipif(missing_services() is not None,
                                 reason=missing_services() or "")]

SECRET = "scale-out-test-secret-" + "x" * 32
API = "/api/v1"


def shared_env(redis_url: str, db_url: str, **extra: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "DATABASE_URL": db_url, "EQX_SECRET_KEY": SECRET,
            "EQX_WORKER_TTL_S": "2", **extra}


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    root = tmp_path_factory.mktemp("scaleout")
    r = start_redis(root / "redis")
    pg = start_postgres(root / "pg")
    yield root, r, pg
    pg.stop("immediate")
    r.stop()


@pytest.fixture(scope="module")
def pair(backends):
    """Workers A and B (separate processes, as on two machines) on the module's services."""
    root, r, pg = backends
    env = shared_env(r.url, pg.url)
    a = with_users(start_server(root / "a" / "data", **env))
    b = start_server(root / "b" / "data", **env)
    b.tokens = dict(a.tokens)  # one secret: a token from A works on B
    yield a, b
    a.stop()
    b.stop()


def start(srv, **fields) -> str:
    r = httpx.post(f"{srv.url}{API}/simulation/start", json={**SIM, **fields},
                   headers=srv.headers(), timeout=60)
    assert r.status_code == 201, r.text
    return r.json()["session_id"]


def stored_moves(srv, sid: str) -> list[dict]:
    r = httpx.get(f"{srv.url}{API}/simulation/{sid}", headers=srv.headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def moves_of(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["type"] == "MOVE"]


def test_a_stream_on_one_worker_follows_a_session_another_runs(pair):
    a, b = pair
    sid = start(a, move_delay_s=0.05)
    from_b, code = asyncio.run(stream_all(b, sid, a.token()))
    assert code == 1000
    assert from_b[-1]["type"] == "SIMULATION_COMPLETE"
    # Every move once, in order, and exactly the stored ones.
    assert [m["seq"] for m in moves_of(from_b)] == list(range(len(moves_of(from_b))))
    assert moves_of(from_b) == stored_moves(b, sid)
    # A reconnect to the other worker replays the same session from the database.
    from_a, _ = asyncio.run(stream_all(a, sid, a.token()))
    assert from_a == from_b


def test_a_config_frame_reaches_the_worker_that_runs_the_session(pair):
    a, b = pair
    sid = start(a, supplier_style="aggressive", max_rounds=6)

    async def go():
        url = f"{b.ws_url}{API}/simulation/{sid}/stream"
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": a.token()}))
            await ws.send(json.dumps({"type": "config", "supplier_style": "analytical"}))
            return [json.loads(m) async for m in ws]

    out = asyncio.run(asyncio.wait_for(go(), 60))
    assert out[-1]["type"] == "SIMULATION_COMPLETE"
    replay = httpx.get(f"{a.url}{API}/simulation/{sid}", headers=a.headers(), timeout=30).json()
    assert replay["request"]["supplier_style"] == "analytical"


def test_a_person_plays_from_another_worker(pair):
    a, b = pair
    sid = start(a, supplier_policy="human", max_rounds=6)

    async def go():
        url = f"{b.ws_url}{API}/simulation/{sid}/stream"
        out = []
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": a.token()}))
            await ws.send(json.dumps({"type": "config"}))
            async for raw in ws:
                msg = json.loads(raw)
                out.append(msg)
                if msg["type"] == "YOUR_TURN":
                    # An invalid move first: the owner's ERROR comes back through B.
                    await ws.send(json.dumps({"type": "move", "action": "COUNTER",
                                              "offer": {"price": -5}}))
                    err = json.loads(await ws.recv())
                    out.append(err)
                    assert err["type"] == "ERROR" and err["field"] == "offer.price"
                    await ws.send(json.dumps({"type": "move", "action": "WALK_AWAY"}))
        return out

    out = asyncio.run(asyncio.wait_for(go(), 60))
    assert out[-1]["type"] == "SIMULATION_COMPLETE"
    assert out[-1]["deal_reached"] is False and out[-1]["end"] == "walk_away"
    first = moves_of(out)[0]
    assert first["human"] is True and first["action"] == "WALK_AWAY" and first["via"] == "form"


def test_rate_limits_are_shared_by_the_workers(backends):
    root, r, pg = backends
    env = shared_env(r.url, pg.url, EQX_RATE_LIMIT_PER_MINUTE="6", EQX_RATE_LIMIT_BURST="6")
    a = with_users(start_server(root / "la" / "data", **env), ("carol",))
    b = start_server(root / "lb" / "data", **env)
    try:
        # with_users spent one request of carol's (a login is not counted: a status call is).
        token = a.token("carol")
        hdr = {"Authorization": f"Bearer {token}"}
        codes = []
        for i in range(10):
            srv = a if i % 2 else b
            codes.append(httpx.get(f"{srv.url}{API}/simulations", headers=hdr,
                                   timeout=30).status_code)
        assert codes.count(200) == 6, codes  # six in all, not six per worker
        assert codes[6:] == [429] * 4
    finally:
        a.stop()
        b.stop()


def test_session_caps_hold_across_workers(backends):
    root, r, pg = backends
    env = shared_env(r.url, pg.url, EQX_MAX_RUNNING_SESSIONS_PER_USER="3")
    a = with_users(start_server(root / "ca" / "data", **env), ("dave",))
    b = start_server(root / "cb" / "data", **env)
    try:
        hdr = {"Authorization": f"Bearer {a.token('dave')}"}

        async def burst():
            async with httpx.AsyncClient(timeout=60) as c:
                return await asyncio.gather(*(
                    c.post(f"{(a, b)[i % 2].url}{API}/simulation/start", headers=hdr,
                           json={**SIM, "move_delay_s": 5.0, "max_rounds": 4})
                    for i in range(10)))

        codes = sorted(res.status_code for res in asyncio.run(burst()))
        assert codes == [201] * 3 + [429] * 7, codes
    finally:
        a.stop()
        b.stop()


def test_more_workers_than_one_need_redis_and_postgres(tmp_path):
    env = server_env(tmp_path / "data", EQX_WORKERS="2")
    r = subprocess.run([sys.executable, "-m", "eqx_jax.cli", "serve"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "REDIS_URL" in r.stderr
    env = server_env(tmp_path / "data", EQX_WORKERS="2", REDIS_URL="redis://127.0.0.1:1")
    r = subprocess.run([sys.executable, "-m", "eqx_jax.cli", "serve"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "DATABASE_URL=postgresql" in r.stderr


def test_migrations_run_once_however_many_workers_start(tmp_path):
    pg = start_postgres(tmp_path / "pg")
    try:
        code = ("import sys; from serve.db import Database; d = Database(sys.argv[1]); "
                "d.migrate(); d.dispose()")
        procs = [subprocess.Popen([sys.executable, "-c", code, pg.url],
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, errors
        import sqlalchemy as sa

        engine = sa.create_engine(pg.url)
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
        engine.dispose()
    finally:
        pg.stop("immediate")


# ------------------------------------------------------------------------------ faults
@contextlib.contextmanager
def fresh_world(tmp_path, servers: int = 2, trainers: int = 0, **extra: str):
    """A Redis, a PostgreSQL and ``servers`` servers on them (the first with the users, the
    others sharing its tokens), ``trainers`` ``eqx worker`` processes of the first; all stopped
    at the end, whatever state a fault left them in."""
    r = start_redis(tmp_path / "redis")
    pg = start_postgres(tmp_path / "pg")
    env = shared_env(r.url, pg.url, **extra)
    started = []
    try:
        started.append(with_users(start_server(tmp_path / "a" / "data", **env)))
        for i in range(1, servers):
            started.append(start_server(tmp_path / f"s{i}" / "data", **env))
            started[-1].tokens = dict(started[0].tokens)
        for _ in range(trainers):
            started[0].start_trainer()
        yield r, pg, started
    finally:
        for srv in started:
            srv.stop()
        pg.stop("immediate")
        r.stop()


def follow_all(srv, sids: list[str], token: str) -> list[tuple[list[dict], int | None]]:
    async def go():
        return await asyncio.gather(*(stream_all(srv, s, token, timeout=120) for s in sids))

    return asyncio.run(go())


def test_a_killed_worker_s_sessions_end_interrupted_with_no_move_lost(tmp_path):
    with fresh_world(tmp_path) as (_, _, (a, b)):
        sids = [start(a, move_delay_s=0.4, max_rounds=40) for _ in range(4)]
        results: list = []

        async def watch():
            return await asyncio.gather(*(stream_all(b, s, a.token(), timeout=120)
                                          for s in sids))

        def moves_so_far(sid: str) -> int:
            return httpx.get(f"{b.url}{API}/simulation/{sid}/status", headers=a.headers(),
                             timeout=30).json()["moves"]

        async def kill_soon():
            # Once every session has played a couple of moves (the first includes compiling).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                counts = [await asyncio.to_thread(moves_so_far, s) for s in sids]
                if min(counts) >= 2:
                    break
                await asyncio.sleep(0.2)
            a.proc.send_signal(signal.SIGKILL)

        async def both():
            out, _ = await asyncio.gather(watch(), kill_soon())
            results.extend(out)

        asyncio.run(both())
        for sid, (msgs, code) in zip(sids, results, strict=True):
            assert code == 1000
            assert msgs[-1]["type"] == "SIMULATION_INTERRUPTED", msgs[-1]
            streamed = moves_of(msgs)
            assert streamed, "the session was killed before its first move"
            # No move lost or duplicated: what the client got is exactly what was stored.
            assert [m["seq"] for m in streamed] == list(range(len(streamed)))
            assert streamed == stored_moves(b, sid)
            status = httpx.get(f"{b.url}{API}/simulation/{sid}/status", headers=a.headers(),
                               timeout=30).json()
            assert status["status"] == "interrupted"
            assert "worker" in status["error"]


def test_sessions_go_on_through_a_redis_restart(tmp_path):
    with fresh_world(tmp_path) as (r, _, (a, b)):
        sids = [start(a, move_delay_s=0.3, max_rounds=20) for _ in range(3)]
        results: list = []

        async def restart_soon():
            await asyncio.sleep(1.5)
            await asyncio.to_thread(r.stop)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(r.start)

        async def both():
            out, _ = await asyncio.gather(
                asyncio.gather(*(stream_all(b, s, a.token(), timeout=120) for s in sids)),
                restart_soon())
            results.extend(out)

        asyncio.run(both())
        for sid, (msgs, code) in zip(sids, results, strict=True):
            assert code == 1000
            assert msgs[-1]["type"] in ("SIMULATION_COMPLETE", "SIMULATION_INTERRUPTED")
            streamed = moves_of(msgs)
            assert [m["seq"] for m in streamed] == list(range(len(streamed)))
            assert streamed == stored_moves(b, sid)
        assert all(m[-1]["type"] == "SIMULATION_COMPLETE" for m, _ in results), \
            [m[-1] for m, _ in results]
        # And the workers are back on Redis.
        health = httpx.get(f"{a.url}/health", timeout=30).json()
        assert health["redis"] == "connected"


def test_writes_answer_503_while_postgres_is_down_and_recover(tmp_path):
    with fresh_world(tmp_path, servers=1, EQX_HEALTH_CACHE_S="0",
                     EQX_TOKEN_CACHE_S="300") as (_, pg, (a,)):
        assert httpx.get(f"{a.url}{API}/simulations", headers=a.headers(),
                         timeout=30).status_code == 200
        pg.stop("fast")
        res = httpx.post(f"{a.url}{API}/simulation/start", json=SIM, headers=a.headers(),
                         timeout=60)
        assert res.status_code == 503, res.text
        assert res.headers["Retry-After"] == "5"
        assert res.json()["dependency"] == "database"
        health = httpx.get(f"{a.url}/health", timeout=30).json()
        assert health["database"] == "error" and health["status"] == "degraded"
        assert health["redis"] == "connected"
        pg.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            res = httpx.post(f"{a.url}{API}/simulation/start", json=SIM, headers=a.headers(),
                             timeout=60)
            if res.status_code == 201:
                break
            time.sleep(0.5)
        assert res.status_code == 201, res.text
        assert httpx.get(f"{a.url}/health", timeout=30).json()["database"] == "connected"


# ------------------------------------------------------------------------------ training jobs
#: ~400 updates of the tiny job config: long enough to kill its trainer after a checkpoint.
RETRY_JOB = {"total_timesteps": 64 * 16 * 400, "num_envs": 64, "num_steps": 16, "hidden": [16]}


def _job(srv, job_id: str) -> dict:
    return httpx.get(f"{srv.url}{API}/agent/jobs/{job_id}", headers=srv.headers(),
                     timeout=30).json()


def _wait_job(srv, job_id: str, pred, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = _job(srv, job_id)
        if pred(st):
            return st
        time.sleep(0.2)
    raise AssertionError(f"job {job_id}: {st}")


def _submit(srv, config: dict) -> str:
    r = httpx.post(f"{srv.url}{API}/agent/train", headers=srv.headers(), timeout=60,
                   json={"agent_type": "both", "algorithm": "ppo", "training_config": config})
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def _metrics_lines(srv, job_id: str) -> int:
    path = srv.data_dir / "jobs" / job_id / "metrics.jsonl"
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def test_a_killed_trainer_is_retried_from_its_checkpoint(tmp_path):
    with fresh_world(tmp_path, servers=1, trainers=1) as (_, _, (a,)):
        job_id = _submit(a, RETRY_JOB)
        st = _wait_job(a, job_id, lambda s: s["status"] == "running" and s["updates_done"] >= 20)
        record = json.loads((a.data_dir / "jobs" / f"{job_id}.trainer.json").read_text())
        import os

        os.kill(record["pid"], signal.SIGKILL)
        st = _wait_job(a, job_id, lambda s: s["status"] in ("completed", "failed"))
        assert st["status"] == "completed", (st, a.trainer_log())
        assert st["attempts"] == 2 and st["updates_done"] == st["total_updates"]
        # Resumed, not restarted: one metrics line per update, none repeated or missing.
        assert _metrics_lines(a, job_id) == st["total_updates"]
        assert "killed by signal 9; retrying from its last checkpoint" in a.trainer_log()

def test_a_killed_eqx_worker_s_job_is_taken_over_by_another(tmp_path):
    with fresh_world(tmp_path, servers=1, trainers=1) as (_, _, (a,)):
        job_id = _submit(a, RETRY_JOB)
        _wait_job(a, job_id, lambda s: s["status"] == "running" and s["updates_done"] >= 20)
        record = json.loads((a.data_dir / "jobs" / f"{job_id}.trainer.json").read_text())
        a.start_trainer()  # a second trainer worker, idle until the first dies
        time.sleep(3.0)
        a.trainers[0].send_signal(signal.SIGKILL)
        a.trainers[0].wait(10)
        st = _wait_job(a, job_id, lambda s: s["status"] in ("completed", "failed"))
        assert st["status"] == "completed", (st, a.trainer_log(1))
        assert st["attempts"] == 2
        assert "stopped; retrying from its last checkpoint" in a.trainer_log(1)
        assert _metrics_lines(a, job_id) == st["total_updates"]
        import psutil

        assert not psutil.pid_exists(record["pid"]) or \
            psutil.Process(record["pid"]).status() == psutil.STATUS_ZOMBIE

def test_a_job_survives_a_restart_of_the_api_worker(tmp_path):
    with fresh_world(tmp_path, servers=1, trainers=1) as (r, pg, servers):
        a = servers[0]
        job_id = _submit(a, RETRY_JOB)
        _wait_job(a, job_id, lambda s: s["status"] == "running" and s["updates_done"] >= 5)
        stop_process(a.proc)  # the API worker only: its eqx worker trains on
        a2 = start_server(a.data_dir, **shared_env(r.url, pg.url))
        a2.tokens = dict(a.tokens)
        servers.append(a2)
        st = _wait_job(a2, job_id, lambda s: s["status"] in ("completed", "failed"))
        assert st["status"] == "completed" and st["attempts"] == 1, st
        assert _metrics_lines(a2, job_id) == st["total_updates"]
