"""The one home of Coelho's names: Dagster run tags and statuses, job/sensor/schedule names,
lakehouse table names and paths, MLflow tags.

Plain strings and the standard library only (no Dagster, no spec module), so the Dagster code
location, the API (`coelho_serving`), the CLI and the benches all read the same names. A name
here is public: renaming one renames it for users (say so in the README).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol


class UseCase(Protocol):
    """What a name is built from: a use case's key and topic (a `UseCaseSpec`)."""

    @property
    def key(self) -> str: ...

    @property
    def topic(self) -> str: ...


# --- Dagster run tags ---------------------------------------------------------------------------

KIND_TAG = "coelho/kind"  # dagster.yaml and the Helm values limit concurrency on it
USE_CASE_TAG = "coelho/use_case"
LEARNER_TAG = "coelho/learner"  # one value per use case: a run-queue concurrency limit of 1
TRIGGER_TAG = "coelho/trigger"
LAUNCHED_BY_TAG = "coelho/launched_by"

INGESTION = "ingestion"
BATCH = "batch"
INCREMENTAL = "incremental"
MAINTENANCE = "maintenance"
KINDS = (INGESTION, BATCH, INCREMENTAL, MAINTENANCE)


def run_tags(kind: str, spec: UseCase) -> dict[str, str]:
    """Tags of every run of `kind` for a use case."""
    return {KIND_TAG: kind, USE_CASE_TAG: spec.key}


# Runs queued, starting, running or being cancelled (DagsterRunStatus values).
IN_FLIGHT_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


# --- Jobs, sensors, schedules -------------------------------------------------------------------


def ingestion_job_name(spec: UseCase) -> str:
    return f"{spec.key}_ingestion"


def ingestion_op_name(spec: UseCase) -> str:
    return f"{spec.key}_ingest"


def ingestion_sensor_name(spec: UseCase) -> str:
    """The switch of continuous ingestion."""
    return f"{spec.key}_ingestion_sensor"


def incremental_job_name(spec: UseCase) -> str:
    """The long-lived River learner."""
    return f"{spec.key}_incremental_learning"


def incremental_sensor_name(spec: UseCase) -> str:
    """The real-time training switch, keeping one `incremental_job_name` run alive."""
    return f"{spec.key}_incremental_learning_sensor"


def drift_sensor_name(spec: UseCase) -> str:
    return f"{spec.key}_drift_retraining"


def training_job_name(spec: UseCase) -> str:
    """`<uc>_batch_training`: retraining from the feature partitions that exist."""
    return f"{spec.key}_batch_training"


def retraining_job_name(spec: UseCase) -> str:
    """`<uc>_features_and_training`: one feature partition, then retraining."""
    return f"{spec.key}_features_and_training"


def retraining_schedule_name(spec: UseCase) -> str:
    """The daily schedule, named after the job it launches."""
    return f"{retraining_job_name(spec)}_schedule"


def features_automation_sensor_name(spec: UseCase) -> str:
    return f"{spec.key}_features_automation"


def first_training_sensor_name(spec: UseCase) -> str:
    return f"{spec.key}_first_training"


ONLINE_VS_BATCH = "online_vs_batch"


def online_vs_batch_sensor_name(spec: UseCase) -> str:
    return f"{spec.key}_{ONLINE_VS_BATCH}_automation"


MAINTENANCE_JOB = "lakehouse_maintenance"
MAINTENANCE_SCHEDULE = "lakehouse_maintenance_schedule"


# --- Lakehouse tables ---------------------------------------------------------------------------

PARTITION_COLUMN = "event_date"  # the UTC date of the event time; raw and features tables
DEAD_LETTER_SUFFIX = "_dead_letters"
FEATURES_SUFFIX = "_features"
TRAINING_SET_SUFFIX = "_training_set"

# Asset names (the last part of `<uc>/<name>` asset keys) of the lakehouse tables.
RAW_EVENTS = "raw_events"
DEAD_LETTERS = "dead_letters"
FEATURES = "features"
TRAINING_SET = "training_set"


def table_uri(lakehouse_uri: str, table: str) -> str:
    """Where a Delta table lives: `<lakehouse>/delta/<table>`."""
    return f"{lakehouse_uri.rstrip('/')}/delta/{table}"


def raw_table_name(spec: UseCase) -> str:
    """The raw table's name under `<lakehouse>/delta/`: the topic."""
    return spec.topic


def dead_letter_table_name(spec: UseCase) -> str:
    return f"{spec.topic}{DEAD_LETTER_SUFFIX}"


def features_table_name(spec: UseCase) -> str:
    return f"{spec.topic}{FEATURES_SUFFIX}"


def training_set_table_name(spec: UseCase) -> str:
    return f"{spec.topic}{TRAINING_SET_SUFFIX}"


def raw_table_uri(lakehouse_uri: str, spec: UseCase) -> str:
    return table_uri(lakehouse_uri, raw_table_name(spec))


class LakehouseTable(NamedTuple):
    """A Delta table of a use case: its asset name (`<uc>/<asset>`) and table name."""

    asset: str
    table: str


def lakehouse_tables(spec: UseCase) -> tuple[LakehouseTable, ...]:
    """Every Delta table of a use case, raw events first."""
    return (
        LakehouseTable(RAW_EVENTS, raw_table_name(spec)),
        LakehouseTable(DEAD_LETTERS, dead_letter_table_name(spec)),
        LakehouseTable(FEATURES, features_table_name(spec)),
        LakehouseTable(TRAINING_SET, training_set_table_name(spec)),
    )


# --- MLflow run tags ----------------------------------------------------------------------------

MLFLOW_PARADIGM_TAG = "coelho.paradigm"  # incremental, batch or comparison
MLFLOW_USE_CASE_TAG = "coelho.use_case"
MLFLOW_DAGSTER_RUN_TAG = "coelho.dagster_run_id"
# Written by batch trainings and comparisons before the spelling was unified; still read.
MLFLOW_LEGACY_DAGSTER_RUN_TAGS = ("dagster.run_id",)


def mlflow_dagster_run_id(tags: Mapping[str, str]) -> str | None:
    """The Dagster run id an MLflow run's tags carry, under the current or an old spelling."""
    for tag in (MLFLOW_DAGSTER_RUN_TAG, *MLFLOW_LEGACY_DAGSTER_RUN_TAGS):
        if tags.get(tag):
            return tags[tag]
    return None
