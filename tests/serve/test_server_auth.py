"""Secrets, revocable tokens and login limits: the generated secret (file mode, reuse across a
restart, EQX_SECRET_KEY), no constant of the source signs a token the server accepts, logout and
password change revoke (HTTP and WebSocket), per-address and per-account login limits with
X-Forwarded-For believed only from trusted proxies, the bounded password-check pool."""

from __future__ import annotations

import ast
import asyncio
import base64
import hashlib
import hmac
import json
import stat
import threading
import time

import httpx
import pytest
import websockets
from server_helpers import ADMIN, REPO, SIM, start_server, with_users
from websockets.exceptions import ConnectionClosed

# Also run on 2 workers sharing Redis and PostgreSQL (make test's second run).
pytestmark = pytest.mark.shared_state

API = "/api/v1"


def hs256(claims: dict, key: bytes) -> str:
    """A JWT signed with ``key`` by hand (PyJWT refuses empty keys; any key must be tried)."""
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def admin_claims(uid: int = 1) -> dict:
    now = int(time.time())
    return {"sub": ADMIN[0], "uid": uid, "adm": True, "iat": now, "exp": now + 3600,
            "jti": "forged", "gen": 0}


def source_constants() -> set[bytes]:
    """Every str and bytes literal of the server and the core library."""
    found: set[bytes] = set()
    for package in ("serve", "eqx_jax"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
                    v = node.value
                    found.add(v.encode() if isinstance(v, str) else v)
    return found


def login(client: httpx.Client, user: str, password: str, **headers: str) -> httpx.Response:
    return client.post(f"{API}/auth/login", json={"username": user, "password": password},
                       headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------------- without a server
def test_secret_file_is_private_reused_and_agreed_on(tmp_path, caplog):
    from serve.auth import load_or_create_secret
    from serve.settings import SettingsError

    path = tmp_path / "data" / "secret_key"
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(load_or_create_secret(path)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results[0]) >= 32  # one secret, whoever came first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # no temporary file left
    assert load_or_create_secret(path) == results[0]  # reused

    path.chmod(0o644)
    assert load_or_create_secret(path) == results[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and "readable by others" in caplog.text
    path.write_text("short\n")
    with pytest.raises(SettingsError, match="shorter than 32"):
        load_or_create_secret(path)


def test_auth_settings_bounds_and_parsing(monkeypatch):
    from pydantic import ValidationError

    from serve.settings import Settings, env_var_name

    monkeypatch.setenv("EQX_TRUSTED_PROXIES", "10.0.0.1, 172.16.0.0/12")
    assert Settings().trusted_proxies == ["10.0.0.1", "172.16.0.0/12"]
    monkeypatch.setenv("EQX_TRUSTED_PROXIES", '["::1"]')
    assert Settings().trusted_proxies == ["::1"]
    monkeypatch.delenv("EQX_TRUSTED_PROXIES")
    assert Settings().trusted_proxies == []  # trust nobody by default
    for env, value, needle in [("EQX_TRUSTED_PROXIES", "10.0.0.1,proxy.local", "proxy.local"),
                               ("EQX_TOKEN_TTL_S", "86401", "86400"),
                               ("EQX_LOGIN_HASH_WORKERS", "0", "1"),
                               ("EQX_SECRET_KEY", "y" * 31, "32")]:
        monkeypatch.setenv(env, value)
        with pytest.raises(ValidationError) as exc:
            Settings()
        assert env_var_name(exc.value) == env and needle in str(exc.value)
        monkeypatch.delenv(env)
    s = Settings()
    assert s.token_ttl_s == 3600 and s.secret_key is None
    assert "y" * 32 not in repr(Settings(secret_key="y" * 32))  # a SecretStr: not in reprs


def test_migration_adds_the_token_columns_to_an_existing_database(tmp_path):
    from alembic import command
    from sqlalchemy import inspect, text

    from serve.db import Database, alembic_config

    db = Database(f"sqlite:///{tmp_path / 'eqx.db'}")
    with db.engine.begin() as conn:  # a database of the first schema, with a user
        cfg = alembic_config(str(db.engine.url))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text("INSERT INTO users (username, password_hash, is_admin, created_at) "
                          "VALUES ('old', 'x', 0, '2026-01-01')"))
    db.migrate()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT token_generation FROM users")).scalar() == 0
        assert "revoked_tokens" in inspect(conn).get_table_names()
    db.dispose()


def test_revocation_check_is_cached_in_memory(tmp_path):
    """Verifying a token reads the database once per user per token_cache_s."""
    from serve import auth
    from serve.db import Database

    db = Database(f"sqlite:///{tmp_path / 'eqx.db'}")
    db.migrate()
    user = auth.create_user(db, "carol", "carol-password")
    tokens = auth.TokenService(db, "k" * 40, ttl_s=600, cache_s=60)
    reads = []
    original = tokens._read_user
    tokens._read_user = lambda uid: reads.append(uid) or original(uid)
    token = tokens.issue(auth.authenticate(db, "carol", "carol-password"))

    async def verify_many(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            await tokens.verify(token)
        return (time.perf_counter() - t0) / n

    per_check = asyncio.run(verify_many(2000))
    assert reads == [user.id]
    assert per_check < 0.005  # seconds; the HS256 check dominates, the revocation part ~10 us
    # This process's revocations act at once, without waiting for the cache.
    tokens.revoke(tokens.decode(token))
    with pytest.raises(auth.AuthError, match="revoked"):
        asyncio.run(tokens.verify(token))
    db.dispose()


def test_revocations_reach_another_process_through_the_database(tmp_path):
    """A server process sees a password change made elsewhere (e.g. by a CLI) once its cache
    period is over; a logout made elsewhere too; a deleted user's tokens are refused."""
    from sqlalchemy import delete

    from serve import auth
    from serve.db import Database, User

    db = Database(f"sqlite:///{tmp_path / 'eqx.db'}")
    db.migrate()
    auth.create_user(db, "erin", "erin-password")
    auth.create_user(db, "fred", "fred-password")
    server = auth.TokenService(db, "k" * 40, ttl_s=600, cache_s=0)
    other = auth.TokenService(db, "k" * 40, ttl_s=600, cache_s=0)
    erin = [server.issue(auth.authenticate(db, "erin", "erin-password")) for _ in range(2)]
    fred = server.issue(auth.authenticate(db, "fred", "fred-password"))
    for token in (*erin, fred):
        asyncio.run(server.verify(token))

    other.revoke(other.decode(erin[0]))
    with pytest.raises(auth.AuthError, match="revoked"):
        asyncio.run(server.verify(erin[0]))
    asyncio.run(server.verify(erin[1]))
    assert auth.set_password(db, "erin", "erin-new-password") == 1  # no old password: admin
    with pytest.raises(auth.AuthError, match="revoked"):
        asyncio.run(server.verify(erin[1]))
    with pytest.raises(auth.AuthError, match="old_password"):
        auth.set_password(db, "erin", "whatever-new", old_password="erin-password")
    with pytest.raises(ValueError, match="at least 8"):
        auth.set_password(db, "erin", "short")
    with db.write() as s:
        s.execute(delete(User).where(User.username == "fred"))
    with pytest.raises(auth.AuthError, match="revoked"):
        asyncio.run(server.verify(fred))
    db.dispose()


# --------------------------------------------------------------------- one server, defaults
@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = with_users(start_server(tmp_path_factory.mktemp("eqx-auth") / "data"),
                        ("alice", "bob"))
    yield server
    server.stop()


def test_no_constant_of_the_source_signs_an_accepted_token(srv):
    constants = source_constants()
    assert len(constants) > 1000
    secret = (srv.data_dir / "secret_key").read_bytes().strip()
    assert secret not in constants
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        # The control: the same claims signed with the server's key are accepted.
        assert c.get(f"{API}/simulations?limit=1",
                     headers=bearer(hs256(admin_claims(), secret))).status_code == 200
        refused = {}
        for key in constants:
            r = c.get(f"{API}/simulations?limit=1", headers=bearer(hs256(admin_claims(), key)))
            refused[r.status_code] = refused.get(r.status_code, 0) + 1
    assert refused == {401: len(constants)}


def test_tokens_are_short_lived_and_carry_an_id(srv):
    import jwt

    with httpx.Client(base_url=srv.url, timeout=30) as c:
        r = login(c, "alice", "alice-password")
    assert r.status_code == 200 and r.json()["expires_in"] == 3600
    claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    assert len(claims["jti"]) >= 16 and claims["gen"] == 0 and claims["sub"] == "alice"


def test_logout_revokes_that_token_only_over_http_and_websocket(srv):
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        keep, drop = (login(c, "bob", "bob-password").json()["access_token"] for _ in range(2))
        sid = c.post(f"{API}/simulation/start", json=SIM, headers=bearer(keep)).json()[
            "session_id"]
        assert c.post(f"{API}/auth/logout", headers=bearer(drop)).status_code == 204
        r = c.get(f"{API}/simulations?limit=1", headers=bearer(drop))
        assert r.status_code == 401 and r.json()["detail"] == "token revoked"
        assert r.headers["www-authenticate"] == "Bearer"
        assert c.post(f"{API}/auth/logout", headers=bearer(drop)).status_code == 401
        assert c.get(f"{API}/simulations?limit=1", headers=bearer(keep)).status_code == 200

    async def ws_close_code(token: str) -> int | None:
        url = f"{srv.ws_url}{API}/simulation/{sid}/stream"
        async with websockets.connect(url, additional_headers=bearer(token)) as ws:
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 30)
            except ConnectionClosed:
                return ws.close_code

    assert asyncio.run(ws_close_code(drop)) == 1008
    assert asyncio.run(ws_close_code(keep)) == 1000  # the whole stream, then a normal close


def test_password_change_revokes_every_token_of_the_user(srv):
    srv.add_user("dora", "dora-password")
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        old = [login(c, "dora", "dora-password").json()["access_token"] for _ in range(2)]
        body = {"old_password": "not-her-password", "new_password": "dora-new-password"}
        r = c.post(f"{API}/auth/password", json=body, headers=bearer(old[0]))
        assert r.status_code == 403 and "old_password" in r.json()["detail"]
        r = c.post(f"{API}/auth/password", json={"old_password": "dora-password",
                                                 "new_password": "short"},
                   headers=bearer(old[0]))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body",
                                                                         "new_password"]
        assert c.get(f"{API}/simulations", headers=bearer(old[1])).status_code == 200

        r = c.post(f"{API}/auth/password", json={**body, "old_password": "dora-password"},
                   headers=bearer(old[0]))
        assert r.status_code == 200, r.text
        fresh = r.json()["access_token"]
        for token in old:
            r = c.get(f"{API}/simulations", headers=bearer(token))
            assert r.status_code == 401 and r.json()["detail"] == "token revoked"
        assert c.get(f"{API}/simulations", headers=bearer(fresh)).status_code == 200
        assert login(c, "dora", "dora-password").status_code == 401
        after = login(c, "dora", "dora-new-password").json()["access_token"]
        assert c.get(f"{API}/simulations", headers=bearer(after)).status_code == 200
        # Other users' tokens are untouched.
        assert c.get(f"{API}/simulations", headers=srv.headers("alice")).status_code == 200


def test_auth_routes_document_their_statuses(srv):
    spec = httpx.get(f"{srv.url}/openapi.json", timeout=30).json()["paths"]
    # (At least: the layers around every route may add theirs, e.g. 400 for a non-JSON body.)
    assert set(spec[f"{API}/auth/login"]["post"]["responses"]) >= {
        "200", "401", "413", "422", "429"}
    assert set(spec[f"{API}/auth/logout"]["post"]["responses"]) >= {"204", "401", "413", "429"}
    assert set(spec[f"{API}/auth/password"]["post"]["responses"]) >= {
        "200", "401", "403", "413", "422", "429"}


# ----------------------------------------------------------------------- restart, own server
def test_secret_is_generated_private_and_survives_a_restart(tmp_path):
    data = tmp_path / "data"
    first = with_users(start_server(data, log_level="info"), ("alice",))
    try:
        secret_file = data / "secret_key"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        secret = secret_file.read_text()
        log = first.log()  # the file is named in the log, the key never
        assert str(secret_file) in log and secret.strip() not in log
        with httpx.Client(base_url=first.url, timeout=30) as c:
            dropped = login(c, "alice", "alice-password").json()["access_token"]
            assert c.post(f"{API}/auth/logout", headers=bearer(dropped)).status_code == 204
    finally:
        first.stop()
    second = start_server(data)
    try:
        assert secret_file.read_text() == secret
        with httpx.Client(base_url=second.url, timeout=30) as c:
            assert c.get(f"{API}/simulations", headers=bearer(first.tokens["alice"])
                         ).status_code == 200
            r = c.get(f"{API}/simulations", headers=bearer(dropped))
            assert r.status_code == 401 and r.json()["detail"] == "token revoked"
    finally:
        second.stop()
    # EQX_SECRET_KEY wins over the file: the file's tokens are then foreign.
    third = start_server(data, EQX_SECRET_KEY="z" * 48)
    try:
        r = httpx.get(f"{third.url}{API}/simulations", headers=bearer(first.tokens["alice"]),
                      timeout=30)
        assert r.status_code == 401 and r.json()["detail"] == "invalid token"
        assert third.token() and secret_file.read_text() == secret
    finally:
        third.stop()


# ------------------------------------------------------------------- login limits, own server
@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("eqx-auth-limits") / "data",
                          EQX_LOGIN_ATTEMPTS_PER_MINUTE="4",
                          EQX_LOGIN_ATTEMPTS_PER_ACCOUNT_PER_MINUTE="3",
                          EQX_TRUSTED_PROXIES="127.0.0.2",
                          EQX_LOGIN_HASH_WORKERS="1", EQX_LOGIN_MAX_PENDING="2")
    for name in ("alice", "bob"):
        server.add_user(name, f"{name}-password")
    yield server
    server.stop()


