"""`<uc>_ingestion_sensor`: launch a bounded ingestion run for each new range of offsets.

The sensor only looks at offsets: Kafka end offsets against the Delta table's application
transaction versions. Run config carries the offset ranges, never message payloads. The run key
names the range, so a range is requested once; while an ingestion run of the use case is queued
or running, the sensor skips. If a run for a range ended without committing it (failed), the next
request for the same range gets a `:retry<n>` suffix.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from coelho_pipelines.ingestion.assets import (
    IngestionConfig,
    OffsetRangeConfig,
    ingestion_op_name,
    ingestion_tags,
)
from coelho_pipelines.ingestion.consume import OffsetRange, plan_ranges, run_key
from coelho_pipelines.ingestion.tables import app_id, raw_table_name
from coelho_pipelines.resources import KafkaResource, LakehouseResource
from coelho_pipelines.use_cases.spec import UseCaseSpec

MIN_INTERVAL_SECONDS = 20
MAX_EVENTS_PER_RUN = 2_000_000
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class Decision:
    """What the sensor does this tick: a run for `ranges` under `key`, or skip with a reason."""

    ranges: list[OffsetRange]
    key: str | None
    cursor: str
    skip_reason: str | None = None


def committed_offsets(
    lakehouse: LakehouseResource, spec: UseCaseSpec, partitions: list[int]
) -> dict[int, int | None]:
    """The raw table's transaction version per partition; all None before the first run."""
    from deltalake import DeltaTable

    uri = lakehouse.table_uri(raw_table_name(spec))
    options = lakehouse.storage_options
    if not DeltaTable.is_deltatable(uri, storage_options=options):
        return dict.fromkeys(partitions)
    table = DeltaTable(uri, storage_options=options)
    return {p: table.transaction_version(app_id(spec.topic, p)) for p in partitions}


def decide(
    spec: UseCaseSpec,
    end_offsets: Mapping[int, int],
    committed: Mapping[int, int | None],
    cursor: str | None,
    in_flight_run: str | None,
    max_events: int = MAX_EVENTS_PER_RUN,
) -> Decision:
    """Pure decision logic of one tick (unit-tested without Dagster or Kafka)."""
    state = json.loads(cursor) if cursor else {}
    if in_flight_run is not None:
        return Decision([], None, cursor or "", f"ingestion run {in_flight_run} is in flight")
    ranges = plan_ranges(end_offsets, committed, max_events)
    if not ranges:
        return Decision([], None, cursor or "", "no new offsets: the table is up to date")
    base = run_key(spec.key, ranges)
    attempt = state.get("attempt", 0) + 1 if state.get("key") == base else 0
    key = base if attempt == 0 else f"{base}:retry{attempt}"
    return Decision(ranges, key, json.dumps({"key": base, "attempt": attempt}))


def in_flight_run_id(instance: dg.DagsterInstance, spec: UseCaseSpec) -> str | None:
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags=ingestion_tags(spec), statuses=IN_FLIGHT), limit=1
    )
    return records[0].dagster_run.run_id if records else None


def run_request(spec: UseCaseSpec, decision: Decision) -> dg.RunRequest:
    config = IngestionConfig(ranges=[OffsetRangeConfig(**r.as_config()) for r in decision.ranges])
    events = sum(r.size for r in decision.ranges)
    return dg.RunRequest(
        run_key=decision.key,
        run_config=dg.RunConfig(ops={ingestion_op_name(spec): config}),
        tags={**ingestion_tags(spec), "coelho/events": str(events)},
    )


def build_ingestion_sensor(spec: UseCaseSpec, job: Any) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{spec.key}_ingestion_sensor",
        job=job,
        minimum_interval_seconds=MIN_INTERVAL_SECONDS,
        description=(
            f"Launches {job.name} for each new range of offsets of `{spec.topic}` (Kafka end "
            "offsets vs. the Delta table's committed versions)."
        ),
    )
    def ingestion_sensor(
        context: dg.SensorEvaluationContext, kafka: KafkaResource, lakehouse: LakehouseResource
    ):  # noqa: ANN202 - RunRequest | SkipReason
        in_flight = in_flight_run_id(context.instance, spec)
        if in_flight is not None:
            return dg.SkipReason(f"ingestion run {in_flight} is in flight")
        end_offsets = kafka.end_offsets(spec.topic, timeout=5.0)
        committed = committed_offsets(lakehouse, spec, sorted(end_offsets))
        decision = decide(spec, end_offsets, committed, context.cursor, None)
        if decision.key is None:
            return dg.SkipReason(decision.skip_reason)
        context.update_cursor(decision.cursor)
        return run_request(spec, decision)

    return ingestion_sensor
