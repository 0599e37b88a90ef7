"""``eqx serve`` and ``eqx user add``: :func:`register` adds them to the ``eqx`` command
(entry-point group ``eqx.commands``); :func:`serve` and :func:`user_add` do the work.

Both return an exit status; user-facing problems are one line on stderr and status 2. The
server's dependencies are the optional ``serve`` extra: this module imports none of them at the
top, so ``eqx --help`` works without it, and running a subcommand without the extra is one line
with the install command.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

SERVE_EXTRA = 'pip install -e ".[serve]"'

#: Frames above this are refused by uvicorn itself (close 1009); smaller ones above the app's
#: ``ws_max_message_bytes`` get the app's 1008 (see serve.routers.stream).
UVICORN_WS_MAX_SIZE = 1 << 20


def _settings(**overrides):
    from pydantic import ValidationError

    from serve.settings import Settings, env_var_name

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        msg = e.errors()[0]["msg"]
        raise SystemExit(_fail(f"invalid setting {env_var_name(e)}: {msg}")) from None


def _fail(msg: str) -> int:
    print(msg, file=sys.stderr)
    return 2


def _prepare_workers(settings) -> None:  # noqa: ANN001 - serve.settings.Settings
    """Before forking workers: migrate the database once and make the data directory's secret
    (so that every worker on this machine signs with the same key)."""
    from serve import auth
    from serve.db import Database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    auth.server_secret(settings)
    db = Database(settings.db_url)
    try:
        db.migrate()
    finally:
        db.dispose()


def serve(host: str | None = None, port: int | None = None, log_level: str = "info",
          workers: int | None = None) -> int:
    """Run the server with uvicorn: one process, or ``workers`` processes sharing Redis and a
    PostgreSQL database (settings ``REDIS_URL`` and ``DATABASE_URL``)."""
    import os

    from serve.settings import SettingsError

    settings = _settings(host=host, port=port, workers=workers)
    try:
        settings.check()  # before the heavy imports: a refusal is instant
    except SettingsError as e:
        return _fail(str(e))
    import logging

    import uvicorn

    from serve.app import create_app
    from serve.logredact import install, uvicorn_log_config

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(levelname)s:     %(name)s: %(message)s")
    # uvicorn logs a WebSocket's URL with its query string at INFO: keep ?token= out of logs.
    install(logging.getLogger())
    common = dict(host=settings.host, port=settings.port, log_level=log_level,
                  ws_max_size=UVICORN_WS_MAX_SIZE, ws_per_message_deflate=False,
                  timeout_keep_alive=30, proxy_headers=bool(settings.trusted_proxies),
                  forwarded_allow_ips=settings.trusted_proxies or None,
                  log_config=uvicorn_log_config())
    if settings.workers > 1:
        _prepare_workers(settings)
        # The workers read their settings from the environment, as under gunicorn.
        os.environ["EQX_LOG_LEVEL"] = log_level
        uvicorn.run("serve.asgi:create", factory=True, workers=settings.workers, **common)
        return 0
    app = create_app(settings)
    # No permessage-deflate: the moves are ~300-byte JSON messages, and compressing them was
    # ~1 ms of event-loop time per message under load (profiled with 100 sessions).
    # keep-alive 30 s: clients that reuse connections between a start and a status call
    # (minutes apart while streaming) hit fewer "server closed the idle connection" races.
    # X-Forwarded-For only from EQX_TRUSTED_PROXIES: from anyone else it would let a client
    # pick the address its login attempts are counted under.
    uvicorn.run(app, **common)
    return 0


def worker() -> int:
    """``eqx worker``: run training jobs from the Redis queue (scale-out mode)."""
    import logging

    from serve.settings import SettingsError

    settings = _settings()
    try:
        settings.check()
    except SettingsError as e:
        return _fail(str(e))
    if not settings.redis_url:
        return _fail("eqx worker takes training jobs from Redis: set REDIS_URL (and the "
                     "DATABASE_URL and EQX_DATA_DIR the API workers use)")
    from serve.job_queue import run_worker
    from serve.logredact import install

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    install(logging.getLogger())
    run_worker(settings)
    return 0


def _read_password(name: str) -> str:
    if not sys.stdin.isatty():
        # Scripts: the first line of stdin is the password.
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {name}: ")
    if first != getpass.getpass("repeat: "):
        raise ValueError("the passwords differ")
    return first


def _with_user_db(action: str, name: str, fn: Callable[..., object]) -> str | int:
    """Run ``fn(db, password)`` on the configured (migrated) database with the password from a
    prompt or stdin; the database URL on success, else the exit status (one line printed)."""
    from serve.db import Database
    from serve.settings import SettingsError

    settings = _settings()
    try:
        settings.check()
    except SettingsError as e:
        return _fail(str(e))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    try:
        db.migrate()
        fn(db, _read_password(name))
    except ValueError as e:
        return _fail(f"eqx user {action}: error: {e}")
    finally:
        db.dispose()
    return settings.db_url


def user_add(name: str, admin: bool = False) -> int:
    """Create a user in the configured database (password from a prompt or stdin)."""
    from serve.auth import create_user

    url = _with_user_db("add", name, lambda db, pw: create_user(db, name, pw, is_admin=admin))
    if isinstance(url, int):
        return url
    print(f"user {name!r} added{' (admin)' if admin else ''} to {url}")
    return 0


def user_passwd(name: str) -> int:
    """Set a user's password (from a prompt or stdin) and revoke all of its tokens."""
    from serve.auth import set_password

    url = _with_user_db("passwd", name, lambda db, pw: set_password(db, name, pw))
    if isinstance(url, int):
        return url
    print(f"password of {name!r} changed in {url}; its tokens are revoked")
    return 0


