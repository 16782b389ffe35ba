"""The ingestion domain's public Dagster names in the code location (renames fail loudly)."""

from __future__ import annotations

import dagster as dg

from coelho_pipelines.definitions import build_definitions
from coelho_pipelines.ingestion.checks import CHECK_NAMES
from coelho_pipelines.naming import KIND_TAG
from coelho_pipelines.use_cases import use_case_keys


def test_ingestion_names_in_the_code_location() -> None:
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    checks = {(c.asset_key.to_user_string(), c.name) for c in repo.asset_graph.asset_check_keys}
    sensors = {s.name for s in repo.sensor_defs}
    for uc in use_case_keys():
        assert {f"{uc}/raw_events", f"{uc}/dead_letters"} <= keys
        assert {(f"{uc}/raw_events", name) for name in CHECK_NAMES} <= checks
        job = repo.get_job(f"{uc}_ingestion")
        assert job.tags[KIND_TAG] == "ingestion"
        assert f"{uc}_ingestion_sensor" in sensors
        raw = repo.asset_graph.get(dg.AssetKey([uc, "raw_events"]))
        assert raw.group_name == uc
        assert dg.AssetKey([uc, "events_topic"]) in raw.parent_keys
        assert {"delta", "kafka"} <= set(raw.kinds)
    assert "lakehouse_maintenance" in repo.job_names
    assert {s.name for s in repo.schedule_defs} >= {"lakehouse_maintenance_schedule"}
