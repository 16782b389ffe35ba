"""Layout of the raw and dead-letter Delta tables: schemas, creation, Arrow builders (their
names and paths are in `naming`).

A raw table holds the use case's event fields (typed as `spec.arrow_schema`: timestamps as
timestamp[us, UTC], nested objects as structs) followed by the ingestion columns below. It is
partitioned by `event_date`, the UTC date of the event time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from coelho_pipelines.naming import PARTITION_COLUMN
from coelho_pipelines.use_cases.spec import UseCaseSpec

if TYPE_CHECKING:
    from deltalake import WriterProperties

# Columns ingestion adds to every raw table; never model features.
INGESTION_COLUMNS: tuple[str, ...] = (
    PARTITION_COLUMN,
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "ingested_at",
)
TIMESTAMP = pa.timestamp("us", tz="UTC")

INGESTION_FIELDS: tuple[pa.Field, ...] = (
    pa.field(PARTITION_COLUMN, pa.date32(), nullable=False),
    pa.field("kafka_topic", pa.string(), nullable=False),
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("kafka_offset", pa.int64(), nullable=False),
    pa.field("ingested_at", TIMESTAMP, nullable=False),
)

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("raw_value", pa.binary(), nullable=True),
        pa.field("raw_key", pa.binary(), nullable=True),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("kafka_topic", pa.string(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("failed_at", TIMESTAMP, nullable=False),
    ]
)


def raw_schema(spec: UseCaseSpec) -> pa.Schema:
    """Event fields, then the ingestion columns."""
    return pa.schema([*spec.arrow_schema, *INGESTION_FIELDS])


def raw_writer_properties(spec: UseCaseSpec) -> WriterProperties:
    """Parquet encodings of the raw table's columns that differ from the writer's defaults.

    The event id is unique per row, so a dictionary only costs time (the writer builds one,
    then falls back); event time and Kafka offset rise within a partition, so their deltas
    pack into a few bits. Measured: about 20% less writing CPU and 2% smaller files.
    """
    from deltalake import ColumnProperties, WriterProperties

    plain = ColumnProperties(dictionary_enabled=False)
    deltas = ColumnProperties(dictionary_enabled=False, encoding="DELTA_BINARY_PACKED")
    return WriterProperties(
        column_properties={spec.id_field: plain, spec.time_field: deltas, "kafka_offset": deltas}
    )


def app_id(topic: str, partition: int) -> str:
    """The Delta application-transaction id that records how far `partition` is committed."""
    return f"coelho-ingest:{topic}:{partition}"


def _constant(value: Any, type_: pa.DataType, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, type_), n)


def with_ingestion_columns(
    spec: UseCaseSpec,
    events: pa.Table,
    partitions: Sequence[int] | pa.Array,
    offsets: Sequence[int] | pa.Array,
    ingested_at: datetime | None = None,
) -> pa.Table:
    """Append the ingestion columns to a table of typed event fields (in spec order)."""
    n = events.num_rows
    ingested_at = ingested_at or datetime.now(UTC)
    event_time = events.column(spec.time_field)
    columns = [
        *events.select(spec.arrow_schema.names).columns,
        pc.cast(event_time, pa.date32()),
        _constant(spec.topic, pa.string(), n),
        pa.array(partitions, pa.int32()),
        pa.array(offsets, pa.int64()),
        _constant(ingested_at, TIMESTAMP, n),
    ]
    return pa.Table.from_arrays(columns, schema=raw_schema(spec))


def events_to_arrow(
    spec: UseCaseSpec,
    events: Sequence[Mapping[str, Any]],
    partitions: Sequence[int] | None = None,
    offsets: Sequence[int] | None = None,
    ingested_at: datetime | None = None,
) -> pa.Table:
    """A raw-table Arrow table from validated events (JSON-ready dicts, ISO timestamps allowed).

    Kafka coordinates default to partition 0 and offsets 0..n-1 (handy to build test data).
    """
    rows = [_python_row(spec, event) for event in events]
    table = pa.Table.from_pylist(rows, schema=spec.arrow_schema)
    n = table.num_rows
    partitions = [0] * n if partitions is None else partitions
    offsets = list(range(n)) if offsets is None else offsets
    return with_ingestion_columns(spec, table, partitions, offsets, ingested_at)


def _python_row(spec: UseCaseSpec, event: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(event)
    for field in spec.fields:
        value = row.get(field.name)
        if field.type == "timestamp" and isinstance(value, str):
            row[field.name] = datetime.fromisoformat(value)
    return row


def dead_letters_to_arrow(
    topic: str,
    rows: Sequence[tuple[bytes | None, bytes | None, str, int, int]],
    failed_at: datetime | None = None,
) -> pa.Table:
    """Dead-letter rows `(raw_value, raw_key, reason, partition, offset)` as an Arrow table."""
    n = len(rows)
    failed_at = failed_at or datetime.now(UTC)
    columns = [
        pa.array([r[0] for r in rows], pa.binary()),
        pa.array([r[1] for r in rows], pa.binary()),
        pa.array([r[2] for r in rows], pa.string()),
        _constant(topic, pa.string(), n),
        pa.array([r[3] for r in rows], pa.int32()),
        pa.array([r[4] for r in rows], pa.int64()),
        _constant(failed_at, TIMESTAMP, n),
    ]
    return pa.Table.from_arrays(columns, schema=DEAD_LETTER_SCHEMA)


def ensure_table(
    uri: str,
    schema: pa.Schema,
    partition_by: Sequence[str] = (),
    storage_options: Mapping[str, str] | None = None,
    description: str | None = None,
):
    """Open the Delta table at `uri`, creating it with `schema` (and partitioning) if missing.

    Creating it up front fixes the partition column's type before any data arrives; an existing
    table whose schema differs is an error, not something to overwrite.
    """
    from deltalake import DeltaTable

    options = dict(storage_options or {})
    if not DeltaTable.is_deltatable(uri, storage_options=options):
        try:
            DeltaTable.create(
                uri,
                schema=schema,
                mode="ignore",
                partition_by=list(partition_by) or None,
                storage_options=options,
                description=description,
            )
        except Exception:
            # Another writer may have created it between our check and create.
            if not DeltaTable.is_deltatable(uri, storage_options=options):
                raise
    table = DeltaTable(uri, storage_options=options)
    existing = pa.schema(table.schema().to_arrow())
    if not _same_columns(existing, schema):
        raise ValueError(
            f"Delta table {uri} has schema {_describe(existing)}, expected {_describe(schema)}"
        )
    return table


def _same_columns(actual: pa.Schema, expected: pa.Schema) -> bool:
    if actual.names != expected.names:
        return False
    return all(_same_type(a.type, e.type) for a, e in zip(actual, expected, strict=True))


def _same_type(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Types equal up to Delta's normalisations (string views, large types, field nullability)."""
    if pa.types.is_struct(expected):
        return (
            pa.types.is_struct(actual)
            and [f.name for f in actual] == [f.name for f in expected]
            and all(_same_type(a.type, e.type) for a, e in zip(actual, expected, strict=True))
        )
    normal = {pa.large_string(): pa.string(), pa.string_view(): pa.string(),
              pa.large_binary(): pa.binary(), pa.binary_view(): pa.binary()}  # fmt: skip
    return normal.get(actual, actual) == normal.get(expected, expected)


def _describe(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


def file_stats(uri: str, storage_options: Mapping[str, str] | None = None) -> dict[str, int]:
    """Files, bytes and rows of a Delta table's current version, from its log (no data read)."""
    from deltalake import DeltaTable

    table = DeltaTable(uri, storage_options=dict(storage_options or {}))
    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return {"files": 0, "bytes": 0, "rows": 0, "version": table.version()}
    return {
        "files": actions.num_rows,
        "bytes": int(pc.sum(actions.column("size_bytes")).as_py() or 0),
        "rows": int(pc.sum(actions.column("num_records")).as_py() or 0),
        "version": table.version(),
    }
