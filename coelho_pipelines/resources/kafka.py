"""Kafka: connection settings and the clients built from them (confluent-kafka)."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from coelho_pipelines.settings import Settings


class KafkaResource(dg.ConfigurableResource):
    """A Kafka cluster reached through `bootstrap_servers`."""

    bootstrap_servers: str = Field(description="from KAFKA_BOOTSTRAP_SERVERS")

    @classmethod
    def from_env(cls) -> KafkaResource:
        """Resolved values for code outside Dagster (the CLI); Definitions use `build_resources`."""
        return cls(bootstrap_servers=Settings.from_env().kafka_bootstrap_servers)

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        """Idempotent, acks=all producer settings."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            **overrides,
        }

    def consumer_config(self, group_id: str, **overrides: Any) -> dict[str, Any]:
        """Consumer settings with manual offset management (offsets live with our data)."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            **overrides,
        }

    def producer(self, **overrides: Any):
        from confluent_kafka import Producer

        return Producer(self.producer_config(**overrides))

    def consumer(self, group_id: str, **overrides: Any):
        from confluent_kafka import Consumer

        return Consumer(self.consumer_config(group_id, **overrides))

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.bootstrap_servers})

    def end_offsets(self, topic: str, timeout: float = 10.0) -> dict[int, int]:
        """The next offset to be written, per partition of `topic`."""
        return {p: high for p, (_, high) in self.watermarks(topic, timeout).items()}

    def watermarks(self, topic: str, timeout: float = 10.0) -> dict[int, tuple[int, int]]:
        """Per partition of `topic`: (the oldest offset retention kept, the next to be written),
        read with one short-lived client."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": "coelho-offset-probe",
                "log_level": 0,  # an unreachable broker is reported by the caller, once
            }
        )
        try:
            metadata = consumer.list_topics(topic, timeout=timeout)
            topic_metadata = metadata.topics[topic]
            if topic_metadata.error is not None:
                raise RuntimeError(f"Kafka topic {topic!r}: {topic_metadata.error.str()}")
            return {
                partition: consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout
                )
                for partition in sorted(topic_metadata.partitions)
            }
        finally:
            consumer.close()
