"""Helpers of the server tests: start a real ``eqx serve`` (uvicorn) in a subprocess on a free
port, with a temporary data directory and template phrasing, and talk to it with real HTTP
(httpx) and WebSocket (``websockets``) clients.

(No ``__init__.py`` in tests/serve: as a package it would be named ``serve`` and shadow the
server package; pytest puts this directory on sys.path, so ``import server_helpers`` works.)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
#: Set by conftest.py in the scale-out run: {"redis": RedisServer, "postgres": PostgresServer};
#: then every server the tests start is 2 workers on its own database and Redis db number.
SCALEOUT: dict[str, Any] | None = None
_scaleout_servers = 0
_scaleout_dbs: dict[Path, dict[str, str]] = {}
ADMIN = ("admin", "admin-password-123")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running ``eqx serve`` subprocess."""

    proc: subprocess.Popen
    port: int
    data_dir: Path
    env: dict[str, str]
    log_path: Path
    tokens: dict[str, str] = field(default_factory=dict)
    log_file: Any = None
    #: ``eqx worker`` trainer processes started for this server (scale-out).
    trainers: list[subprocess.Popen] = field(default_factory=list)

    def start_trainer(self, **extra: str) -> subprocess.Popen:
        """An ``eqx worker`` on this server's database, Redis and data directory."""
        log = open(self.data_dir.parent / f"trainer-{len(self.trainers)}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "eqx_jax.cli", "worker"],
                                env={**self.env, **extra}, cwd=self.data_dir.parent,
                                stdout=log, stderr=subprocess.STDOUT)
        self.trainers.append(proc)
        return proc

    def trainer_log(self, i: int = 0) -> str:
        return (self.data_dir.parent / f"trainer-{i}.log").read_text(errors="replace")

    @property
    def scaleout(self) -> bool:
        """Running on Redis (several workers possible) rather than in one process."""
        return bool(self.env.get("REDIS_URL"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return self.env.get("DATABASE_URL") or f"sqlite:///{self.data_dir / 'eqx.db'}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for trainer in self.trainers:
            stop_process(trainer, sig)
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.log_file is not None:
            self.log_file.close()

    def add_user(self, name: str, password: str, *, admin: bool = False) -> None:
        """Create a user directly in the server's database (fast; ``eqx user add`` itself is
        tested in test_server_cli.py)."""
        from serve.auth import create_user
        from serve.db import Database

        db = Database(self.database_url)
        try:
            create_user(db, name, password, is_admin=admin)
        finally:
            db.dispose()

    def add_user_cli(self, name: str, password: str, *, admin: bool = False,
                     ) -> subprocess.CompletedProcess:
        """``eqx user add NAME`` with the password on stdin."""
        cmd = [sys.executable, "-m", "eqx_jax.cli", "user", "add", name] + (
            ["--admin"] if admin else [])
        return subprocess.run(cmd, input=password + "\n", capture_output=True, text=True,
                              env=self.env, cwd=self.data_dir.parent, timeout=120)

    def token(self, name: str = ADMIN[0], password: str | None = None) -> str:
        if name not in self.tokens:
            pw = password or (ADMIN[1] if name == ADMIN[0] else None)
            r = httpx.post(f"{self.url}/api/v1/auth/login",
                           json={"username": name, "password": pw}, timeout=30)
            assert r.status_code == 200, r.text
            self.tokens[name] = r.json()["access_token"]
        return self.tokens[name]

    def headers(self, name: str = ADMIN[0]) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name)}"}


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("EQX_") or k in ("DATABASE_URL", "OLLAMA_HOST", "OLLAMA_MODEL"))}
    env.update({
        "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "JAX_PLATFORMS": "cpu",
        "EQX_DATA_DIR": str(data_dir),
        "EQX_LLM_BACKEND": "template",
        "EQX_ADMIN_USER": ADMIN[0],
        "EQX_ADMIN_PASSWORD": ADMIN[1],
        # No runs/default here: sessions default to the classic negotiators.
        "EQX_DEFAULT_POLICY_DIR": str(data_dir.parent / "no-default-run"),
        "EQX_CORS_ORIGINS": "http://allowed.example",
        "EQX_RATE_LIMIT_PER_MINUTE": "100000",
        "EQX_RATE_LIMIT_BURST": "100000",
        "EQX_LOGIN_ATTEMPTS_PER_MINUTE": "1000",
        "EQX_LOGIN_ATTEMPTS_PER_ACCOUNT_PER_MINUTE": "1000",
    })
    env.update(extra)
    return env


def with_users(srv, names: tuple[str, ...] = ("alice", "bob")):
    """Add users NAME with password "NAME-password" and log each in (tokens cached); ``srv``."""
    for name in names:
        srv.add_user(name, f"{name}-password")
    for name in names:
        srv.token(name, f"{name}-password")
    return srv


