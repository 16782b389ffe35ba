"""Our own long-running commands as services: the API (`coelho serve`) and the producers.

Each runs only if its `coelho` subcommand exists in this install; options the subcommand does
not define are not passed (the port also travels as `COELHO_<SERVICE>_PORT`).
"""

from __future__ import annotations

import sys

from coelho.platform.service import Context, ServiceDef, http_ok
from coelho_pipelines import settings


def subcommand_options(name: str) -> set[str] | None:
    """The option strings of `coelho <name>`, or None when there is no such command."""
    import argparse

    from coelho import cli

    if name not in cli.COMMAND_MODULES:
        return None
    try:
        parser = cli.build_parser()
    except Exception:  # noqa: BLE001 - a broken command module makes it unavailable
        return None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return {opt for sub in action.choices[name]._actions for opt in sub.option_strings}
    return None


def _unavailable(name: str) -> str | None:
    if subcommand_options(name) is None:
        return f"`coelho {name}` is not available in this install"
    return None


def _with_option(argv: list[str], options: set[str], flag: str, value: str) -> list[str]:
    return [*argv, flag, value] if flag in options else argv


def _app_env(ctx: Context, service: str) -> dict[str, str]:
    return {**ctx.client_env, f"COELHO_{service.upper()}_PORT": str(ctx.port(service))}


def _answers(status: int) -> bool:
    return status < 500 or status == 503


def api_command(ctx: Context) -> list[str]:
    options = subcommand_options("serve") or set()
    argv = [sys.executable, "-m", "coelho.cli", "serve"]
    argv = _with_option(argv, options, "--host", "127.0.0.1")
    return _with_option(argv, options, "--port", str(ctx.port("api")))


def producers_command(ctx: Context) -> list[str]:
    options = subcommand_options("produce") or set()
    rate = f"{settings.load(settings.RunOptions).produce_rate:g}"
    argv = [sys.executable, "-m", "coelho.cli", "produce", "--use-case", "all"]
    argv += ["--rate", rate]
    return _with_option(argv, options, "--metrics-port", str(ctx.port("producers")))


API = ServiceDef(
    name="api",
    description="FastAPI serving layer (coelho serve)",
    port_key="api",
    url=lambda port: f"http://127.0.0.1:{port}",
    command=api_command,
    # Any answer means the server runs; /health is 503 while a dependency is down.
    healthy=lambda port: http_ok(f"http://127.0.0.1:{port}/health", accept=_answers),
    env=lambda ctx: _app_env(ctx, "api"),
    unavailable=lambda: _unavailable("serve"),
    depends_on=("redis", "mlflow"),
    start_timeout=120.0,
)

PRODUCERS = ServiceDef(
    name="producers",
    description="Synthetic event producers for every use case (coelho produce)",
    port_key="producers",
    url=lambda port: f"http://127.0.0.1:{port}/metrics",
    command=producers_command,
    healthy=lambda port: http_ok(f"http://127.0.0.1:{port}/metrics"),
    env=lambda ctx: _app_env(ctx, "producers"),
    unavailable=lambda: _unavailable("produce"),
    depends_on=("kafka",),
    start_timeout=90.0,
)
