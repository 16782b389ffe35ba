"""Error responses: clear 4xx messages, never a stack trace.

- 404 for an unknown use case lists the valid ones (and names the valid endpoints otherwise);
- 422 keeps FastAPI's `detail` list and adds a one-line `message` naming each bad field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from coelho_serving.routers import PREFIX

AREAS = ("incremental", "batch", "sql")
log = logging.getLogger(__name__)


def not_found_detail(
    path: str, keys: list[str], exists: Callable[[str], bool] = lambda _path: False
) -> str:
    """The message of a 404: an unknown use case lists the valid ones; an endpoint that only
    some use cases have (e.g. /report) names them. `exists(path)` says whether a route matches."""
    parts = path.removeprefix(PREFIX).strip("/").split("/")
    if path.startswith(PREFIX + "/") and parts[0] in AREAS:
        if len(parts) > 1 and parts[1] not in keys:
            return f"unknown use case {parts[1]!r}; valid: {', '.join(keys)}"
        if len(parts) > 2:
            rest = "/".join(parts[2:])
            others = [k for k in keys if exists(f"{PREFIX}/{parts[0]}/{k}/{rest}")]
            if others:
                return f"/{parts[0]}/<uc>/{rest} is only for: {', '.join(others)}"
        if len(parts) > 1:
            return f"no such endpoint {path!r} for use case {parts[1]!r}; see /docs"
    if path.startswith(PREFIX + "/") and parts[0] not in AREAS:
        return f"unknown API area {parts[0]!r}; valid: {', '.join(AREAS)}"
    return f"not found: {path!r}; see / for links and /docs for the API"


def _field_path(error: dict[str, Any]) -> str:
    """`amount`, `device_info.os`, `query.run_id`; `body` for a body that is not an object."""
    loc = list(error.get("loc", ()))
    if error.get("type") == "json_invalid" or not loc:
        return "body"
    if loc[0] == "body":
        loc = loc[1:] or ["body"]
    return ".".join(str(part) for part in loc)


def validation_message(errors: list[dict[str, Any]]) -> str:
    """`amount: Input should be less than or equal to 1000000; currency: ...`."""
    return "; ".join(f"{_field_path(e)}: {e.get('msg', 'invalid')}" for e in errors)


def iter_routes(routes: list[Any]) -> list[Any]:
    """Every leaf route, descending into included routers."""
    leaves = []
    for route in routes:
        nested = getattr(getattr(route, "original_router", None), "routes", None)
        leaves.extend(iter_routes(nested) if nested is not None else [route])
    return leaves


def _matcher(app: FastAPI) -> Callable[[str], bool]:
    def exists(path: str) -> bool:
        return any(
            getattr(route, "path_regex", None) is not None and route.path_regex.match(path)
            for route in iter_routes(app.routes)
        )

    return exists


def install(app: FastAPI, use_case_keys: list[str]) -> None:
    """Register the handlers on `app`."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail
        if error.status_code == 404 and detail == "Not Found":
            detail = not_found_detail(request.url.path, use_case_keys, _matcher(app))
        elif error.status_code == 400 and detail == "There was an error parsing the body":
            detail = "the request body could not be read: send UTF-8 JSON"
        return JSONResponse(
            {"detail": detail}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(error.errors(), custom_encoder={Exception: str})
        return JSONResponse(
            {"detail": errors, "message": validation_message(errors)}, status_code=422
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({type(error).__name__}); see the service log"},
            status_code=500,
        )
