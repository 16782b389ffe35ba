"""Resources own the outside world: Kafka, Redis, MLflow and the lakehouse."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from coelho_pipelines.resources.kafka import KafkaResource
from coelho_pipelines.resources.lakehouse import LakehouseResource
from coelho_pipelines.resources.mlflow import MlflowResource
from coelho_pipelines.resources.redis import RedisResource
from coelho_pipelines.settings import (
    KAFKA_BOOTSTRAP_SERVERS_ENV,
    LAKEHOUSE_URI_ENV,
    MLFLOW_TRACKING_URI_ENV,
    REDIS_URL_ENV,
    Settings,
    storage_option_variables,
)

__all__ = [
    "KafkaResource",
    "LakehouseResource",
    "MlflowResource",
    "RedisResource",
    "build_resources",
]


def build_resources() -> dict[str, Any]:
    """The code location's resources, every field set from the environment the Dagster way.

    A variable that is set becomes a `dg.EnvVar`: read when a run or a sensor tick starts, shown
    in the UI and run config by name only. An unset one gives its local default (`Settings`, never
    a secret), so runs launch without it. The lakehouse's storage options (credentials included)
    are one `EnvVar` per `COELHO_STORAGE_<OPTION>` variable.
    """
    default = Settings.from_env()
    return {
        "kafka": KafkaResource(
            bootstrap_servers=_setting(KAFKA_BOOTSTRAP_SERVERS_ENV, default.kafka_bootstrap_servers)
        ),
        "redis": RedisResource(url=_setting(REDIS_URL_ENV, default.redis_url)),
        "mlflow": MlflowResource(
            tracking_uri=_setting(MLFLOW_TRACKING_URI_ENV, default.mlflow_tracking_uri)
        ),
        "lakehouse": LakehouseResource(
            uri=_setting(LAKEHOUSE_URI_ENV, default.lakehouse_uri),
            storage_options={
                option: dg.EnvVar(variable)
                for option, variable in sorted(storage_option_variables().items())
            },
        ),
    }


def _setting(variable: str, default: str) -> str:
    """`dg.EnvVar(variable)` if the variable is set (non-empty), else the default value."""
    return dg.EnvVar(variable) if os.environ.get(variable) else default
