"""Security basics: an optional API key (`X-API-Key`) and CORS from configuration.

When `COELHO_API_KEY` is set, every API route needs the header; `/health` and `/metrics` stay
open for probes and scrapers, and `/docs` + `/openapi.json` stay open because they hold no data
(the Swagger UI's "Authorize" button sends the key with the calls it makes).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import APIKeyHeader

API_KEY_HEADER = "X-API-Key"
_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Required when the service runs with COELHO_API_KEY set.",
)


async def require_api_key(
    request: Request, provided: str | None = Security(_api_key_header)
) -> None:
    """Reject the request (401) unless it carries the configured key; no key configured: open."""
    expected: str | None = request.app.state.config.api_key
    if expected is None:
        return
    if provided is None:
        raise HTTPException(401, f"missing {API_KEY_HEADER} header", {"WWW-Authenticate": "ApiKey"})
    if not secrets.compare_digest(provided.encode(), expected.encode()):
        raise HTTPException(401, f"invalid {API_KEY_HEADER}", {"WWW-Authenticate": "ApiKey"})


Guard = list[Any]  # route dependencies: the API key check, or nothing


def api_key_guard(api_key: str | None) -> Guard:
    """The dependencies of protected routes: the key check (and its OpenAPI security scheme)
    when a key is configured; nothing otherwise, so the schema does not claim auth it lacks."""
    return [Depends(require_api_key)] if api_key else []


def add_cors(app: FastAPI, origins: tuple[str, ...]) -> None:
    """CORS for `origins`; `*` means any origin but then never with credentials."""
    if not origins:
        return
    wildcard = "*" in origins
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"] if wildcard else list(origins),
        allow_credentials=not wildcard,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", API_KEY_HEADER],
    )
