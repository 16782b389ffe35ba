"""Dagster: materializing the ingestion assets (bounded), their checks and maintenance.

The switch `<uc>_ingestion_sensor` and continuous runs: test_keeper.py, test_continuous.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from deltalake import DeltaTable
from fake_events import fake_events
from ingest_helpers import private_spec, produce_events, produce_values

from coelho_pipelines import naming
from coelho_pipelines.ingestion.assets import build_ingestion_asset
from coelho_pipelines.ingestion.checks import CHECK_NAMES, build_raw_event_checks
from coelho_pipelines.ingestion.pipeline import ingest
from coelho_pipelines.lakehouse.maintenance import build_maintenance_defs, maintain_table
from coelho_pipelines.lakehouse.tables import file_stats
from coelho_pipelines.resources import KafkaResource, LakehouseResource

pytestmark = pytest.mark.services


def _recent(events: list[dict], time_field: str) -> list[dict]:
    now = datetime.now(UTC)
    return [
        dict(e, **{time_field: (now - timedelta(seconds=len(events) - i)).isoformat()})
        for i, e in enumerate(events)
    ]


def test_materialize_ingests_reports_and_checks(
    kafka: KafkaResource, lakehouse: LakehouseResource
) -> None:
    spec = private_spec("tfd", kafka.bootstrap_servers)
    events = _recent(fake_events(spec, 500, seed=8), spec.time_field)
    produce_events(kafka.bootstrap_servers, spec, events)
    produce_values(kafka.bootstrap_servers, spec.topic, [b"garbage"] * 10)
    asset, checks = build_ingestion_asset(spec), build_raw_event_checks(spec)
    result = dg.materialize(
        [asset, checks],
        resources={"kafka": kafka, "lakehouse": lakehouse},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    materializations = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.materialization]
    }
    raw = materializations["tfd/raw_events"]
    assert raw["events_committed"].value == 500
    assert raw["dead_letters_committed"].value == 10
    assert raw["dagster/row_count"].value == 500
    assert raw["lag"].value == 0
    assert materializations["tfd/dead_letters"]["dagster/row_count"].value == 10
    outcomes = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert set(outcomes) == set(CHECK_NAMES)
    # 10 dead letters in 510 messages is above the 1% threshold; everything else holds
    assert outcomes == {name: name != "dead_letter_ratio" for name in CHECK_NAMES}


def test_checks_catch_duplicates_and_out_of_range_values(
    kafka: KafkaResource, lakehouse: LakehouseResource
) -> None:
    from deltalake import write_deltalake

    from coelho_pipelines.ingestion.checks import evaluate
    from coelho_pipelines.lakehouse.tables import PARTITION_COLUMN, ensure_table, events_to_arrow

    spec = private_spec("eta", kafka.bootstrap_servers)
    uri = lakehouse.table_uri(naming.raw_table_name(spec))
    events = fake_events(spec, 50, seed=2)
    events.append(dict(events[0], driver_rating=9.5))  # a duplicate id, out of range
    ensure_table(uri, events_to_arrow(spec, events).schema, [PARTITION_COLUMN])
    write_deltalake(uri, events_to_arrow(spec, events), mode="append")
    results = {r.check_name: r for r in evaluate(spec, lakehouse)}
    assert not results["event_ids_unique"].passed
    assert results["event_ids_unique"].metadata["duplicate_ids"].value == 1
    assert not results["values_within_spec"].passed
    assert results["values_within_spec"].metadata["outside_driver_rating"].value == 1
    assert results["required_fields_not_null"].passed
    assert results["schema_matches_spec"].passed
    assert not results["freshness"].passed  # fake events are from 2025


def test_maintenance_compacts_and_keeps_rows(
    kafka: KafkaResource, lakehouse: LakehouseResource
) -> None:
    spec = private_spec("tfd", kafka.bootstrap_servers)
    produce_events(kafka.bootstrap_servers, spec, fake_events(spec, 1_200, seed=6))
    ingest(spec, kafka, lakehouse, batch_size=100)
    uri = lakehouse.table_uri(naming.raw_table_name(spec))
    before = file_stats(uri)
    assert before["files"] >= 10 and before["rows"] == 1_200
    ids_before = sorted(DeltaTable(uri).to_pyarrow_table().column("transaction_id").to_pylist())
    features_uri = _write_features_twice(spec, lakehouse, uri)

    defs = dg.Definitions.merge(
        build_maintenance_defs((spec,)), dg.Definitions(resources={"lakehouse": lakehouse})
    )
    job = defs.resolve_job_def("lakehouse_maintenance")
    result = job.execute_in_process(
        run_config={
            "ops": {
                "maintain_lakehouse_tables": {
                    "config": {"retention_hours": 0, "enforce_retention_duration": False}
                }
            }
        },  # fmt: skip
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    observations = {
        e.event_specific_data.asset_observation.asset_key.to_user_string():
        e.event_specific_data.asset_observation.metadata
        for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"
    }  # fmt: skip
    raw = observations["tfd/raw_events"]
    assert raw["rows_before"].value == raw["rows_after"].value == 1_200
    assert raw["files_after"].value < raw["files_before"].value
    assert raw["files_vacuumed"].value > 0
    features = observations["tfd/features"]
    assert features["rows_before"].value == features["rows_after"].value == 1_200
    assert features["files_vacuumed"].value > 0  # the files the second write replaced
    assert file_stats(features_uri)["rows"] == 1_200
    after = file_stats(uri)
    assert after["rows"] == 1_200 and after["files"] < before["files"]
    assert sorted(DeltaTable(uri).to_pyarrow_table().column("transaction_id").to_pylist()) == (
        ids_before
    )
    # offsets survive compaction and log cleanup: the next pass writes nothing twice
    produce_events(kafka.bootstrap_servers, spec, fake_events(spec, 10, seed=60))
    assert ingest(spec, kafka, lakehouse).events == 10
    again = maintain_table(uri, {}, retention_hours=0, enforce_retention_duration=False)
    assert again["rows_after"] == 1_210


def _write_features_twice(spec, lakehouse: LakehouseResource, raw_uri: str) -> str:
    """The batch features table, written twice over the same dates (stale files to vacuum)."""
    from datetime import date

    from coelho_pipelines.batch import features as feature_sql

    con = feature_sql.connect()
    feature_sql.register_delta(con, "raw", raw_uri)
    start, end = date(1970, 1, 1), date(9999, 12, 31)
    table = feature_sql.compute_features(spec, con, start, end)
    features_uri = lakehouse.table_uri(naming.features_table_name(spec))
    for _ in range(2):
        feature_sql.write_features(spec, features_uri, table, start, end)
    return features_uri
