"""Dagster side of the incremental learner: the `<uc>/incremental_model` asset, the learner
op and the `<uc>_incremental_learning` job, plus the builder registered in `definitions.py`.

`dagster job execute -j <uc>_incremental_learning` runs one learner headless (until its
long maximum or a signal); the sensor `<uc>_incremental_learning_sensor` keeps one running
while it is on, as a keeper (see `keeper.py`): the op heartbeats and stops once its lease
expires (switch off).
Terminating the run (UI, SIGTERM, SIGINT) makes the learner take a final snapshot, set
its Redis status to FINISHED and exit; the run then ends as canceled. A lease expiry ends it
the same way, as a success.
"""

import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

from coelho_pipelines import telemetry
from coelho_pipelines.incremental.drift import DEFAULT_WARMUP_EVENTS
from coelho_pipelines.incremental.live_store import NAMESPACE
from coelho_pipelines.keeper import RunControl, stream_from_worker
from coelho_pipelines.naming import (
    INCREMENTAL,
    LEARNER_TAG,
    incremental_job_name,
    incremental_sensor_name,
)
from coelho_pipelines.naming import run_tags as base_run_tags
from coelho_pipelines.resources import KafkaResource, MlflowResource, RedisResource
from coelho_pipelines.topics import topic_asset_key
from coelho_pipelines.use_cases.spec import UseCaseSpec

METRICS_PORT_ENV = "COELHO_LEARNER_METRICS_PORT"
_metrics_server: dict[str, int] = {}


def job_name(spec: UseCaseSpec) -> str:
    return incremental_job_name(spec)


def incremental_model_key(spec: UseCaseSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.asset_prefix, "incremental_model"])


def run_tags(spec: UseCaseSpec) -> dict[str, str]:
    return {**base_run_tags(INCREMENTAL, spec), LEARNER_TAG: spec.key}


def incremental_model_asset(spec: UseCaseSpec) -> dg.AssetSpec:
    """The River model, materialized by the learner at every snapshot (not by Dagster)."""
    return dg.AssetSpec(
        key=incremental_model_key(spec),
        deps=[topic_asset_key(spec)],
        group_name=spec.key,
        kinds={"river", "mlflow"},
        description=(
            f"River {spec.river_model_name} learned prequentially from `{spec.topic}` by "
            f"the `{job_name(spec)}` job; snapshots in the MLflow experiment "
            f"'{spec.experiment}', live model in Redis."
        ),
        metadata={"primary_metric": spec.river_primary.name, "model": spec.river_model_name},
    )


class IncrementalLearningConfig(dg.Config):
    """One learner run: it lives until its lease expires, a signal, or the long maximum.

    `idle_timeout_seconds` 0 (the default) means a quiet stream never ends the run;
    `max_duration_seconds` 0 means no maximum."""

    max_duration_seconds: float = 86_400.0
    idle_timeout_seconds: float = 0.0
    snapshot_every: int = 1000
    snapshot_interval_seconds: float = 30.0
    publish_every: int = 100
    publish_interval_seconds: float = 1.0
    metrics_every: int = 100
    until_events: int = 0
    drift_warmup_events: int = DEFAULT_WARMUP_EVENTS
    capture_mode: str = ""  # "auto" (default where fork exists), "fork" or "inline"
    topic: str = ""  # default: the use case's topic
    experiment: str = ""  # default: the use case's MLflow experiment
    redis_namespace: str = NAMESPACE
    consumer_group: str = ""  # default: coelho-<uc>-incremental

    def settings(self) -> Any:
        """The runner's settings: same field names; an empty string means "the default"."""
        from coelho_pipelines.incremental.runner import LearnerSettings

        optional = {"capture_mode", "topic", "experiment", "consumer_group"}
        values = {k: (v or None) if k in optional else v for k, v in self.model_dump().items()}
        for unbounded in ("max_duration_seconds", "idle_timeout_seconds"):
            if values[unbounded] <= 0:
                values[unbounded] = math.inf
        return LearnerSettings(**values)


