"""The asset keys ingestion materializes: `<uc>/raw_events` and `<uc>/dead_letters`."""

from __future__ import annotations

import dagster as dg

from coelho_pipelines.naming import DEAD_LETTERS, RAW_EVENTS
from coelho_pipelines.use_cases.spec import UseCaseSpec


def raw_events_key(spec: UseCaseSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.asset_prefix, RAW_EVENTS])


def dead_letters_key(spec: UseCaseSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.asset_prefix, DEAD_LETTERS])
