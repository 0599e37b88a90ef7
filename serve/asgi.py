"""The app for process managers, one per worker process, settings from the environment:

* ``eqx serve --workers N`` (uvicorn's workers, after migrating once in the parent);
* ``gunicorn -k uvicorn_worker.UvicornWorker -w N 'serve.asgi:create()'`` (the founding
  design's deployment; run ``eqx db upgrade`` first, or let the workers migrate: on PostgreSQL
  they take turns under an advisory lock);
* ``uvicorn --factory serve.asgi:create``.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI

from eqx_jax.compile_cache import enable_compile_cache
from serve.app import create_app
from serve.logredact import install
from serve.settings import Settings


def create() -> FastAPI:
    """A worker's app (logging at ``EQX_LOG_LEVEL``, tokens redacted from every log line)."""
    level = os.environ.get("EQX_LOG_LEVEL", "info").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO),
                        format="%(levelname)s:     %(name)s: %(message)s")
    install(logging.getLogger())
    enable_compile_cache()  # a worker process: the eqx command's setting, inherited
    return create_app(Settings())
