"""Per-user quotas on a server of its own with small ones (429 with Retry-After): queued +
running training jobs, and cancelling them (a running trainer's process group is stopped);
unexpired export files, and the sweeper that deletes expired ones unfetched; comparisons at
once per user."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import httpx
import pytest
from job_helpers import API, LONG, alive, submit, trainer_record, wait_dead, wait_status
from server_helpers import SIM, start_server, with_users

# Also run on 2 workers sharing Redis and PostgreSQL (make test's second run).
pytestmark = pytest.mark.shared_state


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = with_users(start_server(
        tmp_path_factory.mktemp("eqx-quotas") / "data", EQX_MAX_JOBS_PER_USER="2",
        EQX_MAX_CONCURRENT_JOBS="1", EQX_JOB_STOP_GRACE_S="2", EQX_MAX_EXPORTS_PER_USER="2",
        EQX_EXPORT_TTL_S="2", EQX_EXPORT_SWEEP_INTERVAL_S="0.2"))
    yield s
    s.stop()


def test_job_quota_and_cancelling_queued_and_running_jobs(srv):
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        j1 = submit(c, srv, "alice", LONG).json()["job_id"]
        j2 = submit(c, srv, "alice", LONG).json()["job_id"]
        r = submit(c, srv, "alice", LONG, expect=429)
        assert "EQX_MAX_JOBS_PER_USER" in r.json()["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 3600
        jb = submit(c, srv, "bob", LONG).json()["job_id"]  # quotas are per user
        wait_status(c, srv, "alice", j1, ("running",))
        pid = trainer_record(srv.data_dir, j1)["pid"]
        assert alive(pid)
        # A queued job is cancelled without ever running; it frees its quota slot.
        r = c.delete(f"{API}/agent/jobs/{j2}", headers=srv.headers("alice"))
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert r.json()["started_at"] is None
        j4 = submit(c, srv, "alice", LONG).json()["job_id"]
        # Someone else's running job: 404. The owner's: its trainer is gone when DELETE answers.
        assert c.delete(f"{API}/agent/jobs/{j1}", headers=srv.headers("bob")).status_code == 404
        r = c.delete(f"{API}/agent/jobs/{j1}", headers=srv.headers("alice"))
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert not alive(pid)
        assert c.delete(f"{API}/agent/jobs/{j1}",
                        headers=srv.headers("alice")).status_code == 409
        # The next queued job (bob's) starts; an admin may cancel it, running or not.
        r = c.delete(f"{API}/agent/jobs/{jb}", headers=srv.headers())
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        r = c.delete(f"{API}/agent/jobs/{j4}", headers=srv.headers("alice"))
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert wait_status(c, srv, "alice", j1, ("cancelled",))["error"] == "cancelled"
        for jid in (j1, jb, j4):  # no trainer left behind
            path = srv.data_dir / "jobs" / f"{jid}.trainer.json"
            deadline = time.monotonic() + 15
            while path.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not path.exists()
    wait_dead(pid, timeout=1)


def _export(c, srv, user, sid, expect=201):
    r = c.post(f"{API}/metrics/export", headers=srv.headers(user),
               json={"session_ids": [sid], "format": "json"})
    assert r.status_code == expect, r.text
    return r


def test_export_quota_and_the_sweeper_deletes_expired_files(srv):
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        r = c.post(f"{API}/simulation/start", json=SIM, headers=srv.headers("alice"))
        sid = r.json()["session_id"]
        ids = [_export(c, srv, "alice", sid).json()["export_id"] for _ in range(2)]
        files = [srv.data_dir / "exports" / f"{i}.json" for i in ids]
        assert all(f.is_file() for f in files)
        r = _export(c, srv, "alice", sid, expect=429)
        assert "EQX_MAX_EXPORTS_PER_USER" in r.json()["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 2  # until the oldest expires (2 s TTL)
        # Nobody fetches them: the sweeper deletes the files after they expire.
        deadline = time.monotonic() + 15
        while any(f.exists() for f in files) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(f.exists() for f in files)
        r = c.get(f"{API}/metrics/export/{ids[0]}", headers=srv.headers("alice"))
        assert r.status_code == 410
        _export(c, srv, "alice", sid)  # expired exports no longer count


def test_one_comparison_at_a_time_per_user(srv):
    """Two comparisons of one user at once: one runs, the other is a 429; another user's runs
    beside it (each takes over a second: a new jitted batch is compiled per request)."""
    body = {"policy_a": "boulware", "policy_b": "conceder", "num_episodes": 2000}
    barrier = threading.Barrier(3)

    def post(user: str) -> httpx.Response:
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            barrier.wait()
            return c.post(f"{API}/tournament", json=body, headers=srv.headers(user))

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        a1, a2, b = list(pool.map(post, ["alice", "alice", "bob"]))
    assert sorted([a1.status_code, a2.status_code]) == [200, 429], (a1.text, a2.text)
    refused = a1 if a1.status_code == 429 else a2
    assert "EQX_MAX_TOURNAMENTS_PER_USER" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    assert b.status_code == 200, b.text
