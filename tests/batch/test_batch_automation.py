"""The self-driving batch side: the features automation and the first-training sensor.

The automation condition is evaluated tick by tick (Dagster's `evaluate_automation_conditions`)
against a real test instance, with `<uc>/raw_events` updates and `<uc>/features`
materializations recorded on it. The first-training sensor is evaluated against a real
instance and a real raw Delta table written by the ingestion helpers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from coelho_pipelines import naming
from coelho_pipelines.batch import readiness
from coelho_pipelines.batch.assets import build_features_asset
from coelho_pipelines.batch.automation import build_features_automation_sensor
from coelho_pipelines.batch.defs import build_batch_defs
from coelho_pipelines.batch.lineage import CHAMPION_MODEL, FEATURES, asset_key
from coelho_pipelines.batch.sensors import evaluate
from coelho_pipelines.ingestion.keys import raw_events_key
from coelho_pipelines.naming import (
    TRIGGER_TAG,
    USE_CASE_TAG,
    features_automation_sensor_name,
    first_training_sensor_name,
    retraining_job_name,
)
from coelho_pipelines.resources import LakehouseResource, MlflowResource

from .conftest import generate, isolated_spec, write_raw_events

DAY = datetime(2026, 3, 2, tzinfo=UTC)


class Ticks:
    """Successive evaluations of the features automation on one instance."""

    def __init__(self, spec, instance) -> None:
        self.spec = spec
        self.instance = instance
        self.defs = dg.Definitions(
            assets=[dg.AssetSpec(raw_events_key(spec)), build_features_asset(spec)],
            resources={"lakehouse": LakehouseResource(uri="unused")},  # nothing runs
        )
        self.cursor = None

    def at(self, when: datetime) -> set[str]:
        result = dg.evaluate_automation_conditions(
            self.defs, self.instance, evaluation_time=when, cursor=self.cursor
        )
        self.cursor = result.cursor
        return set(result.get_requested_partitions(asset_key(self.spec, FEATURES)))

    def raw_events_arrive(self) -> None:
        self.instance.report_runless_asset_event(
            dg.AssetMaterialization(raw_events_key(self.spec), metadata={"rows": 600})
        )

    def built(self, *days: str) -> None:
        for day in days:
            self.instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key(self.spec, FEATURES), partition=day)
            )


def _minutes(day: datetime, hours: int, minutes: int) -> datetime:
    return day + timedelta(hours=hours, minutes=minutes)


def test_features_are_requested_on_a_cadence_for_today_and_yesterday_once(instance) -> None:
    spec = isolated_spec("eta")
    ticks = Ticks(spec, instance)
    today, yesterday, tomorrow = "2026-03-02", "2026-03-01", "2026-03-03"

    assert ticks.at(_minutes(DAY, 10, 1)) == set()  # the first evaluation only looks
    ticks.raw_events_arrive()
    assert ticks.at(_minutes(DAY, 10, 3)) == set()  # new events, but no cadence tick yet
    # The 10:05 tick: today, and yesterday because it is missing; never older days.
    assert ticks.at(_minutes(DAY, 10, 6)) == {today, yesterday}
    ticks.built(today, yesterday)
    assert ticks.at(_minutes(DAY, 10, 7)) == set()
    ticks.raw_events_arrive()
    assert ticks.at(_minutes(DAY, 10, 8)) == set()  # between cadence ticks
    assert ticks.at(_minutes(DAY, 10, 11)) == {today}  # yesterday is built and closed
    ticks.built(today)
    assert ticks.at(_minutes(DAY, 10, 12)) == set()
    assert ticks.at(_minutes(DAY, 10, 16)) == set()  # a cadence tick, but no new raw events
    ticks.raw_events_arrive()
    assert ticks.at(_minutes(DAY, 10, 21)) == {today}
    ticks.built(today)
    assert ticks.at(_minutes(DAY, 23, 58)) == set()

    # After midnight: the new day, and the day that just closed one last time.
    ticks.raw_events_arrive()
    next_day = DAY + timedelta(days=1)
    assert ticks.at(_minutes(next_day, 0, 6)) == {tomorrow, today}
    ticks.built(tomorrow, today)
    assert ticks.at(_minutes(next_day, 0, 7)) == set()
    ticks.raw_events_arrive()
    assert ticks.at(_minutes(next_day, 0, 11)) == {tomorrow}


def test_the_automation_sensor_targets_the_features_and_runs_by_default() -> None:
    spec = isolated_spec("tfd")
    sensor = build_features_automation_sensor(spec)
    assert sensor.name == features_automation_sensor_name(spec) == f"{spec.key}_features_automation"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    repo = _loadable(spec, LakehouseResource(uri="unused"))
    graph = repo.resolve_asset_graph()
    assert sensor.asset_selection.resolve(graph) == {asset_key(spec, FEATURES)}
    first = repo.get_repository_def().get_sensor_def(first_training_sensor_name(spec))
    assert first.default_status == dg.DefaultSensorStatus.RUNNING
    assert first.job_name == retraining_job_name(spec)


def _loadable(spec, lakehouse, mlflow=None) -> dg.Definitions:
    """The batch definitions with a raw-events stand-in and resources (MLflow unreachable
    unless given: nothing here trains)."""
    return dg.Definitions.merge(
        build_batch_defs(spec),
        dg.Definitions(
            assets=[dg.AssetSpec(raw_events_key(spec))],
            resources={
                "lakehouse": lakehouse,
                "mlflow": mlflow or MlflowResource(tracking_uri="http://127.0.0.1:1"),
            },
        ),
    )


# --- the first training ------------------------------------------------------------------


def _events_today(spec, n: int, seed: int = 7) -> tuple[date, list[dict]]:
    """`n` events within the first hours of the conftest's START day."""
    _, events = generate(spec, n, days=0.2, seed=seed)
    return datetime.fromisoformat(events[0][spec.time_field]).date(), events