def from_address(server, local_address: str) -> httpx.Client:
    """A client whose connections come from ``local_address`` (any 127/8 address is local)."""
    return httpx.Client(base_url=server.url, timeout=30,
                        transport=httpx.HTTPTransport(local_address=local_address))


def test_rotating_x_forwarded_for_from_an_untrusted_client_does_not_escape(limited):
    # 127.0.0.1 is not in EQX_TRUSTED_PROXIES (uvicorn alone would trust it by default).
    with from_address(limited, "127.0.0.1") as c:
        codes = [login(c, f"nobody{i}", "whatever-pw", **{"X-Forwarded-For": f"10.9.0.{i}"}
                       ).status_code for i in range(5)]
        assert codes == [401] * 4 + [429]
        r = login(c, "alice", "alice-password", **{"X-Forwarded-For": "10.9.0.99"})
        assert r.status_code == 429 and r.json()["detail"] == (
            "too many login attempts from this address")
        assert 1 <= int(r.headers["retry-after"]) <= 60


def test_account_limit_holds_across_addresses_behind_a_trusted_proxy(limited):
    with from_address(limited, "127.0.0.2") as c:  # the trusted proxy
        codes = [login(c, "alice", "bad-password", **{"X-Forwarded-For": f"10.8.0.{i}"}
                       ).status_code for i in range(3)]
        assert codes == [401] * 3
        r = login(c, "alice", "alice-password", **{"X-Forwarded-For": "10.8.0.50"})
        assert r.status_code == 429 and r.json()["detail"] == (
            "too many login attempts for this account")
        assert int(r.headers["retry-after"]) >= 1
        # The forwarded address is believed: 10.8.0.51 is a fresh address, bob a fresh account.
        assert login(c, "bob", "bob-password", **{"X-Forwarded-For": "10.8.0.51"}
                     ).status_code == 200


def test_password_checks_beyond_the_pool_bound_get_429(limited):
    async def flood() -> list[httpx.Response]:
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")  # the proxy
        async with httpx.AsyncClient(base_url=limited.url, timeout=60, transport=transport) as c:
            return await asyncio.gather(*(
                c.post(f"{API}/auth/login", json={"username": f"flood{i}", "password": "pw-pw-pw"},
                       headers={"X-Forwarded-For": f"10.7.0.{i}"}) for i in range(8)))

    responses = asyncio.run(flood())
    codes = sorted(r.status_code for r in responses)
    assert codes.count(401) >= 2 and 429 in codes, codes
    busy = next(r for r in responses if r.status_code == 429)
    assert "too many logins in progress" in busy.json()["detail"]
    assert busy.headers["retry-after"] == "1"

