"""Ingestion test helpers: a private topic per test (a spec copy pointing at it), producing."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable

import orjson

from coelho.platform.kafka import ensure_topics
from coelho_pipelines.kafka_produce import produce_retrying
from coelho_pipelines.use_cases import get_spec
from coelho_pipelines.use_cases.spec import UseCaseSpec

Produce = Callable[[Iterable[bytes | None], Iterable[bytes | None] | None], int]


def private_spec(key: str, bootstrap_servers: str, partitions: int = 3) -> UseCaseSpec:
    """The use case `key` with its own fresh topic, so tests never share messages."""
    spec = get_spec(key)
    topic = f"test_{key}_{uuid.uuid4().hex[:10]}"
    ensure_topics(bootstrap_servers, [topic], partitions=partitions)
    return dataclasses.replace(spec, topic=topic)


def produce_values(
    bootstrap_servers: str,
    topic: str,
    values: Iterable[bytes | None],
    keys: Iterable[bytes | None] | None = None,
    partition: int | None = None,
) -> int:
    """Produce raw values (keyed, or round-robin when keys are None); returns how many."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.max.bytes": 4 << 20,
        }
    )
    values = list(values)
    keys = list(keys) if keys is not None else [None] * len(values)
    failures: list[str] = []

    def report(error, _message) -> None:
        if error is not None:
            failures.append(str(error))

    for i, (value, key) in enumerate(zip(values, keys, strict=True)):
        target = partition if partition is not None else (i % 3 if key is None else None)
        produce_retrying(producer, topic, value, key, partition=target, on_delivery=report)
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0 and not failures, failures[:3]
    return len(values)


def produce_events(bootstrap_servers: str, spec: UseCaseSpec, events: list[dict]) -> int:
    values = [orjson.dumps(e) for e in events]
    keys = [str(e.get(spec.key_field, "")).encode() for e in events]
    return produce_values(bootstrap_servers, spec.topic, values, keys)
