"""Dagster: `dagster dev` on the repo's workspace, instance under `$COELHO_HOME/dagster`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from coelho.platform.process import PlatformError
from coelho.platform.service import Context, ServiceDef, http_ok
from coelho_pipelines.naming import IN_FLIGHT_STATUSES


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


# Written once the sensors and schedules were switched on for a new instance; later starts
# leave them as the user set them in the UI.
SWITCHED_ON_MARKER = ".coelho-switches-on"


def switch_on_automation(ctx: Context) -> None:
    """On a new instance, turn on every sensor (ingestion, the real-time learning switches,
    drift retraining) and schedule, so `coelho up` shows the products learning at once.

    Set `COELHO_AUTOSTART=0` to leave them as the definitions declare (learners off).
    """
    marker = dagster_home(ctx) / SWITCHED_ON_MARKER
    if marker.exists() or os.environ.get("COELHO_AUTOSTART", "1") == "0":
        return
    workspace = str(ctx.project_dir / "workspace.yaml")
    for kind in ("sensor", "schedule"):
        result = subprocess.run(
            [sys.executable, "-m", "dagster", kind, "start", "--start-all", "-w", workspace],
            env={**os.environ, **env(ctx)},
            cwd=ctx.project_dir,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
            detail = lines[-1] if lines else f"exit code {result.returncode}"
            raise PlatformError(f"could not switch on the Dagster {kind}s: {detail}")
    marker.write_text("sensors and schedules switched on by `coelho up`\n")


ACTIVE_RUNS_QUERY = f"""{{ runsOrError(filter: {{statuses: [{", ".join(IN_FLIGHT_STATUSES)}]}})
  {{ ... on Runs {{ results {{ runId status }} }} }} }}"""
TERMINATE_RUNS = """mutation Terminate($ids: [String!]!) { terminateRuns(runIds: $ids) {
  __typename } }"""
RUNS_WIND_DOWN_SECONDS = 60.0


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=15
    )
    response.raise_for_status()
    return response.json()["data"]


def _active_runs(url: str) -> dict[str, str]:
    """Run id -> status of the runs that are queued, running or being cancelled."""
    runs = _graphql(url, ACTIVE_RUNS_QUERY)["runsOrError"].get("results", [])
    return {run["runId"]: run["status"] for run in runs}


def terminate_runs(url: str, wind_down_seconds: float = RUNS_WIND_DOWN_SECONDS) -> str | None:
    """Ask Dagster to terminate every active run and wait until they have ended, so a kept run
    (learner, continuous ingestion) snapshots or commits and is recorded CANCELED instead of
    failing when its process is killed with the webserver. A run the sensors launch meanwhile
    is terminated too. Dagster unreachable: nothing to wind down."""
    began = time.monotonic()
    terminated: set[str] = set()
    try:
        active = _active_runs(url)
        while active and time.monotonic() - began < wind_down_seconds:
            running = [rid for rid, status in active.items() if status != "CANCELING"]
            if running:
                _graphql(url, TERMINATE_RUNS, {"ids": running})
                terminated.update(running)
            time.sleep(1.0)
            active = _active_runs(url)
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return "runs not wound down (Dagster did not answer); stopping anyway"
    if not terminated:
        return None
    seconds = time.monotonic() - began
    if active:
        return f"{len(active)} run(s) still active after {seconds:.0f}s; stopping anyway"
    return f"terminated {len(terminated)} run(s) through Dagster in {seconds:.1f}s"


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
    after_start=switch_on_automation,
    before_stop=terminate_runs,
    env=env,
    cwd=lambda ctx: ctx.project_dir,
    start_timeout=240.0,
    stop_timeout=40.0,
)