def test_first_training_waits_for_a_sound_split_then_requests_features_and_training(
    instance, lakehouse
) -> None:
    spec = isolated_spec("tfd")  # fraud_rate 0.03 in the test generator
    day, events = _events_today(spec, 6000)

    missing = evaluate(instance, spec, lakehouse, day)
    assert isinstance(missing, dg.SkipReason) and "no raw events yet" in missing.skip_message

    write_raw_events(spec, lakehouse.uri, events[:900])  # ~27 frauds: too few per split
    waiting = evaluate(instance, spec, lakehouse, day)
    assert isinstance(waiting, dg.SkipReason)
    assert "not enough" in waiting.skip_message and "positives" in waiting.skip_message
    counts, _ = readiness.split_counts(spec, naming.raw_table_uri(lakehouse.uri, spec), day, day)
    assert sum(c["rows"] for c in counts.values()) == 900
    assert readiness.shortfalls(spec, counts)

    write_raw_events(spec, lakehouse.uri, events[900:])
    request = evaluate(instance, spec, lakehouse, day)
    assert isinstance(request, dg.RunRequest), request
    assert request.run_key == "first-training-1"
    assert request.tags[readiness.RANGE_START_TAG] == day.isoformat()  # no events the day before
    assert request.tags[readiness.RANGE_END_TAG] == day.isoformat()
    assert request.tags[USE_CASE_TAG] == spec.key
    counts, _ = readiness.split_counts(spec, naming.raw_table_uri(lakehouse.uri, spec), day, day)
    assert not readiness.shortfalls(spec, counts)
    assert all(c["positives"] >= readiness.MIN_POSITIVES[s] for s, c in counts.items())

    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key(spec, CHAMPION_MODEL)))
    done = evaluate(instance, spec, lakehouse, day)
    assert isinstance(done, dg.SkipReason) and "has a champion" in done.skip_message


def test_first_training_sensor_tick_says_why_it_waits(instance, lakehouse) -> None:
    spec = isolated_spec("eta")
    sensor = _loadable(spec, lakehouse).get_sensor_def(first_training_sensor_name(spec))
    context = dg.build_sensor_context(instance=instance, resources={"lakehouse": lakehouse})
    result = sensor.evaluate_tick(context)
    assert not result.run_requests
    assert "no raw events yet" in result.skip_message


@pytest.mark.services
def test_the_requested_run_builds_its_features_and_registers_the_first_champion(
    instance, lakehouse, mlflow_resource
) -> None:
    spec = isolated_spec("tfd")
    day, events = _events_today(spec, 3000, seed=11)
    write_raw_events(spec, lakehouse.uri, events)
    request = evaluate(instance, spec, lakehouse, day)
    assert isinstance(request, dg.RunRequest), request
    job = _loadable(spec, lakehouse, mlflow_resource).get_job_def(retraining_job_name(spec))
    small = {
        f"{spec.key}__batch_model": {"config": {"iterations": 50, "learning_rate": 0.3}},
        f"{spec.key}__batch_visualizations": {
            "config": {"sample_size": 300, "diagnostics_sample_size": 500, "text_limit": 600}
        },
    }
    result = job.execute_in_process(
        instance=instance, tags=dict(request.tags), run_config={"ops": small}
    )
    assert result.success
    assert instance.get_latest_materialization_event(asset_key(spec, CHAMPION_MODEL)) is not None
    after = evaluate(instance, spec, lakehouse, day)
    assert isinstance(after, dg.SkipReason) and "has a champion" in after.skip_message


# --- drift retraining ----------------------------------------------------------------------


def test_drift_retraining_skips_with_a_reason_then_requests_features_and_training(
    instance, lakehouse
) -> None:
    from coelho_pipelines.batch.drift_retraining import build_drift_sensor, drift_request

    spec = isolated_spec("tfd")
    assert build_drift_sensor(spec).job_name == retraining_job_name(spec)
    drifts = [{"id": 1, "events_learned": 12_000}, {"id": 2, "events_learned": 15_500}]
    day, events = _events_today(spec, 6000, seed=5)

    nothing = drift_request(instance, spec, lakehouse, drifts, day)
    assert isinstance(nothing, dg.SkipReason)
    assert "2 new drift(s), the latest at 15500 events" in nothing.skip_message
    assert "not retraining: no raw events yet" in nothing.skip_message

    write_raw_events(spec, lakehouse.uri, events[:500])
    few = drift_request(instance, spec, lakehouse, drifts, day)
    assert isinstance(few, dg.SkipReason) and "not enough" in few.skip_message

    write_raw_events(spec, lakehouse.uri, events[500:])
    request = drift_request(instance, spec, lakehouse, drifts, day)
    assert isinstance(request, dg.RunRequest), request
    assert request.run_key == "drift-15500"
    assert request.tags[TRIGGER_TAG] == "drift"
    assert request.tags["coelho/drift_id"] == "2"
    assert request.tags[readiness.RANGE_START_TAG] == day.isoformat()
    assert request.tags[readiness.RANGE_END_TAG] == day.isoformat()
