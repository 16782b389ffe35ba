"""Batch test helpers: isolated use-case specs, seeded events, a raw Delta table writer.

`isolated_spec` gives a spec with a unique key and experiment, so each test has its own asset
keys, MLflow experiment and registered model (`coelho-<key>-batch`) on the session's MLflow.
`write_raw_events` writes events through the ingestion helpers (`events_to_arrow`,
`ensure_table`) into `<lakehouse>/delta/<topic>`, exactly the raw table contract.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from deltalake import write_deltalake

from coelho_pipelines import naming
from coelho_pipelines.lakehouse.tables import (
    PARTITION_COLUMN,
    ensure_table,
    events_to_arrow,
    raw_schema,
)
from coelho_pipelines.resources import LakehouseResource, MlflowResource
from coelho_pipelines.use_cases import get_spec
from coelho_pipelines.use_cases.spec import UseCaseSpec

START = "2026-01-01T00:00:00+00:00"  # a Thursday
GENERATOR_OPTIONS: dict[str, dict[str, Any]] = {"tfd": {"fraud_rate": 0.03}}


def isolated_spec(key: str) -> UseCaseSpec:
    """The spec of `key` under a unique key and experiment name."""
    spec = get_spec(key)
    suffix = uuid.uuid4().hex[:8]
    return dataclasses.replace(
        spec, key=f"{key}t{suffix}", experiment=f"{spec.experiment} (test {suffix})"
    )


def generate(spec: UseCaseSpec, n: int, days: float, seed: int = 7) -> tuple[Any, list[dict]]:
    """A seeded generator and its first `n` events, spread over `days` from START."""
    options = GENERATOR_OPTIONS.get(get_spec_key(spec), {})
    generator = spec.generator(
        seed=seed, start=START, events_per_second=n / (days * 86_400), **options
    )
    return generator, generator.take(n)


def get_spec_key(spec: UseCaseSpec) -> str:
    for key in ("tfd", "eta", "ecci"):
        if spec.key.startswith(key):
            return key
    return spec.key


def write_raw_events(spec: UseCaseSpec, lakehouse_uri: str, events: list[dict]) -> str:
    """Append events to the raw table (test helper over the ingestion table helpers)."""
    uri = naming.raw_table_uri(lakehouse_uri, spec)
    table = ensure_table(uri, raw_schema(spec), [PARTITION_COLUMN])
    write_deltalake(table, events_to_arrow(spec, events), mode="append")
    return uri


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags of a single-run backfill over the partitions first..last."""
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }


@pytest.fixture
def lakehouse(tmp_path: Path) -> LakehouseResource:
    return LakehouseResource(uri=str(tmp_path / "lakehouse"))


@pytest.fixture
def mlflow_resource(mlflow_service: Any) -> MlflowResource:
    return MlflowResource(tracking_uri=mlflow_service.tracking_uri)


@pytest.fixture
def instance() -> Any:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def spec_factory() -> Callable[[str], UseCaseSpec]:
    return isolated_spec
