"""Ingestion fixtures: Kafka and lakehouse resources for the session broker and a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from coelho_pipelines.resources import KafkaResource, LakehouseResource


@pytest.fixture
def kafka(kafka_service) -> KafkaResource:
    return KafkaResource(bootstrap_servers=kafka_service.bootstrap_servers)


@pytest.fixture
def lakehouse(tmp_path: Path) -> LakehouseResource:
    return LakehouseResource(uri=str(tmp_path / "lakehouse"))
