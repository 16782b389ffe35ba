"""Resources from `dg.EnvVar`: read when a run launches, never shown by value in the UI."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster_shared.serdes import serialize_value

from coelho_pipelines.resources import (
    KafkaResource,
    LakehouseResource,
    MlflowResource,
    RedisResource,
    build_resources,
)
from coelho_pipelines.settings import Settings

PLATFORM_VARIABLES = (
    "COELHO_LAKEHOUSE_URI", "KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "MLFLOW_TRACKING_URI",
    "COELHO_KAFKA_PORT", "COELHO_REDIS_PORT", "COELHO_MLFLOW_PORT",
)  # fmt: skip


def code_location_json(defs: dg.Definitions) -> str:
    """The repository snapshot a code server sends to the UI (resource config, run config
    schemas and their defaults), serialized. Dagster has no public API for it."""
    from dagster._core.remote_representation.external_data import RepositorySnap

    return serialize_value(RepositorySnap.from_def(defs.get_repository_def()))


def launch_and_read(resources: dict) -> dict[str, object]:
    """Launch a one-asset run on `resources`; the values the resources hold inside the run."""
    seen: dict[str, object] = {}

    @dg.asset
    def probe(
        kafka: KafkaResource, redis: RedisResource, mlflow: MlflowResource,
        lakehouse: LakehouseResource,
    ) -> None:  # fmt: skip
        seen.update(
            bootstrap_servers=kafka.bootstrap_servers,
            redis_url=redis.url,
            tracking_uri=mlflow.tracking_uri,
            lakehouse_uri=lakehouse.uri,
            storage_options=dict(lakehouse.storage_options),
        )

    assert dg.materialize([probe], resources=resources).success
    return seen


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in PLATFORM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in [name for name in os.environ if name.startswith("COELHO_STORAGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COELHO_HOME", str(tmp_path))
    return monkeypatch


def test_secrets_are_in_runs_but_nowhere_in_the_code_location(clean_env) -> None:
    from coelho_pipelines.definitions import build_definitions

    secret = f"secret-{uuid.uuid4().hex}"
    redis_password = f"pw-{uuid.uuid4().hex}"
    clean_env.setenv("COELHO_STORAGE_AWS_SECRET_ACCESS_KEY", secret)
    clean_env.setenv("COELHO_STORAGE_AWS_ACCESS_KEY_ID", "minio")
    clean_env.setenv("COELHO_LAKEHOUSE_URI", "s3://lake")
    clean_env.setenv("REDIS_URL", f"redis://:{redis_password}@127.0.0.1:1/0")
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    snapshot = code_location_json(defs)
    assert secret not in snapshot and redis_password not in snapshot
    # The UI names the variables instead.
    assert "COELHO_STORAGE_AWS_SECRET_ACCESS_KEY" in snapshot and "REDIS_URL" in snapshot
    inside = launch_and_read(build_resources())
    assert inside["storage_options"] == {
        "aws_access_key_id": "minio",
        "aws_secret_access_key": secret,
    }
    assert inside["redis_url"] == f"redis://:{redis_password}@127.0.0.1:1/0"
    assert inside["lakehouse_uri"] == "s3://lake"


def test_resources_built_from_resolved_values_would_show_the_secret(clean_env) -> None:
    """The check above can fail: plain values (the old `from_env()` wiring) are in the snapshot."""
    secret = f"secret-{uuid.uuid4().hex}"
    clean_env.setenv("COELHO_STORAGE_AWS_SECRET_ACCESS_KEY", secret)

    @dg.asset
    def uses_lakehouse(lakehouse: LakehouseResource) -> None:
        del lakehouse

    plain = dg.Definitions(
        assets=[uses_lakehouse], resources={"lakehouse": LakehouseResource.from_env()}
    )
    assert secret in code_location_json(plain)


def test_variables_are_read_when_the_run_launches(clean_env) -> None:
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "loaded:9092")
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://loaded:5000")
    resources = build_resources()
    assert isinstance(resources["kafka"].bootstrap_servers, dg.EnvVar)
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "launched:9092")
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://launched:5000")
    inside = launch_and_read(resources)
    assert inside["bootstrap_servers"] == "launched:9092"
    assert inside["tracking_uri"] == "http://launched:5000"


def test_unset_variables_launch_with_the_local_defaults(clean_env, tmp_path: Path) -> None:
    clean_env.setenv("COELHO_REDIS_PORT", "6390")
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "")  # empty counts as unset
    inside = launch_and_read(build_resources())
    defaults = Settings.from_env()
    assert inside == {
        "bootstrap_servers": defaults.kafka_bootstrap_servers,
        "redis_url": defaults.redis_url,
        "tracking_uri": defaults.mlflow_tracking_uri,
        "lakehouse_uri": defaults.lakehouse_uri,
        "storage_options": {},
    }
    assert inside["lakehouse_uri"] == str(tmp_path.resolve() / "lakehouse")
    assert inside["redis_url"] == "redis://127.0.0.1:6390/0"
    assert inside["bootstrap_servers"] == "127.0.0.1:9092"
