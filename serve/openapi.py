"""The OpenAPI document, made to say what the server does for every operation.

FastAPI documents a route's own ``responses=`` and 422; the statuses that come from the layers
around every route are added here, once, instead of on each route:

* every operation with a request body: 400 (a body that is not JSON) and 413 (above
  ``max_body_bytes``, :class:`serve.middleware.BodyLimitMiddleware`);
* every operation behind the bearer token: 401 (no, bad, expired or revoked token) and 429 (the
  per-user rate limit, :func:`serve.deps.current_user`);
* ``GET /health``, whose token is optional: ``security`` lists "no token" as allowed;
* this server's job budget (``EQX_MAX_JOB_TIMESTEPS``) as the ``maximum`` of
  ``training_config.total_timesteps`` (and of ``num_iterations``, which is at least one step
  each), where the request model carries the table's wider bound.

Rules across fields (``num_minibatches`` divides ``num_envs x num_steps``; ``num_iterations x
num_envs x num_steps`` within the budget) have no JSON Schema form: a config that breaks one is a
422 naming it, although each of its fields is within its own bounds.

A 405 names every method of the path in ``Allow`` (Starlette names only the first route's).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from serve.deps import error_responses

METHODS = ("get", "put", "post", "delete", "patch", "options", "head")
OPTIONAL_AUTH_PATHS = ("/health",)


def _add(op: dict[str, Any], *codes: int) -> None:
    responses = op.setdefault("responses", {})
    for code, spec in error_responses(*codes).items():
        responses.setdefault(str(code), spec)


def _cap(prop: dict[str, Any], maximum: float) -> None:
    for alt in prop.get("anyOf", [prop]):
        if alt.get("type") in ("integer", "number"):
            alt["maximum"] = min(alt.get("maximum", maximum), maximum)


def complete(schema: dict[str, Any], max_job_timesteps: int | None = None) -> dict[str, Any]:
    """Add the layer-wide statuses and this server's job budget (module docstring) to an
    OpenAPI document, in place."""
    training = schema.get("components", {}).get("schemas", {}).get("TrainingConfig", {})
    if max_job_timesteps is not None:
        for name in ("total_timesteps", "num_iterations"):
            if name in training.get("properties", {}):
                _cap(training["properties"][name], max_job_timesteps)
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            if "requestBody" in op:
                _add(op, 400, 413)
            if path in OPTIONAL_AUTH_PATHS:
                op["security"] = [{}, *op.get("security", [])]
            elif op.get("security"):
                _add(op, 401, 429)
    return schema


def install(app: FastAPI, max_job_timesteps: int | None = None) -> None:
    """Serve the completed document and answer 405 with the path's full ``Allow``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes), max_job_timesteps)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=headers)


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method the OpenAPI document lists for this request's path (the document, not the
    router, because included routers are nested; the document is the contract anyway)."""
    path = request.url.path
    paths = app.openapi().get("paths", {})
    if path in paths:  # a literal path is its own resource ("/simulation/start", not "{id}")
        matching = [paths[path]]
    else:
        matching = [item for template, item in paths.items()
                    if compile_path(template)[0].match(path)]
    return sorted({m.upper() for item in matching for m in item if m in METHODS})
