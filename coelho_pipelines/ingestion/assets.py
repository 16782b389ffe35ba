"""Dagster assets `<uc>/raw_events` and `<uc>/dead_letters`, and the job `<uc>_ingestion`.

One op materializes both. Bounded (the default): it runs `pipeline.ingest` over the offset
ranges in its config (empty means "everything new") and reports what it committed. Continuous
(`continuous: true`, what `<uc>_ingestion_sensor` launches): it runs `continuous.py` until its
keeper lease expires or the run is terminated, reporting materializations of both assets and
the raw-events check results at a bounded rate, so the UI shows freshness and quality.
"""

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import dagster as dg

from coelho_pipelines.ingestion.consume import DEFAULT_BATCH_SIZE, OffsetRange
from coelho_pipelines.ingestion.keys import dead_letters_key, raw_events_key
from coelho_pipelines.ingestion.pipeline import IngestionResult, ingest
from coelho_pipelines.lakehouse.tables import file_stats, raw_schema
from coelho_pipelines.naming import (
    INGESTION,
    PARTITION_COLUMN,
    dead_letter_table_name,
    ingestion_job_name,
    ingestion_op_name,
    raw_table_name,
    run_tags,
)
from coelho_pipelines.resources import KafkaResource, LakehouseResource
from coelho_pipelines.topics import topic_asset_key
from coelho_pipelines.use_cases.spec import UseCaseSpec


def ingestion_tags(spec: UseCaseSpec) -> dict[str, str]:
    """Tags of every ingestion run (dagster.yaml limits concurrency on `coelho/kind`)."""
    return run_tags(INGESTION, spec)


class OffsetRangeConfig(dg.Config):
    partition: int
    start: int
    end: int


class IngestionConfig(dg.Config):
    """Bounded: offset ranges to ingest (empty: everything new), capped at `max_events`.
    Continuous: consume without end, committing every `commit_interval_seconds` or
    `batch_size` messages, whichever first (ranges and max_events are ignored)."""

    ranges: list[OffsetRangeConfig] = []
    max_events: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    continuous: bool = False
    commit_interval_seconds: float = 2.0
    report_interval_seconds: float = 30.0
    checks_interval_seconds: float = 300.0
    compact_every_commits: int = 300

    def continuous_settings(self) -> Any:
        from coelho_pipelines.ingestion.continuous import ContinuousSettings

        return ContinuousSettings(
            commit_interval_seconds=self.commit_interval_seconds,
            max_events=self.batch_size,
            report_interval_seconds=self.report_interval_seconds,
            checks_interval_seconds=self.checks_interval_seconds,
            compact_every_commits=self.compact_every_commits,
        )


def _column_schema(spec: UseCaseSpec) -> dg.TableSchema:
    columns = [
        dg.TableColumn(field.name, str(field.type), constraints=_constraints(field.nullable))
        for field in raw_schema(spec)
    ]
    return dg.TableSchema(columns=columns)


def _constraints(nullable: bool) -> dg.TableColumnConstraints:
    return dg.TableColumnConstraints(nullable=nullable)


def _asset_specs(spec: UseCaseSpec, lakehouse_hint: str) -> list[dg.AssetSpec]:
    common = {"group_name": spec.key, "kinds": {"delta", "kafka"}, "deps": [topic_asset_key(spec)]}
    return [
        dg.AssetSpec(
            raw_events_key(spec),
            description=(
                f"Validated {spec.title} events from Kafka topic `{spec.topic}`, appended exactly "
                f"once (Delta table `{lakehouse_hint}/delta/{raw_table_name(spec)}`, "
                f"partitioned by `{PARTITION_COLUMN}`)."
            ),
            metadata={"dagster/column_schema": _column_schema(spec), "topic": spec.topic},
            **common,
        ),
        dg.AssetSpec(
            dead_letters_key(spec),
            description=(
                f"Messages of `{spec.topic}` that failed to parse or validate: raw bytes, reason, "
                f"Kafka coordinates (Delta table `{dead_letter_table_name(spec)}`)."
            ),
            metadata={"topic": spec.topic},
            **common,
        ),
    ]


def result_metadata(result: IngestionResult, table_uri: str) -> dict[str, object]:
    return {
        "events_committed": result.events,
        "dead_letters_committed": result.dead_letters,
        "messages_read": result.messages_read,
        "commits": result.commits,
        "seconds": round(result.seconds, 3),
        "events_per_second": round(result.events_per_second, 1),
        "ranges": json.dumps([r.as_config() for r in result.ranges]),
        "committed_offsets": json.dumps({str(k): v for k, v in result.committed_offsets.items()}),
        "end_offsets": json.dumps({str(k): v for k, v in result.end_offsets.items()}),
        "lag": sum(result.lag.values()),
        "delta_version": result.raw_version if result.raw_version is not None else -1,
        "table_uri": dg.MetadataValue.path(table_uri),
    }


