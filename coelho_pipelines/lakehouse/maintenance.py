"""`lakehouse_maintenance`: compact, vacuum and checkpoint every Delta table of every use case
(raw events, dead letters, and the batch features and training-set tables).

Ingestion appends one file per partition and commit, features replace partitions and the
training set is overwritten per materialization, so tables collect small and stale files; optimize
compacts them (row counts unchanged: checked), vacuum deletes files no version within the
retention needs, a checkpoint plus log cleanup keeps the Delta log short. Each table gets an
AssetObservation with files, bytes and rows before and after. The tables come from `naming`
(no import of the domains that write them).
"""

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg

from coelho_pipelines.lakehouse.tables import file_stats, raw_writer_properties
from coelho_pipelines.naming import (
    KIND_TAG,
    MAINTENANCE,
    MAINTENANCE_JOB,
    MAINTENANCE_SCHEDULE,
    RAW_EVENTS,
    lakehouse_tables,
)
from coelho_pipelines.resources import LakehouseResource
from coelho_pipelines.use_cases.spec import UseCaseSpec

if TYPE_CHECKING:
    from deltalake import WriterProperties

DEFAULT_CRON = "17 3 * * *"
DEFAULT_RETENTION_HOURS = 168
OPTIMIZE_ATTEMPTS = 3


class MaintenanceConfig(dg.Config):
    """Vacuum keeps files needed by versions younger than `retention_hours` (Delta's 7 days by
    default; going lower needs `enforce_retention_duration=False` and no concurrent writer)."""

    retention_hours: int = DEFAULT_RETENTION_HOURS
    enforce_retention_duration: bool = True
    target_file_mb: int = 128


def maintain_table(
    uri: str,
    storage_options: dict[str, str],
    retention_hours: int = DEFAULT_RETENTION_HOURS,
    enforce_retention_duration: bool = True,
    target_file_mb: int = 128,
    writer_properties: "WriterProperties | None" = None,
) -> dict[str, object]:
    """Optimize, vacuum and checkpoint one table; returns before/after figures.

    `writer_properties` (deltalake `WriterProperties`) keep the table's own Parquet encodings
    in the compacted files.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import CommitFailedError

    started = time.perf_counter()
    before = file_stats(uri, storage_options)
    compacted: dict[str, object] = {}
    for attempt in range(OPTIMIZE_ATTEMPTS):
        table = DeltaTable(uri, storage_options=storage_options)
        try:
            compacted = table.optimize.compact(
                target_size=target_file_mb << 20, writer_properties=writer_properties
            )
            break
        except CommitFailedError:  # a concurrent ingestion commit won: retry on a fresh snapshot
            if attempt == OPTIMIZE_ATTEMPTS - 1:
                raise
    table = DeltaTable(uri, storage_options=storage_options)
    vacuumed = table.vacuum(
        retention_hours=retention_hours,
        dry_run=False,
        enforce_retention_duration=enforce_retention_duration,
    )
    table = DeltaTable(uri, storage_options=storage_options)
    table.create_checkpoint()
    table.cleanup_metadata()
    after = file_stats(uri, storage_options)
    if after["rows"] < before["rows"]:
        raise RuntimeError(f"{uri}: rows went from {before['rows']} to {after['rows']}")
    return {
        "files_before": before["files"],
        "files_after": after["files"],
        "bytes_before": before["bytes"],
        "bytes_after": after["bytes"],
        "rows_before": before["rows"],
        "rows_after": after["rows"],
        "files_added": int(compacted.get("numFilesAdded", 0) or 0),
        "files_removed": int(compacted.get("numFilesRemoved", 0) or 0),
        "files_vacuumed": len(vacuumed),
        "version_after": after["version"],
        "seconds": round(time.perf_counter() - started, 3),
    }


def _tables(
    specs: tuple[UseCaseSpec, ...],
) -> Iterator[tuple[dg.AssetKey, str, "WriterProperties | None"]]:
    """Every table: asset key, name, and its Parquet writer properties (None: defaults)."""
    for spec in specs:
        for table in lakehouse_tables(spec):
            properties = raw_writer_properties(spec) if table.asset == RAW_EVENTS else None
            yield dg.AssetKey([spec.asset_prefix, table.asset]), table.table, properties


def build_maintenance_defs(specs: tuple[UseCaseSpec, ...]) -> dg.Definitions:
    """The maintenance job over every use case's tables, and its daily schedule."""

    @dg.op(name="maintain_lakehouse_tables", tags={KIND_TAG: MAINTENANCE})
    def maintain_tables(
        context: dg.OpExecutionContext, config: MaintenanceConfig, lakehouse: LakehouseResource
    ) -> None:
        from deltalake import DeltaTable

        for asset_key, name, writer_properties in _tables(specs):
            uri = lakehouse.table_uri(name)
            if not DeltaTable.is_deltatable(uri, storage_options=lakehouse.storage_options):
                context.log.info(f"{uri}: no table yet, nothing to maintain")
                continue
            figures = maintain_table(
                uri,
                lakehouse.storage_options,
                config.retention_hours,
                config.enforce_retention_duration,
                config.target_file_mb,
                writer_properties,
            )
            context.log.info(f"{uri}: {figures}")
            context.log_event(
                dg.AssetObservation(
                    asset_key=asset_key,
                    metadata={**figures, "table_uri": dg.MetadataValue.path(uri)},
                )
            )

    @dg.job(
        name=MAINTENANCE_JOB,
        tags={KIND_TAG: MAINTENANCE},
        description="Compact, vacuum and checkpoint every Delta table of every use case.",
    )
    def lakehouse_maintenance() -> None:
        maintain_tables()

    schedule = dg.ScheduleDefinition(
        name=MAINTENANCE_SCHEDULE,
        job=lakehouse_maintenance,
        cron_schedule=DEFAULT_CRON,
        execution_timezone="UTC",
        description="Daily lakehouse upkeep (optimize, vacuum, checkpoint).",
    )
    return dg.Definitions(jobs=[lakehouse_maintenance], schedules=[schedule])
