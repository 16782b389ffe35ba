"""`<uc>/features`: single-run backfills over daily partitions, idempotent re-materialization."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pyarrow as pa
from deltalake import DeltaTable

from coelho_pipelines import naming
from coelho_pipelines.batch import features as feature_sql
from coelho_pipelines.batch.defs import build_batch_defs
from coelho_pipelines.batch.lineage import asset_key

from .conftest import generate, isolated_spec, range_tags, write_raw_events

DAYS = ("2026-01-01", "2026-01-02", "2026-01-03")


def _features_asset(spec: Any) -> dg.AssetsDefinition:
    defs = build_batch_defs(spec)
    return next(a for a in defs.assets if a.key == asset_key(spec, "features"))


def _raw_counts(spec: Any, uri: str) -> dict[str, int]:
    return feature_sql.partition_counts(uri)


def test_backfill_of_three_days_in_one_run_then_rerun_one_day(lakehouse, instance) -> None:
    spec = isolated_spec("tfd")
    _, events = generate(spec, 900, days=3)
    raw_uri = write_raw_events(spec, lakehouse.uri, events)
    expected = _raw_counts(spec, raw_uri)
    assert sorted(expected) == list(DAYS)
    features = _features_asset(spec)
    resources = {"lakehouse": lakehouse}

    result = dg.materialize(
        [features], instance=instance, resources=resources, tags=range_tags(DAYS[0], DAYS[-1])
    )
    assert result.success
    partitions = sorted(
        m.partition for m in result.asset_materializations_for_node(features.node_def.name)
    )
    assert partitions == list(DAYS)  # three partitions from ONE run
    assert len(instance.get_runs()) == 1
    features_uri = lakehouse.table_uri(naming.features_table_name(spec))
    assert feature_sql.partition_counts(features_uri) == expected
    table = DeltaTable(features_uri)
    assert table.metadata().partition_columns == ["event_date"]
    assert pa.schema(table.schema().to_arrow()).field("event_date").type == pa.date32()

    again = dg.materialize(
        [features], instance=instance, resources=resources, partition_key=DAYS[1]
    )
    assert again.success
    assert feature_sql.partition_counts(features_uri) == expected  # replaced, not duplicated


def test_writing_one_partition_keeps_the_others(lakehouse) -> None:
    """Two partitions written separately both survive (the predicate overwrite is scoped)."""
    from datetime import date

    spec = isolated_spec("eta")
    _, events = generate(spec, 400, days=2)
    raw_uri = write_raw_events(spec, lakehouse.uri, events)
    con = feature_sql.connect()
    feature_sql.register_delta(con, "raw", raw_uri)
    uri = lakehouse.table_uri(naming.features_table_name(spec))
    for day in (date(2026, 1, 1), date(2026, 1, 2)):
        feature_sql.write_features(
            spec, uri, feature_sql.compute_features(spec, con, day, day), day, day
        )
    assert feature_sql.partition_counts(uri) == _raw_counts(spec, raw_uri)
    empty_day = date(2026, 1, 2)
    empty = feature_sql.compute_features(spec, con, date(2027, 1, 1), date(2027, 1, 1))
    feature_sql.write_features(spec, uri, empty, empty_day, empty_day)
    counts = feature_sql.partition_counts(uri)
    assert "2026-01-02" not in counts and counts["2026-01-01"] > 0
