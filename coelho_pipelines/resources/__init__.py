"""Resources own the outside world: Kafka, Redis, MLflow and the lakehouse."""

from __future__ import annotations

from typing import Any

from coelho_pipelines.resources.kafka import KafkaResource
from coelho_pipelines.resources.lakehouse import LakehouseResource
from coelho_pipelines.resources.mlflow import MlflowResource
from coelho_pipelines.resources.redis import RedisResource

__all__ = [
    "KafkaResource",
    "LakehouseResource",
    "MlflowResource",
    "RedisResource",
    "build_resources",
]


def build_resources() -> dict[str, Any]:
    """The resources of the code location, configured from the environment."""
    return {
        "kafka": KafkaResource.from_env(),
        "redis": RedisResource.from_env(),
        "mlflow": MlflowResource.from_env(),
        "lakehouse": LakehouseResource.from_env(),
    }
