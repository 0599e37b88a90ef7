"""Training jobs (to completion on a tiny config), policy metadata and download, playing trained
policies, and the default policy registered from a run directory at startup."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from server_helpers import SIM, make_policy_run, start_server, stream_all, with_users

# Also run on 2 workers sharing Redis and PostgreSQL (make test's second run).
pytestmark = pytest.mark.shared_state

API = "/api/v1"
TINY = {"total_timesteps": 4096, "num_envs": 64, "num_steps": 16, "hidden": [16]}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("eqx-jobs")
    run = make_policy_run(root / "runs" / "default")
    s = with_users(start_server(root / "data", EQX_DEFAULT_POLICY_DIR=str(run)))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def job(srv):
    """Submit the tiny training job first, so it trains while other tests run."""
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        r = c.post(f"{API}/agent/train", headers=srv.headers("alice"), json={
            "agent_type": "both", "algorithm": "PPO", "training_config": TINY})
    assert r.status_code == 202, r.text
    return r.json()


def test_job_is_queued_with_an_estimate(job):
    assert job["status"] == "queued" and job["job_id"]
    # (30 s overhead + 4096 steps / 40,000 steps/s) / 60
    assert job["estimated_duration_minutes"] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("body,loc,text", [
    ({"algorithm": "SAC"}, ["algorithm"], "algorithm 'SAC' is not implemented; allowed: ppo"),
    ({"algorithm": "dqn"}, ["algorithm"], "allowed: ppo"),
    ({"training_config": {"lr": -1}}, ["training_config", "lr"], "lr must be in [1e-06, 1]"),
    ({"training_config": {"num_envs": 1 << 20}}, ["training_config", "num_envs"],
     "num_envs must be an integer in [1, 8192], got 1048576"),
    ({"training_config": {"hidden": [1 << 20]}}, ["training_config", "hidden"],
     "hidden (layer width) must be an integer in [1, 1024]"),
    ({"training_config": {"seed": 2**40}}, ["training_config", "seed"],
     "seed must be an integer in [0, 2147483647]"),
    ({"training_config": {"env": {"max_rounds": 0}}}, ["training_config", "env", "max_rounds"],
     "max_rounds must be an integer in [1, 100], got 0"),
    ({"training_config": {"no_such_knob": 1, "num_epochs": 3}}, ["training_config"],
     "unknown training_config key(s) ['no_such_knob', 'num_epochs']"),
    ({"training_config": {"total_timesteps": 10**8}}, ["training_config"],
     "total_timesteps x num_seeds must be at most 50000000"),
    ({"training_config": {"num_minibatches": 3}}, ["training_config"],
     "num_minibatches must divide"),
    ({"agent_type": "supplier", "training_config": {"opponent": "self"}}, ["training_config"],
     "classic negotiator"),
    ({"agent_type": "middleman"}, ["agent_type"], ""),
])
def test_bad_training_requests_are_422(srv, job, body, loc, text):
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        r = c.post(f"{API}/agent/train", headers=srv.headers("alice"),
                   json={"agent_type": "both", "algorithm": "ppo", **body})
    assert r.status_code == 422, r.text
    err = r.json()["detail"][0]
    assert err["loc"] == ["body", *loc] and text in err["msg"], err


def test_founding_design_training_request_is_accepted_then_cancelled(srv, job):
    """The founding design's request, verbatim: its keys are mapped (num_iterations PPO
    updates of 2,048 envs x 8 steps, learning_rate -> lr); queued behind the tiny job, it is
    cancelled (DELETE), then a second DELETE is a conflict and nobody else may cancel it."""
    founding = {"agent_type": "supplier", "algorithm": "PPO", "training_config": {
        "num_iterations": 1000, "learning_rate": 0.0003, "gamma": 0.99}}
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        h = srv.headers("alice")
        r = c.post(f"{API}/agent/train", headers=h, json=founding)
        assert r.status_code == 202, r.text
        body = r.json()
        assert set(body) == {"job_id", "status", "estimated_duration_minutes"}
        assert body["status"] == "queued"
        # (30 s + 1000 x 16,384 env steps / 40,000 per s) / 60
        assert body["estimated_duration_minutes"] == pytest.approx(7.33, abs=0.01)
        jid = body["job_id"]
        st = c.get(f"{API}/agent/jobs/{jid}", headers=h).json()
        assert (st["agent_type"], st["algorithm"], st["total_updates"]) == ("supplier", "ppo",
                                                                            1000)
        assert c.delete(f"{API}/agent/jobs/{jid}", headers=srv.headers("bob")).status_code == 404
        r = c.delete(f"{API}/agent/jobs/{jid}", headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled" and r.json()["finished_at"]
        r = c.delete(f"{API}/agent/jobs/{jid}", headers=h)
        assert r.status_code == 409 and "already cancelled" in r.json()["detail"]
        assert c.delete(f"{API}/agent/jobs/nope", headers=h).status_code == 404


def test_openapi_declares_the_algorithms_bounds_and_statuses(srv):
    doc = httpx.get(f"{srv.url}/openapi.json", timeout=30).json()
    schemas = doc["components"]["schemas"]
    assert schemas["TrainRequest"]["properties"]["algorithm"]["enum"] == ["ppo", "PPO"]
    num_envs = schemas["TrainingConfig"]["properties"]["num_envs"]["anyOf"][0]
    assert (num_envs["minimum"], num_envs["maximum"]) == (1, 8192)
    assert "cancelled" in schemas["JobStatus"]["properties"]["status"]["enum"]
    paths = doc["paths"]
    declared = {
        ("post", "/api/v1/agent/train"): {"202", "401", "413", "422", "429"},
        ("get", "/api/v1/agent/jobs/{job_id}"): {"200", "401", "404", "422", "429"},
        ("delete", "/api/v1/agent/jobs/{job_id}"): {"200", "401", "404", "409", "422", "429"},
        ("post", "/api/v1/metrics/export"): {"201", "401", "404", "413", "422", "429"},
        ("get", "/api/v1/metrics/export/{export_id}"): {"200", "401", "404", "410", "422", "429"},
        ("post", "/api/v1/tournament"): {"200", "401", "413", "422", "429"},
    }
    for (method, path), codes in declared.items():
        assert codes <= set(paths[path][method]["responses"]), (method, path)


def test_default_policy_from_the_run_directory(srv):
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        h = srv.headers("alice")
        health = c.get("/health", headers=h).json()["details"]
        assert any(p["agent_id"] == "default" for p in health["policies"])
        info = c.get(f"{API}/agent/default/policy", headers=h).json()
        assert info["agent_type"] == "both" and info["algorithm"] == "PPO"
        assert info["roles"] == ["supplier", "retailer"] and info["source"] == "run"
        assert info["performance_metrics"]["deal_rate"] == 0.5
        assert info["performance_metrics"]["average_rounds"] == 3.0
        assert info["download_url"] == f"{API}/agent/default/download"
        # Sessions without a policy choice play the default policy on both sides.
        r = c.post(f"{API}/simulation/start", json=SIM, headers=h)
        assert r.status_code == 201
        assert r.json()["supplier_policy"] == r.json()["retailer_policy"] == "default"
        msgs, code = asyncio.run(stream_all(srv, r.json()["session_id"], srv.tokens["alice"]))
        assert code == 1000 and msgs[-1]["type"] == "SIMULATION_COMPLETE"
        # A trained policy can face a classic negotiator.
        r = c.post(f"{API}/simulation/start", headers=h, json={
            **SIM, "retailer_policy": "tit_for_tat", "deterministic": False, "seed": 9})
        assert r.json()["supplier_policy"] == "default"
        msgs, code = asyncio.run(stream_all(srv, r.json()["session_id"], srv.tokens["alice"]))
        assert code == 1000 and msgs[-1]["retailer_policy"] == "tit_for_tat"


def test_policy_download_is_the_exported_file(srv, tmp_path):
    from eqx_jax.train import load_policy

    with httpx.Client(base_url=srv.url, timeout=60) as c:
        r = c.get(f"{API}/agent/default/download", headers=srv.headers("bob"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    path = tmp_path / "p.eqx"
    path.write_bytes(r.content)
    config, params = load_policy(path)
    assert config.hidden == (8,) and set(params) == {"supplier", "retailer"}


def test_training_job_runs_to_completion_and_registers_a_policy(srv, job):
    jid = job["job_id"]
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        h = srv.headers("alice")
        # Someone else's job is not visible.
        assert c.get(f"{API}/agent/jobs/{jid}", headers=srv.headers("bob")).status_code == 404
        seen, deadline = [], time.time() + 240
        while time.time() < deadline:
            st = c.get(f"{API}/agent/jobs/{jid}", headers=h).json()
            seen.append(st["status"])
            if st["status"] in ("completed", "failed"):
                break
            time.sleep(1.0)
        assert st["status"] == "completed", st
        # It went through "running" (a fast job on an idle machine may finish between two
        # polls, so the record says so, not the polls): started, then finished; and the polls
        # saw the statuses in that order.
        assert st["started_at"] is not None and st["started_at"] <= st["finished_at"]
        order = ["queued", "running", "completed"]
        assert [order.index(x) for x in seen] == sorted(order.index(x) for x in seen)
        assert st["progress"] == 1.0 and st["updates_done"] == st["total_updates"] == 4
        assert st["last_metrics"]["env_steps"] == 4096
        pid = st["policy_id"]
        assert pid == jid

        info = c.get(f"{API}/agent/{pid}/policy", headers=h).json()
        assert info["source"] == "job" and info["job_id"] == jid
        assert info["config"]["total_timesteps"] == 4096
        assert 0 <= info["performance_metrics"]["deal_rate"] <= 1
        assert c.get(info["download_url"], headers=h).status_code == 200

        # The new policy plays, on both sides and against a negotiator.
        r = c.post(f"{API}/simulation/start", headers=h, json={
            **SIM, "supplier_policy": pid, "retailer_policy": "boulware", "max_rounds": 6})
        assert r.status_code == 201, r.text
        msgs, code = asyncio.run(stream_all(srv, r.json()["session_id"], srv.tokens["alice"]))
        assert code == 1000 and msgs[-1]["type"] == "SIMULATION_COMPLETE"
        assert msgs[-1]["supplier_policy"] == pid
