"""The batch domain in the code location: loadable, stable names, the daily schedule."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import dagster as dg
import pytest

from coelho_pipelines.batch.lineage import daily_partitions
from coelho_pipelines.naming import KIND_TAG
from coelho_pipelines.use_cases import all_specs

ASSETS = ("features", "training_set", "batch_model", "batch_evaluation", "batch_visualizations",
          "champion_model")  # fmt: skip


def test_batch_definitions_are_loadable_with_stable_names() -> None:
    from coelho_pipelines.definitions import build_definitions

    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    for spec in all_specs():
        for name in ASSETS:
            assert dg.AssetKey([spec.key, name]) in graph.get_all_asset_keys()
        job = defs.resolve_job_def(f"{spec.key}_batch_training")
        assert job.tags[KIND_TAG] == "batch"
        assert defs.resolve_job_def(f"{spec.key}_features_and_training")
        assert defs.resolve_schedule_def(f"{spec.key}_features_and_training_schedule")
        checks = {key.name for key in graph.asset_check_keys if key.asset_key.path[0] == spec.key}
        assert {"split_is_sound", "beats_champion"} <= checks
    features = graph.get(dg.AssetKey(["tfd", "features"]))
    assert features.partitions_def == daily_partitions()
    assert features.backfill_policy == dg.BackfillPolicy.single_run()
    assert dg.AssetKey(["tfd", "raw_events"]) in features.parent_keys


def test_loading_the_code_location_imports_no_heavy_library() -> None:
    import subprocess

    code = (
        "import sys; import coelho_pipelines.definitions as d; d.build_definitions(); "
        "heavy = ('catboost', 'mlflow', 'sklearn', 'matplotlib', 'umap', 'duckdb', 'river'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("key", ["tfd", "ecci"])
def test_daily_schedule_requests_the_day_that_just_ended(key: str) -> None:
    from coelho_pipelines.definitions import build_definitions

    defs = build_definitions()
    schedule = defs.resolve_schedule_def(f"{key}_features_and_training_schedule")
    assert schedule.job_name == f"{key}_features_and_training"
    with dg.instance_for_test() as instance:
        repository = defs.get_repository_def()

        def tick(when: datetime):
            context = dg.build_schedule_context(
                instance=instance, scheduled_execution_time=when, repository_def=repository
            )
            return schedule.evaluate_tick(context)

        [request] = tick(datetime(2026, 3, 2, 0, 15, tzinfo=UTC)).run_requests
        early = tick(datetime(2025, 6, 1, 0, 15, tzinfo=UTC))
    assert request.partition_key == "2026-03-01"
    assert request.tags[KIND_TAG] == "batch"
    assert not early.run_requests and "before the first partition" in early.skip_message


def test_the_registry_helpers_import_without_dagster() -> None:
    """The API imports `batch.registry` (and the model classes it unpickles) without Dagster."""
    import subprocess

    code = (
        "import sys; import coelho_pipelines.batch.registry, coelho_pipelines.batch.training_set; "
        "import coelho_pipelines.models.batch_model; print('dagster' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
