"""`coelho serve`: run the FastAPI serving layer (`coelho_serving`) with uvicorn."""

from __future__ import annotations

import argparse
import os

from coelho_pipelines.settings import port

# The MLflow client retries an unreachable server for minutes by default; an API answers 503.
MLFLOW_CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the API (predictions, metrics, SQL) on http://HOST:PORT",
        description="Run the Coelho API: /api/v1 incremental, batch and sql routes, /health, "
        "/metrics and /docs. Reads REDIS_URL, MLFLOW_TRACKING_URI, COELHO_LAKEHOUSE_URI, "
        "KAFKA_BOOTSTRAP_SERVERS, COELHO_API_KEY (optional X-API-Key) and COELHO_CORS_ORIGINS.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="port (default COELHO_API_PORT or 8000)"
    )
    parser.add_argument("--reload", action="store_true", help="restart on code changes (dev)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn log level (default info)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coelho.cli import CommandError

    listen_port = args.port if args.port is not None else port("api")
    if not 0 < listen_port < 65536:
        raise CommandError(f"--port must be in 1..65535, got {listen_port}")
    for key, value in MLFLOW_CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        from coelho_serving.config import ServingConfig

        ServingConfig.from_env()  # fail fast, in one line, on a bad setting
    except ValueError as error:
        raise CommandError(str(error)) from error
    import uvicorn

    uvicorn.run(
        "coelho_serving.app:create_app",
        factory=True,
        host=args.host,
        port=listen_port,
        reload=args.reload,
        log_level=args.log_level,
    )
    return 0
