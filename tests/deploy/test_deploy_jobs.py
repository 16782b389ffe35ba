"""The chart's topic Job script against the session's real Kafka: creates the use-case topics
with the configured partitions and retention, and is idempotent (the Job re-runs on upgrades)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from deploy_helpers import CHART

from coelho_pipelines.use_cases import all_specs

SCRIPT = CHART / "files" / "jobs" / "create_topics.py"


@pytest.mark.services
def test_create_topics_job_script_is_idempotent(kafka_service) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_service.bootstrap_servers,
        "COELHO_TOPIC_PARTITIONS": "3",
        "COELHO_TOPIC_RETENTION_MS": "604800000",
        "COELHO_JOB_DEADLINE_SECONDS": "60",
    }
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
    topics = [spec.topic for spec in all_specs()]
    for topic in topics:
        assert f"create_topics: {topic} exists" in result.stdout
    admin = AdminClient({"bootstrap.servers": kafka_service.bootstrap_servers})
    metadata = admin.list_topics(timeout=30).topics
    for topic in topics:
        assert len(metadata[topic].partitions) == 3, topic
    resources = [ConfigResource(ConfigResource.Type.TOPIC, topic) for topic in topics]
    for future in admin.describe_configs(resources).values():
        assert future.result(timeout=30)["retention.ms"].value == "604800000"


def test_create_topics_job_script_fails_clearly_without_kafka() -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "COELHO_JOB_DEADLINE_SECONDS": "0",
    }
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "create_topics: Kafka not reachable" in result.stderr
