"""Jobs and the schedule of the batch graph.

- `<uc>_batch_training`: training set -> model -> evaluation (+ blocking champion check) ->
  visualizations -> champion, from whatever feature partitions exist. In-process executor: the
  graph is a chain, and it runs headless with `dagster job execute`.
- `<uc>_features_and_training`: the same plus one daily `<uc>/features` partition.
- schedule `<uc>_features_and_training_schedule`: every day at 00:15 UTC, the features of the
  day that just ended, then retraining (stopped by default; turn it on in the UI).
"""

from datetime import date, timedelta
from typing import Any

import dagster as dg

from coelho_pipelines.batch.lineage import (
    BATCH_EVALUATION,
    BATCH_MODEL,
    BATCH_VISUALIZATIONS,
    CHAMPION_MODEL,
    FEATURES,
    TRAINING_SET,
    asset_key,
    batch_tags,
    start_date,
)
from coelho_pipelines.naming import (
    retraining_job_name,
    retraining_schedule_name,
    training_job_name,
)
from coelho_pipelines.use_cases.spec import UseCaseSpec

TRAINING_ASSETS = (TRAINING_SET, BATCH_MODEL, BATCH_EVALUATION, BATCH_VISUALIZATIONS,
                   CHAMPION_MODEL)  # fmt: skip


def build_training_job(spec: UseCaseSpec) -> Any:  # an unresolved asset job
    selection = dg.AssetSelection.assets(*(asset_key(spec, name) for name in TRAINING_ASSETS))
    return dg.define_asset_job(
        training_job_name(spec),
        selection=selection,
        executor_def=dg.in_process_executor,
        tags=batch_tags(spec),
        description=f"Train, evaluate, plot and maybe promote the {spec.key} batch model from "
        "the feature partitions that exist.",
    )


def build_retraining_job(spec: UseCaseSpec) -> Any:  # an unresolved asset job
    names = (FEATURES, *TRAINING_ASSETS)
    return dg.define_asset_job(
        retraining_job_name(spec),
        selection=dg.AssetSelection.assets(*(asset_key(spec, name) for name in names)),
        executor_def=dg.in_process_executor,
        tags=batch_tags(spec),
        description=f"One day of {spec.key}/features, then the batch training chain.",
    )


def build_schedule(spec: UseCaseSpec, job: Any) -> dg.ScheduleDefinition:
    first = date.fromisoformat(start_date())

    @dg.schedule(
        name=retraining_schedule_name(spec),
        cron_schedule="15 0 * * *",
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        tags=batch_tags(spec),
        description=f"Daily: {spec.key}/features for the day that just ended, then retrain.",
    )
    def daily_retraining(context: dg.ScheduleEvaluationContext):
        day = context.scheduled_execution_time.date() - timedelta(days=1)
        if day < first:
            return dg.SkipReason(f"{day} is before the first partition {first}")
        key = day.isoformat()
        return dg.RunRequest(run_key=key, partition_key=key, tags=batch_tags(spec))

    return daily_retraining
