"""Asset keys of the batch graph and how its assets hand values to each other.

Batch assets manage their own storage (Delta tables, MLflow runs), so what flows between
them is small: the training-set Delta version, the MLflow run id and model URI. Each asset
records those in its materialization metadata and downstream assets read the latest
materialization of their upstream from the Dagster instance (which works across processes,
pods and separate runs).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from coelho_pipelines import settings
from coelho_pipelines.naming import BATCH, run_tags
from coelho_pipelines.naming import FEATURES as FEATURES  # lakehouse tables, named there
from coelho_pipelines.naming import TRAINING_SET as TRAINING_SET
from coelho_pipelines.use_cases.spec import UseCaseSpec

BATCH_MODEL = "batch_model"
BATCH_EVALUATION = "batch_evaluation"
BATCH_VISUALIZATIONS = "batch_visualizations"
CHAMPION_MODEL = "champion_model"


def asset_key(spec: UseCaseSpec, name: str) -> dg.AssetKey:
    return dg.AssetKey([spec.asset_prefix, name])


def batch_tags(spec: UseCaseSpec) -> dict[str, str]:
    """Tags of every batch run."""
    return run_tags(BATCH, spec)


def start_date() -> str:
    """First daily partition, shared by every use case (`COELHO_BATCH_START_DATE`)."""
    return settings.load(settings.RunOptions).batch_start_date.isoformat()


def daily_partitions() -> dg.DailyPartitionsDefinition:
    """UTC days from the shared start date; the current (open) day is included."""
    return dg.DailyPartitionsDefinition(start_date=start_date(), timezone="UTC", end_offset=1)


def latest_metadata(
    instance: dg.DagsterInstance, key: dg.AssetKey, run_id: str | None = None
) -> dict[str, Any]:
    """Plain values of the metadata of `key`'s materialization in run `run_id` if it has one,
    else of its latest materialization (Failure if none). Preferring the current run keeps two
    concurrent trainings from reading each other's upstream."""
    materialization = None
    if run_id is not None:
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            event = record.asset_materialization
            if event is not None and event.asset_key == key:
                materialization = event
    if materialization is None:
        latest = instance.get_latest_materialization_event(key)
        materialization = None if latest is None else latest.asset_materialization
    if materialization is None:
        raise dg.Failure(
            description=f"{key.to_user_string()} has not been materialized yet; "
            "materialize it first (or run the whole batch training job)."
        )
    return {name: value.value for name, value in materialization.metadata.items()}


def upstream_metadata(context: Any, spec: UseCaseSpec, name: str) -> dict[str, Any]:
    """`latest_metadata` of the use case's asset `name`, preferring the current run."""
    return latest_metadata(context.instance, asset_key(spec, name), context.run.run_id)
