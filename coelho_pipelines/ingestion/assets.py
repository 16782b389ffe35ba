"""Dagster assets `<uc>/raw_events` and `<uc>/dead_letters`, and the job `<uc>_ingestion`.

One op materializes both: it runs `pipeline.ingest` over the offset ranges in its config (the
sensor fills them in; empty means "everything new") and reports what it committed.
"""

import json
from typing import Any

import dagster as dg

from coelho_pipelines.ingestion.consume import DEFAULT_BATCH_SIZE, OffsetRange
from coelho_pipelines.ingestion.pipeline import IngestionResult, ingest
from coelho_pipelines.ingestion.tables import (
    PARTITION_COLUMN,
    dead_letter_table_name,
    file_stats,
    raw_schema,
    raw_table_name,
)
from coelho_pipelines.resources import KafkaResource, LakehouseResource
from coelho_pipelines.topics import topic_asset_key
from coelho_pipelines.use_cases.spec import UseCaseSpec

KIND_TAG = "coelho/kind"
USE_CASE_TAG = "coelho/use_case"


def ingestion_tags(spec: UseCaseSpec) -> dict[str, str]:
    """Tags of every ingestion run (dagster.yaml limits concurrency on `coelho/kind`)."""
    return {KIND_TAG: "ingestion", USE_CASE_TAG: spec.key}


def raw_events_key(spec: UseCaseSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.asset_prefix, "raw_events"])


def dead_letters_key(spec: UseCaseSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.asset_prefix, "dead_letters"])


def ingestion_op_name(spec: UseCaseSpec) -> str:
    return f"{spec.key}_ingest"


def ingestion_job_name(spec: UseCaseSpec) -> str:
    return f"{spec.key}_ingestion"


class OffsetRangeConfig(dg.Config):
    partition: int
    start: int
    end: int


class IngestionConfig(dg.Config):
    """Offset ranges to ingest (empty: everything new), optionally capped at `max_events`."""

    ranges: list[OffsetRangeConfig] = []
    max_events: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE


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
    ):  # noqa: ANN202 - generator of MaterializeResult
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


def build_ingestion_job(
    spec: UseCaseSpec, asset: dg.AssetsDefinition
) -> Any:  # dagster UnresolvedAssetJobDefinition
    return dg.define_asset_job(
        ingestion_job_name(spec),
        selection=dg.AssetSelection.assets(asset),
        tags=ingestion_tags(spec),
        description=f"Ingest {spec.topic} into {spec.key}/raw_events and {spec.key}/dead_letters.",
    )
