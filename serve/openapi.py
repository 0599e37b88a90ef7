"""The OpenAPI document, made to say what the server does for every operation.

FastAPI documents a route's own ``responses=`` and 422; the statuses that come from the layers
around every route are added here, once, instead of on each route:

* every operation with a request body: 400 (a body that is not JSON) and 413 (above
  ``max_body_bytes``, :class:`serve.middleware.BodyLimitMiddleware`);
* every operation behind the bearer token: 401 (no, bad, expired or revoked token) and 429 (the
  per-user rate limit, :func:`serve.deps.current_user`);
* ``GET /health``, whose token is optional: ``security`` lists "no token" as allowed.

A 405 names every method of the path in ``Allow`` (Starlette names only the first route's).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from serve.deps import error_responses

METHODS = ("get", "put", "post", "delete", "patch", "options", "head")
OPTIONAL_AUTH_PATHS = ("/health",)


def _add(op: dict[str, Any], *codes: int) -> None:
    responses = op.setdefault("responses", {})
    for code, spec in error_responses(*codes).items():
        responses.setdefault(str(code), spec)


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the layer-wide statuses (module docstring) to an OpenAPI document, in place."""
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


def install(app: FastAPI) -> None:
    """Serve the completed document and answer 405 with the path's full ``Allow``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes))
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
    """Every method some route serves at this request's path."""
    allowed: set[str] = set()
    scope = dict(request.scope)
    for route in app.router.routes:
        methods = getattr(route, "methods", None)
        if not methods:
            continue
        match, _ = route.matches({**scope, "method": next(iter(methods))})
        if match == Match.FULL:
            allowed |= set(methods)
    return sorted(allowed)
