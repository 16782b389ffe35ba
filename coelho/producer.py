"""Producing generated events, generic over use case specs.

A `Stream` pairs a spec with its generator, a rate (events/s, 0 = as fast as possible) and an
optional total count. `run_streams` drives any number of streams in one loop into a sink:
`KafkaSink` (confluent-kafka, idempotent, acks=all, keyed by `spec.key_field`, JSON UTF-8
values, delivery reports counted, Prometheus metrics) or `LinesSink` (JSON lines to a binary
file, for `--stdout`). A full local queue (BufferError) is served and retried, never dropped.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import orjson

from coelho_pipelines import telemetry
from coelho_pipelines.kafka_produce import produce_retrying
from coelho_pipelines.use_cases.spec import UseCaseSpec

BATCH = 500  # events produced per stream between two services of the sink
MAX_IDLE_WAIT = 0.05  # seconds the loop waits at most while nothing is due


class ProducerError(Exception):
    """A producing failure to report as one line (unreachable broker, missing topic, ...)."""


class LocalHistogram:
    """Observations counted locally, added to a Prometheus histogram child in bulk.

    `Histogram.observe` takes two locks per call; per event that costs more than producing.
    `publish` adds the accumulated bucket counts and sum in one go (same exported values).
    """

    def __init__(self, child: Any) -> None:
        self.child = child
        self.bounds = tuple(child._upper_bounds)
        self.counts = [0] * len(self.bounds)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def publish(self) -> None:
        buckets = self.child._buckets
        for index, count in enumerate(self.counts):
            if count:
                buckets[index].inc(count)
                self.counts[index] = 0
        if self.total:
            self.child._sum.inc(self.total)
            self.total = 0.0


@dataclass
class StreamStats:
    """Counters of one stream; `acked`/`errors` come from delivery reports."""

    sent: int = 0
    acked: int = 0
    errors: int = 0
    bytes: int = 0
    positives: int = 0  # events whose label is 1 (tfd: fraud)
    last_error: str | None = None


@dataclass
class Stream:
    """One use case's events on their way out: spec, generator, pacing and counters."""

    spec: UseCaseSpec
    generator: Iterator[dict[str, Any]]
    rate: float = 0.0
    count: int | None = None
    stats: StreamStats = field(default_factory=StreamStats)
    started: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("rate must be >= 0 (0 = as fast as possible)")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")
        labels = {"use_case": self.spec.key}
        self.metric_sent = telemetry.PRODUCER_MESSAGES.labels(**labels)
        self.metric_errors = telemetry.PRODUCER_ERRORS.labels(**labels)
        self.latencies = LocalHistogram(telemetry.PRODUCER_LATENCY.labels(**labels))
        self.sizes = LocalHistogram(telemetry.PRODUCER_MESSAGE_BYTES.labels(**labels))
        self._reported_acked = 0
        self._reported_errors = 0

    @property
    def done(self) -> bool:
        return self.count is not None and self.stats.sent >= self.count

    def due(self, now: float) -> int:
        """How many events to send now to keep to the rate (at most one batch)."""
        if self.done:
            return 0
        remaining = BATCH if self.count is None else min(BATCH, self.count - self.stats.sent)
        if self.rate <= 0:
            return remaining
        scheduled = math.floor((now - self.started) * self.rate) + 1
        return max(0, min(remaining, scheduled - self.stats.sent))

    def next_due_at(self) -> float:
        """Monotonic time at which the next event is due (rate > 0)."""
        return self.started + self.stats.sent / self.rate if self.rate > 0 else 0.0

    def on_delivery(self, error: Any, message: Any) -> None:
        """Delivery report callback (runs inside `poll`/`flush`)."""
        if error is not None:
            self.stats.errors += 1
            self.stats.last_error = str(error)
            return
        self.stats.acked += 1
        latency = message.latency()
        if latency is not None:
            self.latencies.observe(latency)

    def publish_metrics(self) -> None:
        """Push counters accumulated since the last call to Prometheus."""
        stats = self.stats
        self.metric_sent.inc(stats.acked - self._reported_acked)
        self.metric_errors.inc(stats.errors - self._reported_errors)
        self._reported_acked, self._reported_errors = stats.acked, stats.errors
        self.latencies.publish()
        self.sizes.publish()
        if self.spec.task == "classification" and stats.sent:
            telemetry.PRODUCER_FRAUD_RATIO.set(stats.positives / stats.sent)
        active = getattr(self.generator, "active_sessions", None)
        if active is not None:
            telemetry.PRODUCER_ACTIVE_SESSIONS.set(active)


class Sink(Protocol):
    def send(self, stream: Stream, key: bytes, value: bytes) -> bool:
        """Hand one message over; False if it could not be (shutting down with a full queue)."""
        ...

    def service(self, timeout: float) -> None: ...

    def close(self, timeout: float) -> int: ...