def scaleout_env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    """In the scale-out run, a fresh PostgreSQL database and Redis db number for one server
    (so that servers of different settings do not share users or limits)."""
    global _scaleout_servers
    if SCALEOUT is None or "DATABASE_URL" in extra or "REDIS_URL" in extra:
        return {}
    known = _scaleout_dbs.get(data_dir)
    if known is not None:  # the same data directory again (a restart): the same database
        return known
    _scaleout_servers += 1
    n = _scaleout_servers
    if n > 15:
        raise RuntimeError("more than 15 servers on one test Redis (databases 1..15)")
    name = f"eqx_{n}"
    SCALEOUT["postgres"].create_database(name)
    env = {"DATABASE_URL": SCALEOUT["postgres"].url_of(name),
           "REDIS_URL": SCALEOUT["redis"].url.rsplit("/", 1)[0] + f"/{n}"}
    _scaleout_dbs[data_dir] = env
    return env


def start_server(data_dir: Path, *, port: int | None = None, timeout: float = 90.0,
                 log_level: str = "warning", workers: int | None = None,
                 **extra: str) -> Server:
    """Start ``eqx serve`` on ``data_dir`` (``--log-level log_level``, ``--workers workers``)
    and wait until /health answers (from every worker: uvicorn's workers start one by one)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    shared = scaleout_env(data_dir.resolve(), extra)
    if workers is None:
        workers = 2 if shared else 1
    env = server_env(data_dir, **shared, **extra)
    log_path = data_dir.parent / f"server-{port}-{int(time.time() * 1000)}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "eqx_jax.cli", "serve", "--host", "127.0.0.1", "--port",
         str(port), "--log-level", log_level, "--workers", str(workers)],
        env=env, cwd=data_dir.parent, stdout=log_file, stderr=subprocess.STDOUT)
    srv = Server(proc, port, data_dir, env, log_path, log_file=log_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{srv.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{srv.url}/health", timeout=5).status_code == 200:
                if workers > 1:
                    wait_for_workers(srv, workers, deadline)
                if shared:  # the scale-out run: its training jobs need a trainer
                    srv.start_trainer()
                return srv
        time.sleep(0.2)
    srv.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not become healthy in {timeout} s:\n{srv.log()}")


def wait_for_workers(srv: Server, workers: int, deadline: float) -> None:
    """Until ``workers`` distinct worker ids have answered /health (new connections each).
    Logs in from 127.0.0.9, so that the tests' own login limits on 127.0.0.1 start untouched."""
    seen: set[str] = set()
    transport = httpx.HTTPTransport(local_address="127.0.0.9")
    with httpx.Client(transport=transport, timeout=30) as c:
        r = c.post(f"{srv.url}/api/v1/auth/login",
                   json={"username": ADMIN[0], "password": ADMIN[1]})
        token = r.json()["access_token"]
    while len(seen) < workers and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, KeyError):
            r = httpx.get(f"{srv.url}/health", headers={"Authorization": f"Bearer {token}"},
                          timeout=5)
            seen.add(r.json()["details"]["worker"]["id"])
        if len(seen) < workers:
            time.sleep(0.1)
    if len(seen) < workers:
        raise RuntimeError(f"only {len(seen)} of {workers} workers answered:\n{srv.log()}")


SIM = {"supplier_valuation": 5000, "retailer_valuation": 8000, "max_rounds": 10,
       "supplier_style": "aggressive", "retailer_style": "cooperative"}


async def stream_all(server: Server, session_id: str, token: str, *,
                     timeout: float = 120.0) -> tuple[list[dict], int | None]:
    """Read a session's WebSocket to the end: (messages, close code). Authenticates with the
    first frame, then sends an empty config frame (start now with the stored configuration)."""
    import asyncio

    import websockets

    url = f"{server.ws_url}/api/v1/simulation/{session_id}/stream"
    out: list[dict] = []
    async with asyncio.timeout(timeout):
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            await ws.send(json.dumps({"type": "config"}))
            async for raw in ws:
                out.append(json.loads(raw))
            return out, ws.close_code


def make_policy_run(run_dir: Path, hidden: tuple[int, ...] = (8,)) -> Path:
    """A run directory with an *untrained* (randomly initialised) policy.eqx and a summary.json,
    in the ``eqx_jax.train`` formats: what ``make run`` leaves in runs/default, minus training."""
    import jax

    from eqx_jax.env import BargainingEnv
    from eqx_jax.ppo import PPOConfig, init_network
    from eqx_jax.train import export_policy

    config = PPOConfig(hidden=hidden, shared_network=False)
    obs_size = BargainingEnv(config.num_history).obs_size
    params = {name: init_network(jax.random.key(i), config.hidden, obs_size)
              for i, name in enumerate(config.learners)}
    export_policy(config, params, run_dir / "policy.eqx")
    (run_dir / "summary.json").write_text(json.dumps({
        "finished": True, "env_steps": 1000, "wall_time_s": 1.0,
        "last_update": {"deal_rate": 0.5, "mean_rounds": 3.0, "nash_distance": 0.1}}))
    return run_dir
