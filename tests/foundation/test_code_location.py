"""The code location loads, carries every public name, and matches its snapshot.

Regenerate the snapshot after an intended change with `COELHO_UPDATE_SNAPSHOT=1 make test
PYTEST_ARGS=tests/foundation/test_code_location.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from coelho_pipelines.use_cases import use_case_keys

SNAPSHOT = Path(__file__).with_name("code_location_snapshot.json")

PUBLIC_ASSETS = (
    "events_topic", "raw_events", "dead_letters", "features", "training_set", "batch_model",
    "batch_evaluation", "batch_visualizations", "champion_model", "incremental_model",
    "online_vs_batch",
)  # fmt: skip


@pytest.fixture(scope="module")
def repository():
    from definitions import defs

    dg.Definitions.validate_loadable(defs)
    return defs.get_repository_def()


def describe(repository) -> dict[str, list[str]]:
    """The names a user or script can rely on, sorted."""
    asset_graph = repository.asset_graph
    assets = sorted(
        f"{key.to_user_string()} [{asset_graph.get(key).group_name}]"
        for key in asset_graph.get_all_asset_keys()
    )
    checks = sorted(key.to_user_string() for key in asset_graph.asset_check_keys)
    return {
        "assets": assets,
        "asset_checks": checks,
        "jobs": sorted(job.name for job in repository.get_all_jobs() if job.name != "__ASSET_JOB"),
        "sensors": sorted(sensor.name for sensor in repository.sensor_defs),
        "schedules": sorted(schedule.name for schedule in repository.schedule_defs),
    }


def test_every_public_name_of_every_use_case_is_defined(repository) -> None:
    names = describe(repository)
    asset_keys = {entry.split(" [")[0] for entry in names["assets"]}
    for uc in use_case_keys():
        for asset in PUBLIC_ASSETS:
            assert f"{uc}/{asset}" in asset_keys
        for job in ("ingestion", "batch_training", "incremental_learning"):
            assert f"{uc}_{job}" in names["jobs"]
        for sensor in ("ingestion_sensor", "incremental_learning_sensor", "drift_retraining",
                       "online_vs_batch_automation", "features_automation",
                       "first_training"):  # fmt: skip
            assert f"{uc}_{sensor}" in names["sensors"]
        assert f"{uc}_features_and_training_schedule" in names["schedules"]
    assert "lakehouse_maintenance" in names["jobs"]


def test_the_self_driving_batch_sensors_run_by_default(repository) -> None:
    """`coelho up` switches every sensor on for a new instance; these are on regardless."""
    for uc in use_case_keys():
        for sensor in ("features_automation", "first_training", "drift_retraining"):
            status = repository.get_sensor_def(f"{uc}_{sensor}").default_status
            assert status == dg.DefaultSensorStatus.RUNNING, f"{uc}_{sensor}"


def test_assets_are_grouped_by_use_case(repository) -> None:
    for entry in describe(repository)["assets"]:
        key, group = entry.removesuffix("]").split(" [")
        assert group == key.split("/")[0], entry


def test_code_location_matches_snapshot(repository) -> None:
    current = describe(repository)
    if os.environ.get("COELHO_UPDATE_SNAPSHOT") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n")
    assert current == json.loads(SNAPSHOT.read_text()), (
        "the code location's public names changed; if intended, regenerate the snapshot "
        "(see this module's docstring)"
    )
