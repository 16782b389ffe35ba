"""`<uc>_first_training`: the first batch training starts by itself once the data suffice.

Running by default. Until the use case has a champion (a `<uc>/champion_model`
materialization), each tick asks `readiness.assess` whether today's and yesterday's raw
events make a sound split (batch/readiness.py: rows per split and, for classification,
positives per split) and, when they do, requests `<uc>_features_and_training` over those
days, which builds the feature partitions before it trains. Every tick that requests
nothing says why on the tick (SkipReason). It stops after `MAX_ATTEMPTS` failed runs, so a
broken training does not fail again every minute. Later trainings are the daily schedule's
and the drift sensor's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg

from coelho_pipelines.batch import readiness
from coelho_pipelines.batch.lineage import CHAMPION_MODEL, asset_key
from coelho_pipelines.naming import TRIGGER_TAG, USE_CASE_TAG, first_training_sensor_name
from coelho_pipelines.resources import LakehouseResource
from coelho_pipelines.use_cases.spec import UseCaseSpec

INTERVAL_SECONDS = 60
MAX_ATTEMPTS = 3
TRIGGER = "first_training"


def build_first_training_sensor(spec: UseCaseSpec, job: object) -> dg.SensorDefinition:
    """The sensor, targeting `job` (`<uc>_features_and_training`)."""

    @dg.sensor(
        name=first_training_sensor_name(spec),
        job=job,
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Starts the first {spec.key} batch training (features of today and "
        "yesterday, then training) once the recent events make a sound split; idle once a "
        "champion exists.",
    )
    def first_training(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
        return evaluate(context.instance, spec, lakehouse, datetime.now(UTC).date())

    return first_training


def evaluate(
    instance: dg.DagsterInstance, spec: UseCaseSpec, lakehouse: LakehouseResource, today: date
) -> dg.RunRequest | dg.SkipReason:
    """One tick of `<uc>_first_training` (a function of the instance, the data and the day)."""
    champion = instance.get_latest_materialization_event(asset_key(spec, CHAMPION_MODEL))
    if champion is not None:
        return dg.SkipReason(
            f"{spec.key} has a champion (run {champion.run_id}); retraining is the daily "
            "schedule's and the drift sensor's job"
        )
    running = readiness.active_batch_run(instance, spec)
    if running is not None:
        return dg.SkipReason(f"batch run {running.run_id} ({running.job_name}) is in progress")
    attempts = instance.get_runs(
        filters=dg.RunsFilter(tags={TRIGGER_TAG: TRIGGER, USE_CASE_TAG: spec.key})
    )
    failed = [r for r in attempts if r.status == dg.DagsterRunStatus.FAILURE]
    if len(failed) >= MAX_ATTEMPTS:
        return dg.SkipReason(
            f"{len(failed)} first-training runs failed (last {failed[0].run_id}); fix the cause "
            f"and start {failed[0].job_name} by hand"
        )
    try:
        verdict = readiness.assess(spec, lakehouse, today)
    except Exception as exc:  # noqa: BLE001 - a table mid-write or unreadable: next tick
        return dg.SkipReason(f"cannot read the raw events: {str(exc).splitlines()[0]}")
    if not verdict.ready:
        return dg.SkipReason(f"waiting for data: {verdict.reason}")
    return readiness.training_request(
        spec, verdict, run_key=f"first-training-{len(attempts) + 1}", tags={TRIGGER_TAG: TRIGGER}
    )
