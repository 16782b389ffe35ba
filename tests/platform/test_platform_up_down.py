"""`coelho up` / `status` / `down` as a user runs them: a temp COELHO_HOME, non-default ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from coelho.platform import free_port
from coelho.platform import kafka as kafka_platform
from coelho.platform.apps import subcommand_options
from coelho.platform.manager import SERVICES
from coelho_pipelines.naming import incremental_job_name, incremental_sensor_name
from coelho_pipelines.use_cases import all_specs

pytestmark = [pytest.mark.services, pytest.mark.slow]

CORE = ["kafka", "redis", "mlflow", "dagster"]
CLIENT_VARIABLES = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "MLFLOW_TRACKING_URI")


def coelho(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "coelho.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def status(env: dict[str, str]) -> dict[str, dict]:
    result = coelho(env, "status", "--json")
    assert result.returncode == 0, result.stderr
    return {row["service"]: row for row in json.loads(result.stdout)}


@pytest.fixture
def platform_user(tmp_path: Path, kafka_lib_dir: Path):
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_VARIABLES}
    env["COELHO_HOME"] = str(tmp_path / "state")
    env["COELHO_KAFKA_LIB"] = str(kafka_lib_dir)
    env.pop("COELHO_LAKEHOUSE_URI", None)
    for service in SERVICES:
        for key in service.port_keys():
            env[f"COELHO_{key.upper()}_PORT"] = str(free_port())
    yield env
    coelho(env, "down")


def port_of(env: dict[str, str], key: str) -> int:
    return int(env[f"COELHO_{key.upper()}_PORT"])


def sensor_states(dagster_port: int) -> dict[str, str]:
    """Sensor name -> RUNNING/STOPPED, as the running Dagster webserver reports them."""
    import httpx

    query = (
        '{ sensorsOrError(repositorySelector: {repositoryName: "__repository__", '
        'repositoryLocationName: "coelho_pipelines"}) '
        "{ ... on Sensors { results { name sensorState { status } } } } }"
    )
    response = httpx.post(
        f"http://127.0.0.1:{dagster_port}/graphql", json={"query": query}, timeout=60
    )
    results = response.json()["data"]["sensorsOrError"]["results"]
    return {sensor["name"]: sensor["sensorState"]["status"] for sensor in results}


def failed_runs(dagster_port: int) -> list[str]:
    """Job name and id of every failed Dagster run."""
    import httpx

    query = (
        "{ runsOrError(filter: {statuses: [FAILURE]}) "
        "{ ... on Runs { results { runId jobName } } } }"
    )
    response = httpx.post(
        f"http://127.0.0.1:{dagster_port}/graphql", json={"query": query}, timeout=60
    )
    runs = response.json()["data"]["runsOrError"]["results"]
    return [f"{run['jobName']} {run['runId']}" for run in runs]


def stored_runs(env: dict[str, str]) -> list[tuple[str, str]]:
    """(job name, status) of every run, newest first, read from the stopped Dagster instance."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(Path(env["COELHO_HOME"]) / "dagster"))
    return [(run.job_name, run.status.value) for run in instance.get_runs()]


def products_state(env: dict[str, str]) -> dict[str, tuple[int, str]]:
    """Use case -> (raw rows queryable through the API, learner state from the API)."""
    import httpx

    api = f"http://127.0.0.1:{port_of(env, 'api')}/api/v1"
    state: dict[str, tuple[int, str]] = {}
    for spec in all_specs():
        rows, live = 0, "-"
        try:
            sql = httpx.post(
                f"{api}/sql/{spec.key}/query",
                json={"query": "SELECT count(*) FROM data", "limit": 1},
                timeout=30,
            )
            rows = sql.json()["rows"][0][0] if sql.status_code == 200 else 0
            status = httpx.get(f"{api}/incremental/{spec.key}/status", timeout=30)
            live = status.json().get("status", "-") if status.status_code == 200 else "-"
        except httpx.HTTPError:
            pass
        state[spec.key] = (rows, live)
    return state


