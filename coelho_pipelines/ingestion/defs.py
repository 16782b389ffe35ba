"""The ingestion domain's Dagster definitions, per use case and platform-wide."""

from __future__ import annotations

import dagster as dg

from coelho_pipelines.ingestion.assets import build_ingestion_asset, build_ingestion_job
from coelho_pipelines.ingestion.checks import build_raw_event_checks
from coelho_pipelines.ingestion.sensor import build_ingestion_sensor
from coelho_pipelines.use_cases.spec import UseCaseSpec

__all__ = ["build_ingestion_defs"]


def build_ingestion_defs(spec: UseCaseSpec) -> dg.Definitions:
    """`<uc>/raw_events` + `<uc>/dead_letters`, their checks, `<uc>_ingestion` and its sensor."""
    asset = build_ingestion_asset(spec)
    job = build_ingestion_job(spec, asset)
    return dg.Definitions(
        assets=[asset],
        asset_checks=[build_raw_event_checks(spec)],
        jobs=[job],
        sensors=[build_ingestion_sensor(spec, job)],
    )
