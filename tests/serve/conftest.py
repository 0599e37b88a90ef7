"""Fixtures of the server tests (see server_helpers.py).

The ``server`` fixture is session-scoped: one server per pytest-xdist worker, shared by the
modules that run there. Modules that need other settings (rate limits, restart) start their own
with :func:`server_helpers.start_server`.

With ``EQX_TEST_SCALEOUT=1`` (the second run of ``make test``, on the modules marked
``shared_state``) the ``server`` is ``eqx serve --workers 2`` on a throwaway Redis and
PostgreSQL that the fixture starts (services.py) and stops: every request and WebSocket may land
on either worker.
"""

from __future__ import annotations

import os

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("websockets")

import server_helpers  # noqa: E402 - after the importorskips
from server_helpers import start_server, with_users  # noqa: E402

SCALEOUT = os.environ.get("EQX_TEST_SCALEOUT") == "1"


@pytest.fixture(scope="session")
def backing_services(tmp_path_factory):
    """A throwaway Redis and PostgreSQL: ``{"REDIS_URL": ..., "DATABASE_URL": ...}``."""
    from services import missing_services, start_postgres, start_redis

    why = missing_services()
    if why:
        pytest.fail(why)  # make test installs both: a missing one is a broken setup
    root = tmp_path_factory.mktemp("eqx-services")
    redis_server = start_redis(root / "redis")
    pg = start_postgres(root / "pg")
    yield {"REDIS_URL": redis_server.url, "DATABASE_URL": pg.url, "redis": redis_server,
           "postgres": pg}
    pg.stop("immediate")
    redis_server.stop()


@pytest.fixture(scope="session", autouse=True)
def scaleout_backends(request):
    """In the scale-out run: every server the tests start shares these services."""
    if not SCALEOUT:
        yield None
        return
    svc = request.getfixturevalue("backing_services")
    server_helpers.SCALEOUT = svc
    yield svc
    server_helpers.SCALEOUT = None


@pytest.fixture(scope="session")
def server(tmp_path_factory, scaleout_backends):
    srv = with_users(start_server(tmp_path_factory.mktemp("eqx-server") / "data",
                                  EQX_EXPORT_TTL_S="3"))
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c
