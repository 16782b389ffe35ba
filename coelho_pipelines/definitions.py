"""The code location: every domain's factories applied to every use case, merged."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from coelho_pipelines.batch.defs import build_batch_defs
from coelho_pipelines.incremental.defs import build_incremental_defs
from coelho_pipelines.ingestion.defs import build_ingestion_defs
from coelho_pipelines.lakehouse.defs import build_maintenance_defs
from coelho_pipelines.resources import build_resources
from coelho_pipelines.topics import build_topic_defs
from coelho_pipelines.use_cases import all_specs
from coelho_pipelines.use_cases.spec import UseCaseSpec

# One builder per domain; each turns a use case spec into that domain's Dagster objects.
USE_CASE_BUILDERS: list[Callable[[UseCaseSpec], dg.Definitions]] = [
    build_topic_defs,
    build_ingestion_defs,
    build_batch_defs,
    build_incremental_defs,
]

# Builders of objects that span use cases (e.g. lakehouse maintenance).
PLATFORM_BUILDERS: list[Callable[[tuple[UseCaseSpec, ...]], dg.Definitions]] = [
    build_maintenance_defs,
]


def build_definitions() -> dg.Definitions:
    """The whole code location, with resources configured from the environment."""
    specs = all_specs()
    parts = [builder(spec) for spec in specs for builder in USE_CASE_BUILDERS]
    parts += [builder(specs) for builder in PLATFORM_BUILDERS]
    return dg.Definitions.merge(*parts, dg.Definitions(resources=build_resources()))
