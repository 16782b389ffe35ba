"""Create the Kafka topic of every use case (idempotent): run by the chart's post-install Job.

Topic names come from the use-case specs; partitions, replication and retention from the
environment (COELHO_TOPIC_PARTITIONS, COELHO_TOPIC_REPLICATION, COELHO_TOPIC_RETENTION_MS).
Waits for the brokers up to COELHO_JOB_DEADLINE_SECONDS; exits non-zero on any other error.
"""

from __future__ import annotations

import os
import sys
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from coelho_pipelines.settings import Settings
from coelho_pipelines.use_cases import all_specs


def wait_for_brokers(admin: AdminClient, deadline: float) -> None:
    while True:
        try:
            admin.list_topics(timeout=10)
            return
        except KafkaException as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"create_topics: Kafka not reachable: {error}") from error
            print(f"create_topics: waiting for Kafka ({error})", flush=True)
            time.sleep(5)


def main() -> int:
    bootstrap = Settings.from_env().kafka_bootstrap_servers
    deadline = time.monotonic() + float(os.environ.get("COELHO_JOB_DEADLINE_SECONDS", "600"))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wait_for_brokers(admin, deadline)
    config = {"retention.ms": os.environ.get("COELHO_TOPIC_RETENTION_MS", "604800000")}
    topics = [
        NewTopic(
            spec.topic,
            num_partitions=int(os.environ.get("COELHO_TOPIC_PARTITIONS", "3")),
            replication_factor=int(os.environ.get("COELHO_TOPIC_REPLICATION", "1")),
            config=config,
        )
        for spec in all_specs()
    ]
    failed = 0
    for topic, future in admin.create_topics(topics, request_timeout=30).items():
        try:
            future.result()
            print(f"create_topics: created {topic}", flush=True)
        except KafkaException as error:
            if error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                print(f"create_topics: {topic} exists", flush=True)
            else:
                print(f"create_topics: {topic} failed: {error}", file=sys.stderr, flush=True)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
