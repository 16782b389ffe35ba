"""`coelho_pipelines.naming`: the public names spelled once, what reads them, and that it stays
light enough for the API to import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml

from coelho_pipelines import naming
from coelho_pipelines.use_cases import all_specs, get_spec

ROOT = Path(__file__).resolve().parents[2]


def test_public_names_keep_their_spelling() -> None:
    """The names users type in the UI, CLI and dashboards (renames: README "Renamed")."""
    spec = get_spec("tfd")
    names = [
        (naming.ingestion_job_name(spec), "tfd_ingestion"),
        (naming.ingestion_sensor_name(spec), "tfd_ingestion_sensor"),
        (naming.incremental_job_name(spec), "tfd_incremental_learning"),
        (naming.incremental_sensor_name(spec), "tfd_incremental_learning_sensor"),
        (naming.training_job_name(spec), "tfd_batch_training"),
        (naming.retraining_job_name(spec), "tfd_features_and_training"),
        (naming.retraining_schedule_name(spec), "tfd_features_and_training_schedule"),
        (naming.drift_sensor_name(spec), "tfd_drift_retraining"),
        (naming.features_automation_sensor_name(spec), "tfd_features_automation"),
        (naming.first_training_sensor_name(spec), "tfd_first_training"),
        (naming.online_vs_batch_sensor_name(spec), "tfd_online_vs_batch_automation"),
        (naming.MAINTENANCE_JOB, "lakehouse_maintenance"),
        (naming.KIND_TAG, "coelho/kind"),
        (naming.USE_CASE_TAG, "coelho/use_case"),
        (naming.MLFLOW_DAGSTER_RUN_TAG, "coelho.dagster_run_id"),
    ]
    assert [actual for actual, _ in names] == [expected for _, expected in names]


def test_job_sensor_and_schedule_names_never_collide() -> None:
    """A sensor is not named like a job (issue 16); a schedule is named after its job."""
    jobs, others = set(), []
    for spec in all_specs():
        jobs |= {naming.ingestion_job_name(spec), naming.incremental_job_name(spec),
                 naming.training_job_name(spec), naming.retraining_job_name(spec)}  # fmt: skip
        others += [naming.ingestion_sensor_name(spec), naming.incremental_sensor_name(spec),
                   naming.drift_sensor_name(spec), naming.features_automation_sensor_name(spec),
                   naming.first_training_sensor_name(spec),
                   naming.online_vs_batch_sensor_name(spec),
                   naming.retraining_schedule_name(spec)]  # fmt: skip
        assert naming.retraining_schedule_name(spec).startswith(naming.retraining_job_name(spec))
    assert not jobs & set(others) and len(set(others)) == len(others)


def test_lakehouse_tables_are_named_from_the_topic() -> None:
    spec = get_spec("eta")
    tables = {table.asset: table.table for table in naming.lakehouse_tables(spec)}
    assert tables == {
        "raw_events": spec.topic,
        "dead_letters": f"{spec.topic}_dead_letters",
        "features": f"{spec.topic}_features",
        "training_set": f"{spec.topic}_training_set",
    }
    assert naming.raw_table_uri("s3://lake/root/", spec) == f"s3://lake/root/delta/{spec.topic}"


def test_in_flight_statuses_are_dagster_run_statuses() -> None:
    from coelho_pipelines.keeper import ACTIVE_STATUSES

    assert {s.value for s in ACTIVE_STATUSES} == set(naming.IN_FLIGHT_STATUSES)
    assert {"QUEUED", "STARTED", "CANCELING"} <= set(naming.IN_FLIGHT_STATUSES)
    finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}
    assert not finished & set(ACTIVE_STATUSES)


def test_the_dagster_run_id_is_read_under_both_spellings() -> None:
    """MLflow runs written before the spelling was unified still show their Dagster run."""
    assert naming.mlflow_dagster_run_id({"dagster.run_id": "old"}) == "old"
    assert naming.mlflow_dagster_run_id({naming.MLFLOW_DAGSTER_RUN_TAG: "new"}) == "new"
    both = {naming.MLFLOW_DAGSTER_RUN_TAG: "new", "dagster.run_id": "old"}
    assert naming.mlflow_dagster_run_id(both) == "new"
    assert naming.mlflow_dagster_run_id({"coelho.use_case": "tfd"}) is None


def test_the_local_run_queue_limits_the_kinds_naming_declares() -> None:
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    limits = config["run_coordinator"]["config"]["tag_concurrency_limits"]
    kinds = {limit["value"] for limit in limits if limit["key"] == naming.KIND_TAG}
    assert kinds and kinds <= set(naming.KINDS)
    assert {limit["key"] for limit in limits} <= {naming.KIND_TAG, naming.LEARNER_TAG}


def test_naming_imports_nothing_heavy() -> None:
    code = (
        "import sys; import coelho_pipelines.naming; "
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dagster', 'pyarrow', 'pydantic', 'mlflow', 'deltalake') "
        "or m.startswith('coelho_pipelines.') and m != 'coelho_pipelines.naming')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
