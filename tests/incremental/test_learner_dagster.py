"""Dagster side of the learner: the job, its materializations, termination, the sensors."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import redis
from incremental_helpers import endpoints, generate, make_topic, produce_events, settings

from coelho_pipelines.batch.drift_retraining import build_drift_sensor
from coelho_pipelines.incremental import live_store
from coelho_pipelines.incremental.defs import build_incremental_defs
from coelho_pipelines.incremental.job import build_learning_job, incremental_model_key
from coelho_pipelines.incremental.sensor import build_learning_sensor
from coelho_pipelines.incremental.snapshot import SnapshotStore
from coelho_pipelines.naming import (
    KIND_TAG,
    LEARNER_TAG,
    USE_CASE_TAG,
    drift_sensor_name,
    incremental_job_name,
    incremental_sensor_name,
    retraining_job_name,
)
from coelho_pipelines.resources import (
    KafkaResource,
    LakehouseResource,
    MlflowResource,
    RedisResource,
)
from coelho_pipelines.topics import build_topic_defs, topic_asset_key
from coelho_pipelines.use_cases import all_specs, get_spec

ECCI = get_spec("ecci")
CHILD = Path(__file__).with_name("learner_child.py")


def _op_config(run_settings) -> dict:
    fields = ("topic", "experiment", "redis_namespace", "consumer_group", "snapshot_every",
              "idle_timeout_seconds", "max_duration_seconds", "publish_interval_seconds",
              "until_events", "drift_warmup_events")  # fmt: skip
    values = dataclasses.asdict(run_settings)
    return {name: values[name] for name in fields}


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.key)
def test_definitions_name_the_asset_job_and_sensors(spec) -> None:
    @dg.job(name=retraining_job_name(spec))
    def retraining() -> None:  # stands in for the batch job drift retraining requests
        pass

    defs = dg.Definitions.merge(
        build_incremental_defs(spec),
        build_topic_defs(spec),
        dg.Definitions(
            jobs=[retraining],
            sensors=[build_drift_sensor(spec)],  # wired by the batch defs, beside its job
            resources={
                "kafka": KafkaResource(bootstrap_servers="localhost:1"),
                "lakehouse": LakehouseResource(uri="unused"),
                "redis": RedisResource(url="redis://localhost:1/0"),
                "mlflow": MlflowResource(tracking_uri="http://localhost:1"),
            },
        ),
    )
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    job = repo.get_job(incremental_job_name(spec))
    assert job.tags[KIND_TAG] == "incremental"
    switch = repo.get_sensor_def(incremental_sensor_name(spec))
    assert switch.default_status == dg.DefaultSensorStatus.STOPPED
    assert switch.job_name == job.name
    assert repo.get_sensor_def(drift_sensor_name(spec)).job_name == retraining.name
    node = repo.asset_graph.get(incremental_model_key(spec))
    assert node.group_name == spec.key
    assert node.parent_keys == {topic_asset_key(spec)}


def test_switch_sensor_requests_a_learner_only_when_none_is_active() -> None:
    from dagster._core.remote_origin import (
        RegisteredCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.test_utils import create_run_for_test

    job = build_learning_job(ECCI)
    sensor = build_learning_sensor(ECCI, job)
    repository = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("test"), "__repository__")
    origin = RemoteJobOrigin(repository, job.name)  # queued runs need one
    for status, launches in (
        (None, True),
        (dg.DagsterRunStatus.QUEUED, False),
        (dg.DagsterRunStatus.STARTING, False),
        (dg.DagsterRunStatus.STARTED, False),
        (dg.DagsterRunStatus.CANCELING, False),
        (dg.DagsterRunStatus.SUCCESS, True),
        (dg.DagsterRunStatus.FAILURE, True),
        (dg.DagsterRunStatus.CANCELED, True),
    ):
        with dg.DagsterInstance.ephemeral() as instance:
            if status is not None:
                run = create_run_for_test(
                    instance, job_name=job.name, status=status, remote_job_origin=origin
                )
            result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
            assert bool(result.run_requests) is launches, status
            if launches:
                assert result.run_requests[0].tags[KIND_TAG] == "incremental"
            else:
                assert run.run_id in result.skip_message


def test_switch_sensor_launches_only_while_it_is_on(tmp_path) -> None:
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import (
        InProcessTestWorkspaceLoadTarget,
        create_test_daemon_workspace_context,
        instance_for_test,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._daemon.sensor import execute_sensor_iteration

    module = tmp_path / "switch_defs.py"
    module.write_text(
        "import dagster as dg\n"
        "from coelho_pipelines.incremental.job import build_learning_job\n"
        "from coelho_pipelines.incremental.sensor import build_learning_sensor\n"
        "from coelho_pipelines.resources import build_resources\n"
        "from coelho_pipelines.use_cases import get_spec\n"
        "spec = get_spec('ecci')\n"
        "job = build_learning_job(spec)\n"
        "defs = dg.Definitions(jobs=[job], sensors=[build_learning_sensor(spec, job)],"
        " resources=build_resources())\n"
    )
    origin = LoadableTargetOrigin(
        python_file=str(module), attribute="defs", working_directory=str(tmp_path)
    )
    target = InProcessTestWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin))
    log = logging.getLogger("switch-test")
    # The default (queued) run coordinator only queues: no learner actually starts here.
    with (
        instance_for_test() as instance,
        create_test_daemon_workspace_context(target, instance) as context,
    ):
        list(execute_sensor_iteration(context, log, None, None))
        assert instance.get_runs() == []  # stopped by default: the switch is off
        entry = next(iter(context.create_request_context().get_code_location_entries().values()))
        assert entry.load_error is None, entry.load_error
        repo = entry.code_location.get_repository("__repository__")
        remote = repo.get_sensor(incremental_sensor_name(ECCI))
        instance.start_sensor(remote)
        list(execute_sensor_iteration(context, log, None, None))
        runs = instance.get_runs()
        assert [r.job_name for r in runs] == [incremental_job_name(ECCI)]
        assert runs[0].tags[USE_CASE_TAG] == "ecci"


@pytest.mark.services
def test_job_run_reports_incremental_model_materializations(
    kafka_service, redis_up, mlflow_service
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = make_topic(bootstrap)
    produce_events(bootstrap, topic, ECCI, generate(ECCI, 700, seed=51))
    run_settings = settings(topic, snapshot_every=200)
    ends = endpoints(kafka_service, redis_up, mlflow_service)
    result = build_learning_job(ECCI).execute_in_process(
        run_config={"ops": {"ecci_incremental_learner": {"config": _op_config(run_settings)}}},
        resources={
            "kafka": KafkaResource(bootstrap_servers=ends.bootstrap_servers),
            "redis": RedisResource(url=ends.redis_url),
            "mlflow": MlflowResource(tracking_uri=ends.mlflow_tracking_uri),
        },
        instance=dg.DagsterInstance.ephemeral(),
        tags={KIND_TAG: "incremental"},
    )
    assert result.success
    materializations = result.asset_materializations_for_node("ecci_incremental_learner")
    # A snapshot every 200 events at the earliest (never while a capture is in flight), and
    # a final one.
    assert len(materializations) >= 2
    assert {m.asset_key for m in materializations} == {incremental_model_key(ECCI)}
    events = [m.metadata["events_learned"].value for m in materializations]
    assert events == sorted(events) and events[0] >= 200
    last = materializations[-1].metadata
    assert last["events_learned"].value == 700
    assert {"Silhouette", "n_clusters", "n_micro_clusters"} <= set(last)
    assert last["mlflow_run_id"].value
    assert last["served_candidate"].value == ECCI.river_model_name  # its only candidate
    board = last["leaderboard"].value
    assert board["served"] == ECCI.river_model_name and board["use_case"] == "ecci"
    assert [c["name"] for c in board["candidates"]] == [c.name for c in ECCI.river_candidates]
    status = live_store.read_status(
        redis.Redis.from_url(redis_up.url), "ecci", run_settings.redis_namespace
    )
    assert status["dagster_run_id"] == result.run_id and status["state"] == "FINISHED"


@pytest.mark.services
def test_terminating_the_run_snapshots_and_finishes_cleanly(
    kafka_service, redis_up, mlflow_service
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = make_topic(bootstrap)
    produce_events(bootstrap, topic, ECCI, generate(ECCI, 500, seed=61))
    run_settings = settings(topic, idle_timeout_seconds=300.0, snapshot_every=10_000)
    ends = endpoints(kafka_service, redis_up, mlflow_service)
    args = {
        "use_case": "ecci",
        "dagster": True,
        "endpoints": dataclasses.asdict(ends),
        "settings": _op_config(run_settings),
    }
    child = subprocess.Popen(
        [sys.executable, str(CHILD), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        cwd=str(CHILD.parent),
    )
    client = redis.Redis.from_url(redis_up.url)
    try:
        deadline = time.monotonic() + 180
        status = None
        while time.monotonic() < deadline and child.poll() is None:
            status = live_store.read_status(client, "ecci", run_settings.redis_namespace)
            if status and status.get("events_learned") == "500":
                break
            time.sleep(0.3)
        assert status and status["state"] == "LIVE", status
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert json.loads(out.strip().splitlines()[-1]) == {"success": False}, err[-2000:]
    status = live_store.read_status(client, "ecci", run_settings.redis_namespace)
    assert status["state"] == "FINISHED" and status["stop_reason"] == "stopped"
    store = SnapshotStore(mlflow_service.tracking_uri, ECCI, run_settings.experiment)
    run = store.find_run()
    assert store.snapshot_info(run).events_learned == 500
    assert run.info.status == "FINISHED"


def test_learner_config_lives_long_by_default() -> None:
    import math

    from coelho_pipelines.incremental.job import IncrementalLearningConfig

    defaults = IncrementalLearningConfig()
    assert defaults.max_duration_seconds >= 86_400 and defaults.snapshot_interval_seconds == 30.0
    settings_ = defaults.settings()
    assert settings_.idle_timeout_seconds == math.inf  # 0: a quiet stream never ends the run
    assert settings_.snapshot_interval_seconds == 30.0
    bounded = IncrementalLearningConfig(idle_timeout_seconds=5, max_duration_seconds=0).settings()
    assert bounded.idle_timeout_seconds == 5 and bounded.max_duration_seconds == math.inf


def test_learner_config_is_generated_from_the_settings() -> None:
    """One declaration: every setting is a run config key with its name and default."""
    import math

    from coelho_pipelines.incremental.job import IncrementalLearningConfig
    from coelho_pipelines.incremental.settings import LearnerSettings

    keys_users_set = {
        "max_duration_seconds", "idle_timeout_seconds", "snapshot_every",
        "snapshot_interval_seconds", "publish_every", "publish_interval_seconds",
        "metrics_every", "until_events", "drift_warmup_events", "capture_mode", "topic",
        "experiment", "redis_namespace", "consumer_group",
    }  # fmt: skip
    settings_fields = dataclasses.fields(LearnerSettings)
    assert set(IncrementalLearningConfig.model_fields) == {f.name for f in settings_fields}
    assert keys_users_set <= set(IncrementalLearningConfig.model_fields)
    config, defaults = IncrementalLearningConfig(), LearnerSettings()
    for f in settings_fields:
        default = getattr(defaults, f.name)
        assert getattr(config, f.name) == ("" if default is None else default), f.name
    assert config.settings() == dataclasses.replace(defaults, idle_timeout_seconds=math.inf)
    chosen = IncrementalLearningConfig(topic="t", capture_mode="inline", publish_budget=0.2)
    assert (chosen.settings().topic, chosen.settings().capture_mode) == ("t", "inline")
    assert chosen.settings().publish_budget == 0.2


def test_switch_sensor_launches_a_kept_learner_with_a_lease() -> None:
    from coelho_pipelines.keeper import KEEPER_TAG, LEASE_TAG

    job = build_learning_job(ECCI)
    sensor = build_learning_sensor(ECCI, job)
    with dg.instance_for_test() as instance:
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        [request] = result.run_requests
        assert request.tags[KEEPER_TAG] == incremental_sensor_name(ECCI)
        assert request.tags[LEARNER_TAG] == "ecci"
        assert float(request.tags[LEASE_TAG]) > time.time()


@pytest.mark.services
def test_learner_ends_itself_as_a_success_when_its_lease_lapses(
    kafka_service, redis_up, mlflow_service
) -> None:
    import threading

    from coelho_pipelines.keeper import HEARTBEAT_TAG, LEASE_TAG

    bootstrap = kafka_service.bootstrap_servers
    topic = make_topic(bootstrap)
    produce_events(bootstrap, topic, ECCI, generate(ECCI, 400, seed=71))
    # no idle timeout, no maximum: only the lease ends this run
    run_settings = settings(
        topic, idle_timeout_seconds=0.0, max_duration_seconds=0.0, snapshot_every=150
    )
    ends = endpoints(kafka_service, redis_up, mlflow_service)
    client = redis.Redis.from_url(redis_up.url)
    seen: dict[str, object] = {}

    def switch_off(instance: dg.DagsterInstance) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status = live_store.read_status(client, "ecci", run_settings.redis_namespace)
            if status and status.get("events_learned") == "400":
                break
            time.sleep(0.3)
        time.sleep(3.0)  # idle for longer than a lease check: the run keeps going
        [run] = instance.get_runs()
        # snapshots reach the event log while the run is still going
        seen["materialized"] = instance.get_latest_materialization_event(
            incremental_model_key(ECCI)
        )
        seen["status"] = live_store.read_status(client, "ecci", run_settings.redis_namespace)
        seen["heartbeat"] = run.tags.get(HEARTBEAT_TAG)
        instance.add_run_tags(run.run_id, {LEASE_TAG: f"{time.time() - 1:.0f}"})

    with dg.instance_for_test() as instance:
        driver = threading.Thread(target=switch_off, args=(instance,), daemon=True)
        driver.start()
        result = build_learning_job(ECCI).execute_in_process(
            run_config={"ops": {"ecci_incremental_learner": {"config": _op_config(run_settings)}}},
            resources={
                "kafka": KafkaResource(bootstrap_servers=ends.bootstrap_servers),
                "redis": RedisResource(url=ends.redis_url),
                "mlflow": MlflowResource(tracking_uri=ends.mlflow_tracking_uri),
            },
            instance=instance,
            tags={KIND_TAG: "incremental", LEASE_TAG: f"{time.time() + 600:.0f}"},
        )
        driver.join(timeout=30)
    assert result.success
    assert seen["status"]["state"] == "LIVE" and seen["heartbeat"]
    assert seen["materialized"] is not None and seen["materialized"].run_id == result.run_id
    status = live_store.read_status(client, "ecci", run_settings.redis_namespace)
    assert status["state"] == "FINISHED" and status["stop_reason"] == "stopped"
    last = result.asset_materializations_for_node("ecci_incremental_learner")[-1]
    assert last.metadata["events_learned"].value == 400
