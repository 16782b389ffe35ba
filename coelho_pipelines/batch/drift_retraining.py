"""`<uc>_drift_retraining`: the live learner's drift, turned into batch retraining.

New drift records (Redis) become a run request of the batch job `<uc>_features_and_training`
over today's and yesterday's partitions (it builds the features it trains on), when those
days' raw events make a sound split (readiness.py); otherwise the tick says why it skipped.
The run key is the drift's event count, so a drift detected again after a resume does not
retrain twice.
"""

from datetime import UTC, date, datetime

import dagster as dg

from coelho_pipelines.batch import readiness
from coelho_pipelines.incremental import live_store
from coelho_pipelines.naming import TRIGGER_TAG, drift_sensor_name, retraining_job_name
from coelho_pipelines.resources import LakehouseResource, RedisResource
from coelho_pipelines.use_cases.spec import UseCaseSpec

DRIFT_INTERVAL_SECONDS = 60


def build_drift_sensor(
    spec: UseCaseSpec, namespace: str = live_store.NAMESPACE
) -> dg.SensorDefinition:
    target = retraining_job_name(spec)

    @dg.sensor(
        name=drift_sensor_name(spec),
        job_name=target,
        minimum_interval_seconds=DRIFT_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Requests `{target}` (today's and yesterday's features, then training) when the "
            f"{spec.key} learner detects drift on its error stream (drift records in Redis), "
            "if the recent events make a sound split; otherwise skips and says why."
        ),
    )
    def drift_retraining(
        context: dg.SensorEvaluationContext, redis: RedisResource, lakehouse: LakehouseResource
    ):
        after = int(context.cursor or 0)
        try:
            drifts = live_store.read_drifts(redis.client(), spec.key, after, namespace)
        except Exception as exc:  # noqa: BLE001 - Redis down: try again next tick
            return dg.SkipReason(f"cannot read drift records from Redis: {exc}")
        if not drifts:
            return dg.SkipReason("no new drift")
        context.update_cursor(str(drifts[-1]["id"]))
        return drift_request(context.instance, spec, lakehouse, drifts, datetime.now(UTC).date())

    return drift_retraining


def drift_request(
    instance: dg.DagsterInstance,
    spec: UseCaseSpec,
    lakehouse: LakehouseResource,
    drifts: list[dict],
    today: date,
) -> dg.RunRequest | dg.SkipReason:
    """What new drift records lead to: a features-and-training run over the recent days, or a
    skip that says why (a training in progress, or too few recent events for a sound split)."""
    latest = drifts[-1]
    seen = f"{len(drifts)} new drift(s), the latest at {latest['events_learned']} events"
    running = readiness.active_batch_run(instance, spec)
    if running is not None:
        return dg.SkipReason(f"{seen}; batch run {running.run_id} ({running.job_name}) is running")
    try:
        verdict = readiness.assess(spec, lakehouse, today)
    except Exception as exc:  # noqa: BLE001 - unreadable raw table: report, do not crash
        return dg.SkipReason(f"{seen}; cannot read the raw events: {str(exc).splitlines()[0]}")
    if not verdict.ready:
        return dg.SkipReason(f"{seen}; not retraining: {verdict.reason}")
    return readiness.training_request(
        spec,
        verdict,
        run_key=f"drift-{latest['events_learned']}",
        tags={
            TRIGGER_TAG: "drift",
            "coelho/drift_id": str(latest["id"]),
            "coelho/drift_events_learned": str(latest["events_learned"]),
        },
    )
