"""The batch domain of one use case as Dagster definitions (registered in definitions.py)."""

from __future__ import annotations

import dagster as dg

from coelho_pipelines.batch.assets import build_batch_assets
from coelho_pipelines.batch.automation import build_features_automation_sensor
from coelho_pipelines.batch.checks import build_batch_checks
from coelho_pipelines.batch.jobs import build_retraining_job, build_schedule, build_training_job
from coelho_pipelines.batch.sensors import build_first_training_sensor
from coelho_pipelines.use_cases.spec import UseCaseSpec


def build_batch_defs(spec: UseCaseSpec) -> dg.Definitions:
    """`<uc>/features` .. `<uc>/champion_model`, their checks, jobs, the daily schedule, the
    features automation and the first-training sensor."""
    retraining = build_retraining_job(spec)
    return dg.Definitions(
        assets=build_batch_assets(spec),
        asset_checks=build_batch_checks(spec),
        jobs=[build_training_job(spec), retraining],
        schedules=[build_schedule(spec, retraining)],
        sensors=[
            build_features_automation_sensor(spec),
            build_first_training_sensor(spec, retraining),
        ],
    )
