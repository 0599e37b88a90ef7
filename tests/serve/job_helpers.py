"""Helpers of the job tests: submit, wait for a state, find a job's trainer process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import psutil

API = "/api/v1"
#: Trains in seconds (4 updates; start-up and compilation dominate).
TINY = {"total_timesteps": 4096, "num_envs": 64, "num_steps": 16, "hidden": [16]}
#: Runs far longer than any test waits (5,000 updates): it is cancelled or killed.
LONG = {**TINY, "total_timesteps": 64 * 16 * 5000}


def submit(c: httpx.Client, srv, user: str, config: dict, expect: int = 202) -> httpx.Response:
    r = c.post(f"{API}/agent/train", headers=srv.headers(user),
               json={"agent_type": "both", "algorithm": "ppo", "training_config": config})
    assert r.status_code == expect, r.text
    return r


def wait_status(c: httpx.Client, srv, user: str, job_id: str, states: tuple[str, ...],
                timeout: float = 120.0) -> dict:
    """Poll the job until its status is one of ``states``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = c.get(f"{API}/agent/jobs/{job_id}", headers=srv.headers(user)).json()
        if st["status"] in states:
            return st
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {states}: {st}")


def trainer_record(data_dir: Path, job_id: str, timeout: float = 60.0) -> dict:
    """The running trainer's pid file (``<data_dir>/jobs/<id>.trainer.json``)."""
    path = data_dir / "jobs" / f"{job_id}.trainer.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.1)
    raise AssertionError(f"no trainer pid file for job {job_id}")


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent to reap it does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_dead(pid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), f"process {pid} still runs"
