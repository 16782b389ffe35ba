"""The training set: a window of the features table, sampled by rows or percentage, split by
time into train, validation (early stopping only) and test (reported metrics).

Stored as the Delta table `<lakehouse>/delta/<topic>_training_set` (overwritten per
materialization, partitioned by `split`); its Delta version identifies the exact rows a model
was trained and tested on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from coelho_pipelines.batch.features import connect, features_schema, quote, register_delta
from coelho_pipelines.naming import PARTITION_COLUMN
from coelho_pipelines.use_cases.spec import UseCaseSpec

if TYPE_CHECKING:  # DuckDB loads where a connection is made (batch.features.connect)
    import duckdb

SPLIT_COLUMN = "split"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Selection:
    """Which rows make the training set and how they are split.

    `percentage` keeps a reproducible hash sample of that share of events (0 < p <= 100);
    `max_rows` keeps the most recent rows. Either, both (sample first) or neither (all rows).
    """

    start: date | None = None
    end: date | None = None
    max_rows: int | None = None
    percentage: float | None = None
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 42

    def __post_init__(self) -> None:
        if self.max_rows is not None and self.max_rows <= 0:
            raise ValueError("max_rows must be positive")
        if self.percentage is not None and not 0 < self.percentage <= 100:
            raise ValueError("percentage must be in (0, 100]")
        if not (0 < self.validation_fraction < 1 and 0 < self.test_fraction < 1):
            raise ValueError("validation and test fractions must be in (0, 1)")
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError("validation + test fractions must leave at least 10% to train")
        if self.start and self.end and self.start > self.end:
            raise ValueError("start date is after end date")

    @property
    def train_fraction(self) -> float:
        return 1.0 - self.validation_fraction - self.test_fraction

    def parameters(self) -> dict[str, Any]:
        return {
            "start": self.start or date(1970, 1, 1),
            "end": self.end or date(9999, 12, 31),
            "max_rows": self.max_rows or 2**62,
            "sample_per_10k": round((self.percentage or 100.0) * 100),
            "seed": str(self.seed),
            "train": self.train_fraction,
            "validation": self.validation_fraction,
        }


def training_set_sql(spec: UseCaseSpec, source: str = "features") -> str:
    """Rows of `source` in the window and sample, the newest `$max_rows` of them, assigned by
    time order to train / validation / test. One window sort on integer keys (event time in
    microseconds, equal times ordered by the id's hash); rows come out unordered."""
    key = quote(spec.id_field)
    windowed = f"""SELECT * FROM {source}
    WHERE {quote(PARTITION_COLUMN)} BETWEEN $start AND $end
      AND hash({key} || $seed) % 10000 < $sample_per_10k"""
    return _split_sql(windowed, quote(spec.time_field), key)


def customer_training_set_sql(spec: UseCaseSpec, source: str = "raw", dedupe: bool = True) -> str:
    """`training_set_sql` for a use case that clusters customers (`spec.profile`): one row per
    customer with at least `$min_events` events in the window (their profile from the raw
    events, `batch/profiles.py`), sampled by customer, split by the time of their last event."""
    from coelho_pipelines.batch.profiles import profile_sql

    assert spec.profile is not None
    key = quote(spec.profile.key_field)
    windowed = f"""SELECT * FROM ({profile_sql(spec, source, dedupe)})
    WHERE n_events >= $min_events AND hash({key} || $seed) % 10000 < $sample_per_10k"""
    return _split_sql(windowed, quote(spec.time_field), key)


def _split_sql(windowed: str, time: str, key: str) -> str:
    return f"""
WITH windowed AS (
    {windowed}
),
total AS (SELECT least(count(*), $max_rows) AS _n FROM windowed),
ranked AS (
    SELECT *, row_number() OVER (ORDER BY epoch_us({time}) DESC, hash({key}) DESC) AS _newest
    FROM windowed
)
SELECT * EXCLUDE (_newest, _n),
       CASE WHEN _n - _newest + 1 <= floor(_n * $train) THEN 'train'
            WHEN _n - _newest + 1 <= floor(_n * ($train + $validation)) THEN 'validation'
            ELSE 'test' END AS {SPLIT_COLUMN}
FROM ranked, total
WHERE _newest <= _n
"""


def training_set_schema(spec: UseCaseSpec) -> pa.Schema:
    return features_schema(spec).append(pa.field(SPLIT_COLUMN, pa.string(), nullable=False))


def select_training_set(
    spec: UseCaseSpec,
    con: duckdb.DuckDBPyConnection,
    selection: Selection,
    source: str = "features",
) -> pa.Table:
    """The split training set as Arrow, in the training-set schema."""
    sql = training_set_sql(spec, source)
    table = con.execute(sql, selection.parameters()).to_arrow_table()
    return table.cast(training_set_schema(spec))


def select_customer_training_set(
    spec: UseCaseSpec, con: duckdb.DuckDBPyConnection, selection: Selection, source: str = "raw"
) -> pa.Table:
    """The split customer training set (`customer_training_set_sql`) from the raw events."""
    from coelho_pipelines.batch.profiles import has_repeated_ids

    assert spec.profile is not None
    params = selection.parameters()
    dedupe = has_repeated_ids(spec, con, source, params)
    sql = customer_training_set_sql(spec, source, dedupe)
    params |= {"decay": spec.profile.decay, "min_events": spec.profile.min_events}
    return con.execute(sql, params).to_arrow_table()


def write_training_set(
    spec: UseCaseSpec, uri: str, table: pa.Table, storage_options: Mapping[str, str] | None = None
) -> int:
    """Overwrite the training-set table; returns its new Delta version."""
    from deltalake import DeltaTable, write_deltalake

    options = dict(storage_options or {})
    write_deltalake(
        uri,
        table,
        mode="overwrite",
        partition_by=[SPLIT_COLUMN],
        schema_mode="overwrite",
        storage_options=options,
    )
    return DeltaTable(uri, storage_options=options).version()


def read_splits(
    uri: str,
    version: int | None = None,
    storage_options: Mapping[str, str] | None = None,
    time_field: str | None = None,
) -> dict[str, Any]:
    """The train / validation / test frames (pandas) of one training-set version."""
    con = connect()
    register_delta(con, "training_set", uri, storage_options, version)
    order = f" ORDER BY {quote(time_field)}" if time_field else ""
    frames = {}
    for split in SPLITS:
        frames[split] = con.execute(
            f"SELECT * EXCLUDE ({SPLIT_COLUMN}) FROM training_set WHERE {SPLIT_COLUMN} = ?{order}",
            [split],
        ).df()
    return frames


def summarize(spec: UseCaseSpec, table: pa.Table) -> dict[str, dict[str, Any]]:
    """Per split: rows, first and last event time, and the label balance."""
    con = connect()
    con.register("ts", table)
    time = quote(spec.time_field)
    label = spec.label_field
    if spec.task == "classification":
        balance = f", avg(CAST({quote(label)} AS DOUBLE)) AS positive_rate"
    elif spec.task == "regression":
        balance = f", avg({quote(label)}) AS label_mean, stddev({quote(label)}) AS label_std"
    else:
        balance = ""
    rows = con.execute(
        f"SELECT {SPLIT_COLUMN} AS split, count(*) AS rows, CAST(min({time}) AS VARCHAR) AS first,"
        f" CAST(max({time}) AS VARCHAR) AS last{balance} FROM ts GROUP BY 1"
    ).df()
    summary = {split: {"rows": 0} for split in SPLITS}
    for record in rows.to_dict("records"):
        summary[record.pop("split")] = record
    return summary
