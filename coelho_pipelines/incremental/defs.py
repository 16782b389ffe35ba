"""The incremental domain of one use case as Dagster definitions (registered in
definitions.py): the job and the sensors are built apart and wired here."""

from __future__ import annotations

import dagster as dg

from coelho_pipelines.incremental.job import build_learning_job, incremental_model_asset
from coelho_pipelines.incremental.sensor import build_learning_sensor
from coelho_pipelines.use_cases.spec import UseCaseSpec


def build_incremental_defs(spec: UseCaseSpec) -> dg.Definitions:
    """`<uc>/incremental_model`, the `<uc>_incremental_learning` job and the real-time
    training switch that keeps it running."""
    job = build_learning_job(spec)
    return dg.Definitions(
        assets=[incremental_model_asset(spec)],
        jobs=[job],
        sensors=[build_learning_sensor(spec, job)],
    )
