"""The session service fixtures answer their health checks and work with the resources."""

from __future__ import annotations

import pytest

from coelho.platform import kafka as kafka_platform
from coelho.platform import mlflow as mlflow_platform
from coelho.platform import redis as redis_platform
from coelho_pipelines.resources import (
    KafkaResource,
    LakehouseResource,
    MlflowResource,
    RedisResource,
    build_resources,
)
from coelho_pipelines.settings import Settings
from coelho_pipelines.use_cases import all_specs

pytestmark = pytest.mark.services


def test_kafka_has_every_use_case_topic_with_three_partitions(kafka_service) -> None:
    port = int(kafka_service.bootstrap_servers.rsplit(":", 1)[1])
    assert kafka_platform.healthy(port)
    admin = KafkaResource(bootstrap_servers=kafka_service.bootstrap_servers).admin()
    metadata = admin.list_topics(timeout=10)
    for spec in all_specs():
        assert len(metadata.topics[spec.topic].partitions) == 3


def test_kafka_topics_keep_events_seven_days(kafka_service) -> None:
    from confluent_kafka.admin import ConfigResource

    admin = KafkaResource(bootstrap_servers=kafka_service.bootstrap_servers).admin()
    topic = all_specs()[0].topic
    (future,) = admin.describe_configs([ConfigResource("topic", topic)]).values()
    assert future.result()["retention.ms"].value == str(7 * 24 * 3600 * 1000)


def test_create_topics_is_idempotent(kafka_service) -> None:
    assert kafka_platform.create_topics(kafka_service.bootstrap_servers, all_specs()) == []
    created = kafka_platform.ensure_topics(kafka_service.bootstrap_servers, ["fixture_probe"])
    assert created == ["fixture_probe"]


def test_redis_answers_and_survives_a_restart(redis_service) -> None:
    assert redis_platform.healthy(redis_service.port)
    client = RedisResource(url=redis_service.url).client()
    client.set("coelho:fixture:probe", "kept")
    redis_service.stop()
    assert not redis_platform.healthy(redis_service.port)
    redis_service.start()
    client = RedisResource(url=redis_service.url).client()
    assert client.get("coelho:fixture:probe") == b"kept"


def test_mlflow_answers_and_creates_experiments(mlflow_service) -> None:
    port = int(mlflow_service.tracking_uri.rsplit(":", 1)[1])
    assert mlflow_platform.healthy(port)
    resource = MlflowResource(tracking_uri=mlflow_service.tracking_uri)
    experiment_id = resource.experiment_id("fixture probe")
    assert resource.experiment_id("fixture probe") == experiment_id


def test_resources_build_from_platform_env(platform_env) -> None:
    assert KafkaResource.from_env().bootstrap_servers == platform_env["KAFKA_BOOTSTRAP_SERVERS"]
    assert RedisResource.from_env().client().ping()
    assert MlflowResource.from_env().tracking_uri == platform_env["MLFLOW_TRACKING_URI"]
    lakehouse = LakehouseResource.from_env()
    assert lakehouse.uri == platform_env["COELHO_LAKEHOUSE_URI"]
    assert str(Settings.from_env().home) == platform_env["COELHO_HOME"]
    assert set(build_resources()) == {"kafka", "redis", "mlflow", "lakehouse"}
    offsets = KafkaResource.from_env().end_offsets(all_specs()[0].topic)
    assert sorted(offsets) == [0, 1, 2]