def await_products(env: dict[str, str], timeout: float = 600.0) -> dict[str, tuple[int, str]]:
    """Poll until every use case has queryable events and a LIVE learner (or time runs out)."""
    deadline = time.monotonic() + timeout
    state = products_state(env)
    while time.monotonic() < deadline:
        if all(rows > 0 and live == "LIVE" for rows, live in state.values()):
            break
        time.sleep(5)
        state = products_state(env)
    return state


def test_up_status_down_up_keeps_data(platform_user: dict[str, str]) -> None:
    """Every service healthy and reported with memory; `up` is idempotent; `down` stops all;
    a second `up` finds the data of the first."""
    env = platform_user
    services = ",".join(CORE)

    first = coelho(env, "up")
    assert first.returncode == 0, first.stderr
    for name in CORE:
        assert f"{name}: healthy" in first.stdout
    table = status(env)
    # `api` and `producers` run when their commands exist; otherwise `up` says why, cleanly.
    for name, command in (("api", "serve"), ("producers", "produce")):
        if subcommand_options(command) is None:
            assert f"{name}: unavailable" in first.stdout
            assert table[name]["state"] == "unavailable"
        else:
            assert table[name]["state"] == "healthy", (first.stdout, table[name])
    for name in CORE:
        row = table[name]
        assert row["state"] == "healthy", row
        assert row["rss_bytes"] > 1024 * 1024
        assert Path(row["log"]).is_file()
        assert str(port_of(env, name)) in row["url"]
    # A new instance gets every sensor switched on (ingestion, the learners' real-time switches).
    sensors = sensor_states(port_of(env, "dagster"))
    switches = {incremental_sensor_name(spec) for spec in all_specs()}
    assert switches <= set(sensors)
    assert set(sensors.values()) == {"RUNNING"}, sensors
    # With no manual step the products run: events queryable, every learner LIVE, no failure.
    if subcommand_options("serve") is not None and subcommand_options("produce") is not None:
        products = await_products(env)
        assert all(rows > 0 and live == "LIVE" for rows, live in products.values()), products
        assert failed_runs(port_of(env, "dagster")) == []
    running = [name for name, row in table.items() if row["pid"]]
    pids = {name: table[name]["pid"] for name in running}

    # The topics exist with 3 partitions; leave data in Redis and Kafka.
    bootstrap = f"127.0.0.1:{port_of(env, 'kafka')}"
    metadata = kafka_platform._admin(bootstrap).list_topics(timeout=10)
    for spec in all_specs():
        assert len(metadata.topics[spec.topic].partitions) == 3
    import redis

    redis.Redis(port=port_of(env, "redis")).set("coelho:test:kept", "yes")
    kafka_platform.ensure_topics(bootstrap, ["coelho_test_kept"])

    # `up` again is a no-op for running services.
    again = coelho(env, "up", "--services", services)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already running") == len(CORE)
    assert {name: status(env)[name]["pid"] for name in running} == pids

    down = coelho(env, "down")
    assert down.returncode == 0, down.stderr
    if subcommand_options("serve") is not None and subcommand_options("produce") is not None:
        # `down` terminates the kept runs through Dagster first: they end CANCELED, not failed.
        assert "dagster: terminated" in down.stdout, down.stdout
        runs = stored_runs(env)
        assert [run for run in runs if run[1] == "FAILURE"] == [], runs
        kept = {incremental_job_name(s) for s in all_specs()}
        assert {job for job, state in runs if state == "CANCELED"} >= kept, runs
    after = status(env)
    for name, pid in pids.items():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", name
        assert after[name]["state"] == "stopped"
        assert after[name]["pid"] is None

    # Up again: the data is still there.
    third = coelho(env, "up", "--services", "kafka,redis")
    assert third.returncode == 0, third.stderr
    assert redis.Redis(port=port_of(env, "redis")).get("coelho:test:kept") == b"yes"
    metadata = kafka_platform._admin(bootstrap).list_topics(timeout=10)
    assert "coelho_test_kept" in metadata.topics
    assert coelho(env, "down").returncode == 0
    assert all(row["pid"] is None for row in status(env).values())
