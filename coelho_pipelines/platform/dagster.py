"""Dagster: `dagster dev` on the repo's workspace, instance under `$COELHO_HOME/dagster`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from coelho_pipelines.platform.process import PlatformError
from coelho_pipelines.platform.service import Context, ServiceDef, http_ok


def dagster_home(ctx: Context) -> Path:
    return ctx.data_dir("dagster")


def prepare(ctx: Context) -> None:
    """Copy the repo's dagster.yaml into DAGSTER_HOME (SQLite storage lives there too)."""
    for name in ("workspace.yaml", "dagster.yaml"):
        if not (ctx.project_dir / name).exists():
            raise PlatformError(
                f"{name} not found in {ctx.project_dir}: run coelho from the project directory "
                "or set COELHO_PROJECT_DIR"
            )
    shutil.copyfile(ctx.project_dir / "dagster.yaml", dagster_home(ctx) / "dagster.yaml")


def command(ctx: Context) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(ctx.project_dir / "workspace.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        str(ctx.port("dagster")),
    ]


def env(ctx: Context) -> dict[str, str]:
    return {
        **ctx.client_env,
        "DAGSTER_HOME": str(dagster_home(ctx)),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }


def healthy(port: int) -> bool:
    return http_ok(f"http://127.0.0.1:{port}/server_info")


SERVICE = ServiceDef(
    name="dagster",
    description="Dagster webserver, daemon and code location (dagster dev)",
    port_key="dagster",
    url=lambda port: f"http://127.0.0.1:{port}",
    command=command,
    healthy=healthy,
    prepare=prepare,
    env=env,
    cwd=lambda ctx: ctx.project_dir,
    start_timeout=240.0,
    stop_timeout=40.0,
)
