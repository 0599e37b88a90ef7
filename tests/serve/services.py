"""Throwaway Redis and PostgreSQL servers for the scale-out tests: real ``redis-server`` and
PostgreSQL binaries (Debian's packages, installed by ``make test``), each on a free loopback
port with its files in a temporary directory, stopped by the fixture that started it.

PostgreSQL refuses to run as root, so when the tests run as root the cluster is made and run as
the ``postgres`` system user (Debian's package creates it) or ``nobody``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from server_helpers import free_port


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def postgres_bindir() -> Path | None:
    """The directory of ``initdb``/``pg_ctl``/``postgres`` (Debian keeps them off PATH)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    return Path(dirs[-1]) if dirs else None


def missing_services() -> str | None:
    """Why the scale-out tests cannot run here (None when they can)."""
    if redis_binary() is None:
        return "redis-server is not installed (make test installs Debian's redis-server)"
    if postgres_bindir() is None:
        return "PostgreSQL is not installed (make test installs Debian's postgresql)"
    return None


@dataclass
class RedisServer:
    """A ``redis-server`` on 127.0.0.1:``port``, no persistence (a restart starts empty)."""

    port: int
    workdir: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [redis_binary() or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        import redis

        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return self
            time.sleep(0.05)
        log_text = (self.workdir / "redis.log").read_text()
        raise RuntimeError(f"redis-server did not start:\n{log_text}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def _unprivileged() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as when the tests run as root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and no postgres or nobody user to run PostgreSQL as")


@dataclass
class PostgresServer:
    """A PostgreSQL cluster made with ``initdb`` in ``workdir``, on 127.0.0.1:``port``, trust
    authentication for loopback, database ``eqx``."""

    port: int
    workdir: Path
    started: bool = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://eqx@127.0.0.1:{self.port}/eqx"

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    def _run(self, *args: str, check: bool = True, timeout: float = 60,
             ) -> subprocess.CompletedProcess:
        user = _unprivileged()
        kwargs = {}
        if user is not None:
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        res = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                             cwd=self.workdir, **kwargs)
        if check and res.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({res.returncode}):\n"
                               f"{res.stdout}{res.stderr}")
        return res

    def init(self) -> PostgresServer:
        bindir = postgres_bindir()
        assert bindir is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        user = _unprivileged()
        if user is not None:
            # The cluster's directory belongs to the user that runs it (and its parents must be
            # traversable by it).
            os.chown(self.workdir, user.pw_uid, user.pw_gid)
            for parent in self.workdir.parents:
                if str(parent) in ("/", "/tmp"):
                    break
                with contextlib.suppress(OSError):
                    os.chmod(parent, os.stat(parent).st_mode | 0o711)
        self._run(str(bindir / "initdb"), "-D", str(self.datadir), "-U", "eqx",
                  "--auth=trust", "--encoding=UTF8", "--no-sync")
        return self

    def start(self) -> PostgresServer:
        bindir = postgres_bindir()
        assert bindir is not None
        opts = (f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200")
        self._run(str(bindir / "pg_ctl"), "-D", str(self.datadir), "-l",
                  str(self.workdir / "postgres.log"), "-o", opts, "-w", "-t", "60", "start")
        self.started = True
        return self

    def create_database(self, name: str = "eqx") -> PostgresServer:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=eqx dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self

    def url_of(self, name: str) -> str:
        return f"postgresql+psycopg://eqx@127.0.0.1:{self.port}/{name}"

    def stop(self, mode: str = "fast") -> None:
        bindir = postgres_bindir()
        if self.started and bindir is not None:
            self._run(str(bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w",
                      "stop", check=False)
        self.started = False

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash, not a shutdown)."""
        pid_file = self.datadir / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        self.started = False


def start_redis(workdir: Path) -> RedisServer:
    return RedisServer(free_port(), workdir).start()


def start_postgres(workdir: Path) -> PostgresServer:
    return PostgresServer(free_port(), workdir).init().start().create_database()
