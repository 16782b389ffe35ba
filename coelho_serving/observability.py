"""Request metrics per route template (an ASGI middleware) and the Prometheus exposition."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coelho_pipelines import telemetry

UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The path template of the matched route (bounded label cardinality), else `<unmatched>`."""
    route: Any = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED


class MetricsMiddleware:
    """Counts requests by route, method and status and times them by route and method."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = route_template(scope)
            method = scope.get("method", "")
            telemetry.API_REQUESTS.labels(route, method, str(status)).inc()
            telemetry.API_LATENCY.labels(route, method).observe(time.perf_counter() - started)


def metrics_response(_request: Request) -> Response:
    """`/metrics`: the process's Prometheus registry in the text exposition format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