class LinesSink:
    """JSON lines to a binary file (the `--stdout` mode); every line counts as delivered."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def send(self, stream: Stream, key: bytes, value: bytes) -> bool:
        self.out.write(value + b"\n")
        stream.stats.acked += 1
        return True

    def service(self, timeout: float) -> None:
        self.out.flush()
        if timeout > 0:
            time.sleep(timeout)

    def close(self, timeout: float) -> int:
        self.out.flush()
        return 0


def _quiet_logger() -> logging.Logger:
    """librdkafka's own log lines (connection refused, ...) go here, not to stderr."""
    logger = logging.getLogger("coelho.producer.librdkafka")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return logger


class KafkaSink:
    """A confluent-kafka producer for the topics of the streams' specs."""

    def __init__(self, config: Mapping[str, Any], stop: threading.Event | None = None) -> None:
        from confluent_kafka import Producer

        self.errors: list[str] = []
        self.stop = stop or threading.Event()
        self.bootstrap = config.get("bootstrap.servers", "?")
        self.producer = Producer(
            {"error_cb": self._on_error, "logger": _quiet_logger(), **dict(config)}
        )

    def _on_error(self, error: Any) -> None:
        self.errors.append(str(error))
        del self.errors[:-10]

    def check(self, topics: Iterable[str], timeout: float = 10.0) -> None:
        """Fail in one line, within `timeout`, when the broker or a topic is missing."""
        from confluent_kafka import KafkaException

        try:
            metadata = self.producer.list_topics(timeout=timeout)
        except KafkaException as error:
            reason = error.args[0].str() if error.args else str(error)
            raise ProducerError(f"cannot reach Kafka at {self.bootstrap}: {reason}") from error
        missing = [t for t in topics if t not in metadata.topics or metadata.topics[t].error]
        if missing:
            raise ProducerError(
                f"topic(s) {', '.join(missing)} missing on {self.bootstrap} "
                "(`coelho up` creates them, or pass --create-topics)"
            )

    def send(self, stream: Stream, key: bytes, value: bytes) -> bool:
        """Queue one event; False only when stopping while the local queue is full."""
        return produce_retrying(
            self.producer,
            stream.spec.topic,
            value,
            key,
            on_delivery=stream.on_delivery,
            stop=self.stop,
        )

    def service(self, timeout: float) -> None:
        self.producer.poll(timeout)

    def close(self, timeout: float) -> int:
        """Flush; returns how many messages are still undelivered after `timeout`."""
        return self.producer.flush(timeout)


def serialize(event: Mapping[str, Any]) -> bytes:
    """An event as compact JSON, UTF-8."""
    return orjson.dumps(event)


def _send_batch(stream: Stream, sink: Sink, n: int) -> None:
    generator, stats = stream.generator, stream.stats
    key_field = stream.spec.key_field
    label_field = stream.spec.label_field if stream.spec.task == "classification" else None
    observe_size = stream.sizes.observe
    send = sink.send
    dumps = orjson.dumps
    for _ in range(n):
        event = next(generator)
        value = dumps(event)
        if not send(stream, str(event[key_field]).encode(), value):
            return
        stats.sent += 1
        stats.bytes += len(value)
        observe_size(len(value))
        if label_field is not None and event[label_field] == 1:
            stats.positives += 1


def run_streams(
    streams: list[Stream],
    sink: Sink,
    stop: threading.Event | None = None,
    on_progress: Callable[[list[Stream]], None] | None = None,
    progress_every: float = 0.5,
    flush_timeout: float = 30.0,
) -> int:
    """Send every stream's events into `sink` until all counts are reached or `stop` is set.

    Returns the number of messages still undelivered after the final flush (0 = all acked).
    """
    stop = stop or threading.Event()
    start = time.monotonic()
    for stream in streams:
        stream.started = start
    last_progress = start
    while not stop.is_set() and not all(s.done for s in streams):
        now = time.monotonic()
        sent_any = False
        for stream in streams:
            n = stream.due(now)
            if n:
                _send_batch(stream, sink, n)
                sent_any = True
        if sent_any:
            sink.service(0)
        else:
            waits = [s.next_due_at() - now for s in streams if not s.done and s.rate > 0]
            sink.service(max(0.0, min([MAX_IDLE_WAIT, *waits])))
        if now - last_progress >= progress_every:
            last_progress = now
            for stream in streams:
                stream.publish_metrics()
            if on_progress:
                on_progress(streams)
    undelivered = sink.close(flush_timeout)
    for stream in streams:
        stream.publish_metrics()
    if on_progress:
        on_progress(streams)
    return undelivered
