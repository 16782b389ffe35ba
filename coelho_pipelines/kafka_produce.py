"""Produce one message to Kafka, waiting out a full local queue instead of dropping it.

confluent-kafka raises `BufferError` when its local queue is full; the cure is to serve
delivery reports (`poll`) and try again. The producer app, the test helpers and the benches
all send through `produce_retrying`, so that rule lives here once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol


class KafkaProducer(Protocol):
    """The part of `confluent_kafka.Producer` this module uses."""

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None: ...

    def poll(self, timeout: float = ...) -> int: ...


def produce_retrying(
    producer: KafkaProducer,
    topic: str,
    value: bytes | None,
    key: bytes | None = None,
    *,
    partition: int | None = None,
    on_delivery: Callable[[Any, Any], None] | None = None,
    stop: threading.Event | None = None,
    poll_seconds: float = 0.05,
) -> bool:
    """Queue `value` for `topic`; while the local queue is full, serve delivery reports for
    `poll_seconds` and retry. Returns False only when `stop` is set during such a wait (the
    message was not queued); otherwise True."""
    options: dict[str, Any] = {}
    if partition is not None:
        options["partition"] = partition
    if on_delivery is not None:
        options["on_delivery"] = on_delivery
    while True:
        try:
            producer.produce(topic, value, key, **options)
            return True
        except BufferError:
            if stop is not None and stop.is_set():
                return False
            producer.poll(poll_seconds)
