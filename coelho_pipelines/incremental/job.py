"""Dagster side of the incremental learner: the `<uc>/incremental_model` asset, the learner
op and the `<uc>_incremental_learning` job (wired with the sensors in `defs.py`).

`dagster job execute -j <uc>_incremental_learning` runs one learner headless (until its
long maximum or a signal); the sensor `<uc>_incremental_learning_sensor` keeps one running
while it is on, as a keeper (see `keeper.py`): the op heartbeats and stops once its lease
expires (switch off).
Terminating the run (UI, SIGTERM, SIGINT) makes the learner take a final snapshot, set
its Redis status to FINISHED and exit; the run then ends as canceled. A lease expiry ends it
the same way, as a success.
"""

import dataclasses
import math
import typing
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import pydantic

from coelho_pipelines import telemetry
from coelho_pipelines.incremental.settings import LearnerSettings
from coelho_pipelines.keeper import RunControl, stream_from_worker
from coelho_pipelines.naming import (
    INCREMENTAL,
    LEARNER_TAG,
    incremental_job_name,
    incremental_sensor_name,
)
from coelho_pipelines.naming import run_tags as base_run_tags
from coelho_pipelines.resources import KafkaResource, MlflowResource, RedisResource
from coelho_pipelines.settings import RunOptions, load
from coelho_pipelines.topics import topic_asset_key
from coelho_pipelines.use_cases.spec import UseCaseSpec

_metrics_server: dict[str, int] = {}


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
            f"the `{incremental_job_name(spec)}` job; snapshots in the MLflow experiment "
            f"'{spec.experiment}', live model in Redis."
        ),
        metadata={"primary_metric": spec.river_primary.name, "model": spec.river_model_name},
    )


# Run config: 0 for these means "no limit" (the settings take math.inf).
UNBOUNDED_AT_ZERO = ("max_duration_seconds", "idle_timeout_seconds")


class _LearnerConfig(dg.Config):
    """One learner run: it lives until its lease expires, a signal, or the long maximum.

    Every `LearnerSettings` field is a key (same name and default). `idle_timeout_seconds` 0
    (the default) means a quiet stream never ends the run; `max_duration_seconds` 0 means no
    maximum; an empty string means the default (the use case's topic, experiment, consumer
    group; capture mode "auto" where fork exists)."""

    def settings(self) -> LearnerSettings:
        """The runner's settings: same field names; an empty string means "the default"."""
        values: dict[str, Any] = self.model_dump()
        for name in _OPTIONAL:
            values[name] = values[name] or None
        for name in UNBOUNDED_AT_ZERO:
            if values[name] <= 0:
                values[name] = math.inf
        return LearnerSettings(**values)


def _config_fields() -> tuple[dict[str, Any], frozenset[str]]:
    """Run config fields from `LearnerSettings`: optional settings become strings ("")."""
    hints = typing.get_type_hints(LearnerSettings)
    fields: dict[str, Any] = {}
    optional = set()
    for f in dataclasses.fields(LearnerSettings):
        if type(None) in typing.get_args(hints[f.name]):
            fields[f.name] = (str, "")
            optional.add(f.name)
        else:
            fields[f.name] = (hints[f.name], f.default)
    return fields, frozenset(optional)


_FIELDS, _OPTIONAL = _config_fields()
IncrementalLearningConfig = pydantic.create_model(
    "IncrementalLearningConfig",
    __base__=_LearnerConfig,
    __module__=__name__,
    __doc__=_LearnerConfig.__doc__,
    **_FIELDS,
)


def serve_learner_metrics() -> None:
    """Expose Prometheus metrics on COELHO_LEARNER_METRICS_PORT (once per process)."""
    port = load(RunOptions).learner_metrics_port
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
        name=incremental_job_name(spec),
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
