"""The MLflow tracking server: SQLite backend, proxied local artifacts, `$COELHO_HOME/mlflow`."""

from __future__ import annotations

import sys

from coelho.platform.service import Context, ServiceDef, http_ok

# No GenAI job runner: it spawns seven huey consumers (~1 GiB) that a tracking server for
# classic models never uses. No telemetry.
SERVER_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}


def command(ctx: Context) -> list[str]:
    data = ctx.data_dir("mlflow")
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{data / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(data / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(ctx.port("mlflow")),
        "--workers",
        "1",
    ]


def healthy(port: int) -> bool:
    return http_ok(f"http://127.0.0.1:{port}/health")


SERVICE = ServiceDef(
    name="mlflow",
    description="MLflow tracking server and model registry",
    port_key="mlflow",
    url=lambda port: f"http://127.0.0.1:{port}",
    command=command,
    healthy=healthy,
    env=lambda ctx: SERVER_ENV,
    start_timeout=180.0,
)
