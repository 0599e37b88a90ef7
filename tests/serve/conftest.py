"""Fixtures of the server tests (see server_helpers.py).

The ``server`` fixture is session-scoped: one server per pytest-xdist worker, shared by the
modules that run there. Modules that need other settings (rate limits, restart) start their own
with :func:`server_helpers.start_server`.
"""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("websockets")

from server_helpers import start_server, with_users  # noqa: E402 - after the importorskips


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = with_users(start_server(tmp_path_factory.mktemp("eqx-server") / "data",
                                  EQX_EXPORT_TTL_S="3"))
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c
