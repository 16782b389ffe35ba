"""Batch features: the spec's feature SQL over the raw Delta table, stored per event date.

The features table `<lakehouse>/delta/<topic>_features` holds the event id, event time, label
and every feature (numerics as DOUBLE, categoricals as VARCHAR), partitioned by `event_date`.
Writing a date range replaces exactly those partitions (`write_deltalake` with a predicate),
so re-materializing a partition never duplicates rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from coelho_pipelines.use_cases.spec import UseCaseSpec

PARTITION_COLUMN = "event_date"
FEATURES_SUFFIX = "_features"
_SQL_TYPES = {"numeric": "DOUBLE", "categorical": "VARCHAR"}
_ARROW_TYPES = {"numeric": pa.float64(), "categorical": pa.string()}


def features_table_name(spec: UseCaseSpec) -> str:
    return f"{spec.topic}{FEATURES_SUFFIX}"


def quote(name: str) -> str:
    """A DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def key_columns(spec: UseCaseSpec) -> list[str]:
    """Columns kept beside the features: id, event time and the label (if any)."""
    columns = [spec.id_field, spec.time_field]
    if spec.label_field is not None:
        columns.append(spec.label_field)
    clash = set(columns) & set(spec.feature_names)
    if clash:
        raise ValueError(f"feature names clash with key columns: {sorted(clash)}")
    return columns


def _field_type(spec: UseCaseSpec, name: str) -> pa.DataType:
    return spec.arrow_schema.field(name).type


def features_schema(spec: UseCaseSpec) -> pa.Schema:
    """Schema of the features table (fixed up front so partition types never drift)."""
    fields = [pa.field(name, _field_type(spec, name)) for name in key_columns(spec)]
    fields += [pa.field(f.name, _ARROW_TYPES[f.kind]) for f in spec.features]
    fields.append(pa.field(PARTITION_COLUMN, pa.date32(), nullable=False))
    return pa.schema(fields)


def feature_select_sql(spec: UseCaseSpec, source: str = "raw") -> str:
    """SELECT of key columns and typed features from `source` for `event_date` in [$start, $end].

    One row per event id (the first ingested wins), ordered by event time.
    """
    keys = [quote(c) for c in key_columns(spec)]
    features = [
        f"CAST(({f.sql}) AS {_SQL_TYPES[f.kind]}) AS {quote(f.name)}" for f in spec.features
    ]
    columns = ",\n       ".join([*keys, *features, quote(PARTITION_COLUMN)])
    return (
        f"SELECT {columns}\n"
        f"FROM {source}\n"
        f"WHERE {quote(PARTITION_COLUMN)} BETWEEN $start AND $end\n"
        f"QUALIFY row_number() OVER (PARTITION BY {quote(spec.id_field)}\n"
        f"                           ORDER BY ingested_at, kafka_partition, kafka_offset) = 1\n"
        f"ORDER BY {quote(spec.time_field)}, {quote(spec.id_field)}"
    )


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC (time features are UTC, like `extract`)."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def register_delta(
    con: duckdb.DuckDBPyConnection,
    name: str,
    uri: str,
    storage_options: Mapping[str, str] | None = None,
    version: int | None = None,
) -> None:
    """Expose a Delta table to DuckDB as view `name` (partition filters are pushed down)."""
    from deltalake import DeltaTable

    table = DeltaTable(uri, version=version, storage_options=dict(storage_options or {}))
    con.register(name, table.to_pyarrow_dataset())


def table_exists(uri: str, storage_options: Mapping[str, str] | None = None) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(uri, storage_options=dict(storage_options or {}))


def compute_features(
    spec: UseCaseSpec,
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    source: str = "raw",
) -> pa.Table:
    """The features of events with `event_date` in [start, end], in the features schema."""
    sql = feature_select_sql(spec, source)
    result = con.execute(sql, {"start": start, "end": end}).to_arrow_table()
    return result.cast(features_schema(spec))


def date_predicate(start: date, end: date) -> str:
    return (
        f"{PARTITION_COLUMN} >= '{start.isoformat()}' AND {PARTITION_COLUMN} <= '{end.isoformat()}'"
    )


def write_features(
    spec: UseCaseSpec,
    uri: str,
    table: pa.Table,
    start: date,
    end: date,
    storage_options: Mapping[str, str] | None = None,
) -> int:
    """Replace the partitions [start, end] of the features table with `table`; returns the
    new table version. Rows outside the range are an error (they would be lost)."""
    from deltalake import write_deltalake

    from coelho_pipelines.ingestion.tables import ensure_table

    dates = table.column(PARTITION_COLUMN)
    if table.num_rows and (pc.min(dates).as_py() < start or pc.max(dates).as_py() > end):
        raise ValueError(f"feature rows fall outside {start}..{end}")
    options = dict(storage_options or {})
    delta = ensure_table(uri, features_schema(spec), [PARTITION_COLUMN], options)
    write_deltalake(
        delta,
        table.cast(features_schema(spec)),
        mode="overwrite",
        predicate=date_predicate(start, end),
        partition_by=[PARTITION_COLUMN],
    )
    delta.update_incremental()
    return delta.version()


def partition_counts(uri: str, storage_options: Mapping[str, str] | None = None) -> dict[str, int]:
    """Rows per `event_date` of a Delta table (from the data, not statistics)."""
    con = connect()
    register_delta(con, "t", uri, storage_options)
    rows = con.execute(
        f"SELECT CAST({PARTITION_COLUMN} AS VARCHAR), count(*) FROM t GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {day: count for day, count in rows}