def build_ingestion_asset(spec: UseCaseSpec) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=ingestion_op_name(spec),
        specs=_asset_specs(spec, "<lakehouse>"),
        op_tags=ingestion_tags(spec),
        description=f"Ingest new messages of `{spec.topic}` into Delta, exactly once.",
    )
    def ingest_op(
        context: dg.AssetExecutionContext,
        config: IngestionConfig,
        kafka: KafkaResource,
        lakehouse: LakehouseResource,
    ):
        if config.continuous:
            yield from _ingest_continuously(context, spec, config, kafka, lakehouse)
            return
        ranges = [OffsetRange(r.partition, r.start, r.end) for r in config.ranges] or None
        result = ingest(
            spec,
            kafka,
            lakehouse,
            ranges=ranges,
            max_events=config.max_events,
            batch_size=config.batch_size,
            log=context.log.info,
        )
        context.log.info(result.summary())
        raw_uri = lakehouse.table_uri(raw_table_name(spec))
        dead_uri = lakehouse.table_uri(dead_letter_table_name(spec))
        raw_meta = result_metadata(result, raw_uri)
        raw_meta["dagster/row_count"] = file_stats(raw_uri, lakehouse.storage_options)["rows"]
        raw_meta["dead_letter_reasons"] = json.dumps(result.reasons)
        yield dg.MaterializeResult(asset_key=raw_events_key(spec), metadata=raw_meta)
        yield dg.MaterializeResult(
            asset_key=dead_letters_key(spec),
            metadata={
                "dead_letters_committed": result.dead_letters,
                "reasons": json.dumps(result.reasons),
                "dagster/row_count": file_stats(dead_uri, lakehouse.storage_options)["rows"],
                "table_uri": dg.MetadataValue.path(dead_uri),
            },
        )

    return ingest_op


def _ingest_continuously(
    context: dg.AssetExecutionContext,
    spec: UseCaseSpec,
    config: IngestionConfig,
    kafka: KafkaResource,
    lakehouse: LakehouseResource,
) -> Iterator[Any]:
    from coelho_pipelines.ingestion.checks import evaluate
    from coelho_pipelines.ingestion.continuous import CheckResults, ContinuousIngestion
    from coelho_pipelines.keeper import RunControl, stream_from_worker

    _serve_metrics()
    ingestion = ContinuousIngestion(
        spec,
        kafka,
        lakehouse,
        config.continuous_settings(),
        log=context.log.info,
        check=lambda: evaluate(spec, lakehouse),
    )
    raw_uri = lakehouse.table_uri(raw_table_name(spec))
    last = None

    def consume(emit: Any) -> None:
        for report in ingestion.run(control.should_stop):
            emit(report)

    control = RunControl(context.instance, context.run.run_id, log=context.log.info)
    try:
        with control:
            # ingesting on a worker thread; this thread turns its reports into Dagster events
            for report in stream_from_worker(consume, control, "coelho-ingest"):
                if isinstance(report, CheckResults):
                    yield from (_check_evaluation(r) for r in report.results)
                elif not report.final:
                    yield from _progress_events(spec, report, raw_uri)
                else:
                    last = report
    finally:  # also when Dagster closes the op on an interrupt: the worker has finished by now
        totals = ingestion.totals
        context.log.info(
            f"{spec.key}: continuous ingestion stopped ({control.stop_reason}); {totals.events} "
            f"events and {totals.dead_letters} dead letters in {totals.commits} commits"
        )
    meta = _progress_metadata(last, raw_uri)
    yield dg.MaterializeResult(asset_key=raw_events_key(spec), metadata=meta)
    yield dg.MaterializeResult(
        asset_key=dead_letters_key(spec),
        metadata={"dead_letters_committed": last.dead_letters, "reasons": json.dumps(last.reasons)},
    )
    if control.signalled.is_set():
        raise dg.DagsterExecutionInterruptedError("continuous ingestion terminated on request")


def _serve_metrics() -> None:
    """Prometheus metrics of a continuous run on COELHO_INGESTION_METRICS_PORT (the Helm chart
    sets it on run pods); taken or unset: none."""
    from coelho_pipelines import settings, telemetry

    port = settings.load(settings.RunOptions).ingestion_metrics_port
    with contextlib.suppress(OSError):  # served by an earlier run in this process, or taken
        telemetry.serve_metrics(port)


def _progress_metadata(progress: Any, raw_uri: str) -> dict[str, Any]:
    return {
        "events_committed": progress.events,
        "dead_letters_committed": progress.dead_letters,
        "messages_read": progress.messages,
        "commits": progress.commits,
        "seconds": round(progress.seconds, 3),
        "committed_offsets": json.dumps({str(k): v for k, v in progress.committed_offsets.items()}),
        "end_offsets": json.dumps({str(k): v for k, v in progress.end_offsets.items()}),
        "lag": progress.lag,
        "delta_version": progress.raw_version if progress.raw_version is not None else -1,
        "compactions": progress.compactions,
        "continuous": True,
        "table_uri": dg.MetadataValue.path(raw_uri),
    }


def _progress_events(spec: UseCaseSpec, progress: Any, raw_uri: str) -> Iterator[Any]:
    """Materializations for one progress report: raw events always (freshness), dead letters
    only when some were committed."""
    yield dg.AssetMaterialization(
        asset_key=raw_events_key(spec),
        description=f"{progress.events} events committed in the last {progress.seconds:.0f}s",
        metadata=_progress_metadata(progress, raw_uri),
    )
    if progress.dead_letters:
        yield dg.AssetMaterialization(
            asset_key=dead_letters_key(spec),
            metadata={
                "dead_letters_committed": progress.dead_letters,
                "reasons": json.dumps(progress.reasons),
            },
        )


def _check_evaluation(result: dg.AssetCheckResult) -> dg.AssetCheckEvaluation:
    """A check result computed inside the run, as the event Dagster records for checks."""
    return dg.AssetCheckEvaluation(
        asset_key=result.asset_key,
        check_name=result.check_name,
        passed=bool(result.passed),
        metadata=result.metadata,
        severity=result.severity,
        description=result.description,
    )


def build_ingestion_job(
    spec: UseCaseSpec, asset: dg.AssetsDefinition
) -> Any:  # dagster UnresolvedAssetJobDefinition
    return dg.define_asset_job(
        ingestion_job_name(spec),
        selection=dg.AssetSelection.assets(asset),
        tags=ingestion_tags(spec),
        executor_def=dg.in_process_executor,  # one op: no step subprocess to start
        description=f"Ingest {spec.topic} into {spec.key}/raw_events and {spec.key}/dead_letters.",
    )
