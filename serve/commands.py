"""``eqx serve`` and ``eqx user add``, registered into the ``eqx`` command (entry-point group
``eqx.commands``); the work is done by :mod:`serve.cli`.

The server's dependencies are the optional ``serve`` extra: registering the subcommands imports
none of them, so ``eqx --help`` works without it, and running one without the extra is one line
with the install command.
"""

from __future__ import annotations

import argparse
import sys

SERVE_EXTRA = 'pip install -e ".[serve]"'


def _run(fn: str, *args, **kwargs) -> None:
    """``fn(...)``'s exit status as ``SystemExit`` (none for 0); a missing dependency of the
    serve extra is one line and status 2."""
    try:
        from serve import cli

        code = getattr(cli, fn)(*args, **kwargs)
    except ImportError:
        print(f"the server needs the serve extra: {SERVE_EXTRA}", file=sys.stderr)
        raise SystemExit(2) from None
    if code:
        raise SystemExit(code)


def cmd_serve(a: argparse.Namespace) -> None:
    """``eqx serve``."""
    _run("serve", host=a.host, port=a.port, log_level=a.log_level)


def cmd_user_add(a: argparse.Namespace) -> None:
    """``eqx user add NAME``."""
    _run("user_add", a.name, admin=a.admin)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` and ``user`` to the ``eqx`` command's subparsers."""
    p = sub.add_parser("serve", help="run the live server (FastAPI + WebSocket, docs at /docs)",
                       description="Run the live server with uvicorn. Settings come from "
                                   "EQX_* environment variables (see docs/server.md).")
    p.add_argument("--host", default=None, help="bind address (default EQX_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default EQX_PORT or 8000)")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("user", help="manage the server's users",
                       description="Manage the live server's users (in its database).")
    user_sub = p.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    q = user_sub.add_parser("add", help="add a user (password from a prompt, or stdin)")
    q.add_argument("name", help="user name (letters, digits, _ . @ -)")
    q.add_argument("--admin", action="store_true", help="may read every user's sessions")
    q.set_defaults(func=cmd_user_add)
