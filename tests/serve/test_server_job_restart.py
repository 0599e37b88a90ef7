"""A server killed with SIGKILL while a job trains leaves its trainer running; the next
start-up stops that trainer and marks the job ``interrupted``. The trainer never sees the
server's secrets, and a job past the wall-time limit is stopped and ``failed``."""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import httpx
from job_helpers import API, LONG, TINY, alive, submit, trainer_record, wait_dead, wait_status
from server_helpers import start_server

SECRET = "a-private-secret-for-this-test-0123456789"


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def test_orphaned_trainer_is_stopped_at_start_up_and_wall_time_limit(tmp_path):
    data = tmp_path / "data"
    srv = start_server(data, EQX_SECRET_KEY=SECRET)
    try:
        srv.add_user("alice", "alice-password")
        srv.token("alice", "alice-password")
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            jid = submit(c, srv, "alice", LONG).json()["job_id"]
            wait_status(c, srv, "alice", jid, ("running",))
            record = trainer_record(data, jid)
        pid = record["pid"]
        env = _environ(pid)
        assert not [k for k in env if k.startswith("EQX_")], sorted(env)
        assert SECRET not in Path(f"/proc/{pid}/environ").read_text()
        assert env["JAX_PLATFORMS"] == "cpu" and "PATH" in env
    finally:
        srv.stop(signal.SIGKILL)  # no shutdown handler runs: the trainer is orphaned
    assert alive(pid)

    srv2 = start_server(data, EQX_SECRET_KEY=SECRET, EQX_JOB_MAX_WALL_S="2")
    try:
        srv2.token("alice", "alice-password")
        wait_dead(pid)  # stopped before the server answered /health
        with httpx.Client(base_url=srv2.url, timeout=60) as c:
            st = c.get(f"{API}/agent/jobs/{jid}", headers=srv2.headers("alice")).json()
            assert st["status"] == "interrupted", st
            assert f"its trainer (pid {pid}) was stopped at start-up" in st["error"]
            assert not (data / "jobs" / f"{jid}.trainer.json").exists()
            # This server stops a trainer after 2 s.
            j2 = submit(c, srv2, "alice", TINY).json()["job_id"]
            pid2 = trainer_record(data, j2)["pid"]
            st = wait_status(c, srv2, "alice", j2, ("failed", "completed"), timeout=60)
            assert st["status"] == "failed", st
            assert "wall-time limit of 2 s (EQX_JOB_MAX_WALL_S)" in st["error"]
            ran = (dt.datetime.fromisoformat(st["finished_at"])
                   - dt.datetime.fromisoformat(st["started_at"])).total_seconds()
            assert 2 <= ran < 30
        wait_dead(pid2, timeout=5)
    finally:
        srv2.stop()
