"""The raw table's Parquet layout: plain event ids, delta-packed times and offsets, kept by
compaction, with every value read back unchanged."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_events import fake_event

from coelho_pipelines.ingestion.writer import DeltaSink, PendingBatch
from coelho_pipelines.lakehouse.maintenance import maintain_table
from coelho_pipelines.lakehouse.tables import (
    DEAD_LETTER_SCHEMA,
    events_to_arrow,
    raw_writer_properties,
)
from coelho_pipelines.use_cases import get_spec

DICTIONARY = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}


def _commit(sink: DeltaSink, spec, start: int, n: int) -> pa.Table:
    rng = random.Random(start)
    events = [fake_event(spec, rng, start + i) for i in range(n)]
    rows = events_to_arrow(
        spec, events, [0] * n, range(start, start + n), datetime(2025, 3, 2, tzinfo=UTC)
    )
    sink.commit(PendingBatch(rows, DEAD_LETTER_SCHEMA.empty_table(), {0: start + n}))
    return rows


def _encodings(uri: str) -> dict[str, set[str]]:
    """Every column's encodings over all of the table's current files."""
    from deltalake import DeltaTable

    table = DeltaTable(uri)
    found: dict[str, set[str]] = {}
    for path in table.file_uris():
        metadata = pq.ParquetFile(path).metadata
        for group in range(metadata.num_row_groups):
            for i in range(metadata.num_columns):
                column = metadata.row_group(group).column(i)
                found.setdefault(column.path_in_schema, set()).update(column.encodings)
    return found


def _assert_raw_layout(uri: str, spec) -> None:
    encodings = _encodings(uri)
    assert not encodings[spec.id_field] & DICTIONARY
    for column in (spec.time_field, "kafka_offset"):
        assert "DELTA_BINARY_PACKED" in encodings[column], (column, encodings[column])
        assert not encodings[column] & DICTIONARY
    assert encodings["kafka_topic"] & DICTIONARY  # the other columns keep the defaults


@pytest.mark.parametrize("key", ["tfd", "eta", "ecci"])
def test_raw_files_use_the_raw_encodings_and_read_back_unchanged(key: str, tmp_path: Path) -> None:
    from deltalake import DeltaTable

    spec = get_spec(key)
    sink = DeltaSink(spec, str(tmp_path))
    written = pa.concat_tables([_commit(sink, spec, 0, 300), _commit(sink, spec, 300, 200)])
    _assert_raw_layout(sink.raw_uri, spec)

    figures = maintain_table(
        sink.raw_uri,
        {},
        retention_hours=0,
        enforce_retention_duration=False,
        writer_properties=raw_writer_properties(spec),
    )
    assert figures["files_removed"] == 2 and figures["files_added"] == 1
    _assert_raw_layout(sink.raw_uri, spec)

    stored = DeltaTable(sink.raw_uri).to_pyarrow_table().sort_by("kafka_offset")
    assert stored.select(written.column_names).equals(written)