def serve_learner_metrics() -> None:
    """Expose Prometheus metrics on COELHO_LEARNER_METRICS_PORT (once per process)."""
    port = int(os.environ.get(METRICS_PORT_ENV) or 0)
    if port and port not in _metrics_server.values():
        try:
            telemetry.serve_metrics(port)
            _metrics_server["port"] = port
        except OSError:
            pass  # already served by an earlier run in this process, or taken


def _materialization(
    spec: UseCaseSpec, info: Any, metrics: dict[str, float], run_id: str, learner: Any = None
):
    metadata: dict[str, Any] = {
        "events_learned": info.events_learned,
        "mlflow_run_id": run_id,
        "snapshot_slot": info.slot,
        "offsets": dg.MetadataValue.json({str(p): o for p, o in info.offsets.items()}),
    }
    metadata.update({name: float(value) for name, value in metrics.items()})
    if learner is not None:  # the online candidates (see incremental.promotions)
        from coelho_pipelines.incremental.promotions import leaderboard_payload

        metadata["served_candidate"] = learner.leaderboard.served
        metadata["leaderboard"] = dg.MetadataValue.json(leaderboard_payload(learner))
    return dg.AssetMaterialization(
        asset_key=incremental_model_key(spec),
        description=f"snapshot at {info.events_learned} events",
        metadata=metadata,
    )


def build_learner_op(spec: UseCaseSpec) -> dg.OpDefinition:
    @dg.op(
        name=f"{spec.key}_incremental_learner",
        description=f"Learn {spec.key} events prequentially from Kafka while the run is kept.",
        tags={"kind": "river"},
        out=dg.Out(dg.Nothing),
    )
    def learner(
        context: dg.OpExecutionContext,
        config: IncrementalLearningConfig,
        kafka: KafkaResource,
        redis: RedisResource,
        mlflow: MlflowResource,
    ) -> Iterator[dg.AssetMaterialization]:
        from coelho_pipelines.incremental.runner import Endpoints, LearnerRun, RunHooks

        serve_learner_metrics()
        endpoints = Endpoints(kafka.bootstrap_servers, redis.url, mlflow.tracking_uri)
        control = RunControl(context.instance, context.run.run_id, log=context.log.info)
        emit: list[Callable[[Any], None]] = []

        def on_snapshot(info: Any, metrics: dict[str, float]) -> None:
            emit[0](_materialization(spec, info, metrics, run.mlflow_run_id or "", run.learner))

        def learn(to_op: Callable[[Any], None]) -> Any:
            emit.append(to_op)
            return run.run()

        run = LearnerRun(
            spec,
            endpoints,
            config.settings(),
            dagster_run_id=context.run.run_id,
            hooks=RunHooks(
                on_snapshot=on_snapshot, should_stop=control.should_stop, log=context.log.info
            ),
        )
        with control:
            # learning on a worker thread; snapshots reach the UI as they are taken
            summary = yield from stream_from_worker(learn, control, "coelho-learner")
        context.log.info(
            f"{spec.key}: {summary.stop_reason}; learned {summary.events_this_run} events "
            f"({summary.events_learned} in total, {summary.bad_events} bad), "
            f"{summary.drifts} drifts, {summary.redis_failures} Redis failures"
        )
        if summary.stop_reason == "stopped" and control.signalled.is_set():
            raise dg.DagsterExecutionInterruptedError(
                "learner terminated on request after its final snapshot"
            )

    return learner


def build_learning_job(spec: UseCaseSpec) -> dg.JobDefinition:
    learner = build_learner_op(spec)

    @dg.job(
        name=job_name(spec),
        tags=run_tags(spec),
        executor_def=dg.in_process_executor,
        description=(
            f"A long-lived run of the {spec.key} River learner, resuming from the latest "
            f"snapshot. The `{incremental_sensor_name(spec)}` sensor keeps one running while "
            "it is on."
        ),
    )
    def learning_job() -> None:
        learner()

    return learning_job


def build_incremental_defs(spec: UseCaseSpec) -> dg.Definitions:
    """Asset, job and sensors of one use case's incremental learner."""
    from coelho_pipelines.incremental.sensor import build_drift_sensor, build_learning_sensor

    job = build_learning_job(spec)
    return dg.Definitions(
        assets=[incremental_model_asset(spec)],
        jobs=[job],
        sensors=[build_learning_sensor(spec, job), build_drift_sensor(spec)],
    )