def _exit_with(fn: Callable[..., int], *args, **kwargs) -> None:
    """``fn(...)``'s exit status as ``SystemExit`` (none for 0); a missing dependency of the
    serve extra is one line and status 2."""
    try:
        code = fn(*args, **kwargs)
    except ImportError:
        print(f"the server needs the serve extra: {SERVE_EXTRA}", file=sys.stderr)
        raise SystemExit(2) from None
    if code:
        raise SystemExit(code)


def cmd_serve(a: argparse.Namespace) -> None:
    """``eqx serve``."""
    _exit_with(serve, host=a.host, port=a.port, log_level=a.log_level, workers=a.workers)


def cmd_worker(a: argparse.Namespace) -> None:
    """``eqx worker``."""
    _exit_with(worker)


def cmd_user_add(a: argparse.Namespace) -> None:
    """``eqx user add NAME``."""
    _exit_with(user_add, a.name, admin=a.admin)


def cmd_user_passwd(a: argparse.Namespace) -> None:
    """``eqx user passwd NAME``."""
    _exit_with(user_passwd, a.name)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` and ``user`` to the ``eqx`` command's subparsers."""
    p = sub.add_parser("serve", help="run the live server (FastAPI + WebSocket, docs at /docs)",
                       description="Run the live server with uvicorn. Settings come from "
                                   "EQX_* environment variables (see docs/server.md).")
    p.add_argument("--host", default=None, help="bind address (default EQX_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default EQX_PORT or 8000)")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default EQX_WORKERS or 1); more than 1 needs "
                        "REDIS_URL and DATABASE_URL=postgresql+psycopg://...")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run training jobs from the server's Redis queue",
                       description="Take the live server's training jobs from its Redis queue "
                                   "and run their trainers (scale-out mode: REDIS_URL, "
                                   "DATABASE_URL and EQX_DATA_DIR as the API workers have "
                                   "them; see docs/deploy.md).")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("user", help="manage the server's users",
                       description="Manage the live server's users (in its database).")
    user_sub = p.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    q = user_sub.add_parser("add", help="add a user (password from a prompt, or stdin)")
    q.add_argument("name", help="user name (letters, digits, _ . @ -)")
    q.add_argument("--admin", action="store_true", help="may read every user's sessions")
    q.set_defaults(func=cmd_user_add)
    q = user_sub.add_parser("passwd", help="set a user's password (prompt or stdin); revokes "
                                           "all of the user's tokens")
    q.add_argument("name", help="user name")
    q.set_defaults(func=cmd_user_passwd)
