"""The batch domain of one use case as Dagster definitions (registered in definitions.py)."""

from __future__ import annotations

import dagster as dg

from coelho_pipelines.batch.assets import build_batch_assets
from coelho_pipelines.batch.automation import build_features_automation_sensor
from coelho_pipelines.batch.checks import build_batch_checks
from coelho_pipelines.batch.drift_retraining import build_drift_sensor
from coelho_pipelines.batch.jobs import build_retraining_job, build_schedule, build_training_job
from coelho_pipelines.batch.online_vs_batch import build_online_vs_batch_defs
from coelho_pipelines.batch.sensors import build_first_training_sensor
from coelho_pipelines.use_cases.spec import UseCaseSpec


def build_batch_defs(spec: UseCaseSpec) -> dg.Definitions:
    """`<uc>/features` .. `<uc>/champion_model`, their checks, jobs, the daily schedule, the
    features automation, the first-training and drift-retraining sensors, and
    `<uc>/online_vs_batch` with the sensor that keeps it fresh."""
    retraining = build_retraining_job(spec)
    training = dg.Definitions(
        assets=build_batch_assets(spec),
        asset_checks=build_batch_checks(spec),
        jobs=[build_training_job(spec), retraining],
        schedules=[build_schedule(spec, retraining)],
        sensors=[
            build_features_automation_sensor(spec),
            build_first_training_sensor(spec, retraining),
            build_drift_sensor(spec),
        ],
    )
    return dg.Definitions.merge(training, build_online_vs_batch_defs(spec))
