"""What the server shows and accepts before any route runs, against a real ``eqx serve``: the
founding design's ``/health`` (state words without a token, details with one, probes cached),
the request-body limit (413 before parsing or auth), the security headers and the dashboard
under its Content-Security-Policy, the docs switch, CORS without credentials, and the founding
design's Quick Start client (scripts/quickstart_client.py) run verbatim."""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from server_helpers import REPO

# Also run on 2 workers sharing Redis and PostgreSQL (make test's second run).
pytestmark = pytest.mark.shared_state

API = "/api/v1"
FOUNDING_HEALTH = {"status", "database", "redis", "ollama", "ray"}


def test_health_without_a_token_is_only_the_founding_state_words(client):
    for path in ("/health", f"{API}/health"):
        h = client.get(path).json()
        assert set(h) == FOUNDING_HEALTH, h
        assert all(isinstance(v, str) and len(v) <= 20 for v in h.values())
    raw = client.get("/health").text
    for leak in ("sqlite", "eqx.db", "/", "127.0.0.1", "port", "default"):
        assert leak not in raw, (leak, raw)
    # A bad token gets the public answer, not an error and not the details.
    bad = client.get("/health", headers={"Authorization": "Bearer not-a-token"}).json()
    assert set(bad) == FOUNDING_HEALTH


def test_health_details_with_a_token_and_paths_only_for_admins(client, server):
    admin = client.get("/health", headers=server.headers()).json()["details"]
    scheme = "postgresql" if server.scaleout else "sqlite:///"
    assert admin["database"]["url"].startswith(scheme)
    user = client.get("/health", headers=server.headers("alice")).json()["details"]
    assert "url" not in user["database"] and user["database"]["status"] == "connected"
    assert set(user["llm"]) <= {"backend", "reachable", "model_present", "stats"}
    assert "sqlite" not in json.dumps(user) and str(server.data_dir) not in json.dumps(user)


def test_health_probes_are_cached_under_a_flood(client, server):
    def probes() -> int:
        return client.get("/health", headers=server.headers()).json()["details"][
            "health_probes"]

    before = probes()
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda _: httpx.get(f"{server.url}/health", timeout=30)
                              .status_code, range(64)))
    elapsed = time.monotonic() - t0
    assert codes == [200] * 64
    # One probe round per started cache interval (health_cache_s, 5 s by default), however
    # many requests arrive in it: 65 requests here.
    assert probes() - before <= 1 + int(elapsed / 5.0), elapsed


def test_request_body_limit_is_checked_before_parsing_and_auth(client, server):
    limit = 1 << 20  # the default max_body_bytes
    big = b'{"username": "' + b"x" * (limit + 10) + b'", "password": "p"}'
    # Content-Length above the limit: 413 at once, for a route without auth too.
    r = client.post(f"{API}/auth/login", content=big,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "max_body_bytes" in r.json()["detail"]
    r = client.post(f"{API}/simulation/start", content=big,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413  # not 401: the body is refused before the token is looked at

    # Chunked (no Content-Length): refused once the limit is passed.
    def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    r = client.post(f"{API}/auth/login", content=chunks(),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    # Within the limit, bodies work as before.
    r = client.post(f"{API}/auth/login", json={"username": "nobody", "password": "wrong-pw"})
    assert r.status_code == 401
    # The server still serves after all that.
    assert client.get("/health").status_code == 200


def test_413_on_a_raw_socket_without_reading_the_body(server):
    """A client announcing 16 MiB gets 413 without sending a byte of it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: 16777216\r\n\r\n")
        reply = s.recv(4096).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply


@pytest.mark.parametrize("path", ["/", f"{API}/meta", "/health", "/static/app.js",
                                  f"{API}/simulations"])
def test_security_headers_everywhere(client, path):
    r = client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"


def test_cors_does_not_allow_credentials(client):
    r = client.options(f"{API}/simulation/start", headers={
        "Origin": "http://allowed.example", "Access-Control-Request-Method": "POST"})
    assert r.headers.get("access-control-allow-origin") == "http://allowed.example"
    assert "access-control-allow-credentials" not in r.headers
    r = client.get("/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_docs_switch_and_production_default():
    from serve.app import create_app
    from serve.settings import Settings

    key = "k" * 40
    prod = create_app(Settings(mode="production", secret_key=key))
    assert prod.docs_url is None and prod.redoc_url is None and prod.openapi_url is None
    dev = create_app(Settings())
    assert dev.docs_url == "/docs" and dev.openapi_url == "/openapi.json"
    forced = create_app(Settings(mode="production", secret_key=key, docs_enabled=True))
    assert forced.docs_url == "/docs"
    off = create_app(Settings(docs_enabled=False))
    assert off.openapi_url is None


def test_founding_quickstart_client_runs_verbatim(server):
    env = {**os.environ, "EQX_URL": server.url, "EQX_USER": "alice",
           "EQX_PASSWORD": "alice-password"}
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "quickstart_client.py")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    moves = [ln for ln in lines if ln.startswith("[")]
    assert moves and moves[0].startswith("[supplier] Round 1: ")
    assert all(ln.startswith(("[supplier] Round ", "[retailer] Round ")) for ln in moves)
    assert lines[-3].startswith("Deal reached: $")
    assert lines[-2].startswith("Rounds: ") and int(lines[-2].split()[-1]) >= 1
    assert lines[-1].startswith("Nash distance: ")


def test_dashboard_runs_under_its_content_security_policy(server):
    """Log in and play one negotiation in Chromium: no CSP violation is reported."""
    playwright = pytest.importorskip("playwright.sync_api")
    from dashboard_helpers import chromium_path, launch, login, start_negotiation, wait_result

    if chromium_path() is None:
        pytest.skip("no chromium")
    violations: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page()
            page.on("console", lambda m: violations.append(m.text)
                    if "Content Security Policy" in m.text else None)
            login(page, server.url, "alice", "alice-password")
            start_negotiation(page)
            assert wait_result(page)
        finally:
            browser.close()
    assert violations == []
