"""The OpenAPI document tells the truth: schemathesis, every check on, against a real
``eqx serve``, finds no failure.

Bounded: ``MAX_EXAMPLES`` generated cases per operation, one fixed seed (the same cases each
run). Training requests are limited to a tiny config by the server's own settings (a job budget
of a few thousand env steps, one job per user, a few seconds of wall time), so that the jobs
schemathesis starts finish or are stopped within the run. Logout and password change are left
out of the generated run because they revoke the token the run uses; their statuses are tested
in test_server_auth.py. The one per-operation setting (schemathesis.toml beside this file) says
why a schema-valid training config may still be a 422.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from server_helpers import start_server

pytest.importorskip("schemathesis")

MAX_EXAMPLES = 10
SEED = 1
EXCLUDED_PATHS = ("/api/v1/auth/logout", "/api/v1/auth/password")


def _st() -> str:
    exe = Path(sys.executable).with_name("st")
    return str(exe) if exe.is_file() else (shutil.which("st") or "st")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("eqx-openapi") / "data",
                     EQX_MAX_JOB_TIMESTEPS="4096", EQX_JOB_MAX_WALL_S="20",
                     EQX_MAX_JOBS_PER_USER="1")
    yield s
    s.stop()


def test_schemathesis_all_checks_pass(srv, tmp_path):
    cmd = [_st(), "--config-file", str(Path(__file__).with_name("schemathesis.toml")), "run",
           f"{srv.url}/openapi.json", "--checks", "all",
           "-H", f"Authorization: Bearer {srv.token()}",
           "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
           "--no-color", "--generation-database", "none", "--request-timeout", "30",
           "--report", "junit", "--report-dir", str(tmp_path)]
    for path in EXCLUDED_PATHS:
        cmd += ["--exclude-path", path]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env={**os.environ, "NO_COLOR": "1"})
    assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-2000:]


def test_every_error_status_is_documented_on_every_operation(srv):
    """The layer-wide statuses (serve.openapi): 400/413 with a body, 401/429 behind auth."""
    import httpx

    spec = httpx.get(f"{srv.url}/openapi.json", timeout=30).json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            if "requestBody" in op:
                assert {"400", "413", "422"} <= codes, (method, path, codes)
            if op.get("security") and path != "/health":
                assert {"401", "429"} <= codes, (method, path, codes)
            if "{" in path:
                assert "404" in codes, (method, path, codes)
    train = spec["components"]["schemas"]["TrainRequest"]["properties"]["algorithm"]
    assert "enum" in train or "$ref" in train or "anyOf" in train


def test_405_names_every_method_of_the_path(srv):
    import httpx

    r = httpx.put(f"{srv.url}/api/v1/agent/jobs/x", headers=srv.headers(), timeout=30)
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "DELETE"}
    # A literal path is its own resource, although "/simulation/{session_id}" matches it too.
    r = httpx.request("OPTIONS", f"{srv.url}/api/v1/simulation/start", headers=srv.headers(),
                      timeout=30)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
