"""Kafka input of the learner: every partition of the topic, from the snapshot's offsets.

The learner's own consumer group (`coelho-<uc>-incremental`) assigns itself all partitions
(no group rebalancing: one learner per use case runs at a time) starting at the offsets of
the latest snapshot, or at the beginning of the topic without one. Offsets are committed to
the group only after the snapshot that holds them is durable, for lag dashboards; the
snapshot remains the source of truth.

Partitions are merged deterministically by (message timestamp, partition, offset): when
every partition has a buffered message or is at its end, the oldest goes first. Replaying
the same topic therefore learns the same events in the same order, which is what makes
"1..N in one run" equal to "1..K, stop, resume to N".
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from coelho_pipelines.incremental.learner import Record

log = logging.getLogger(__name__)


def consumer_group(use_case: str) -> str:
    return f"coelho-{use_case}-incremental"


class TopicReader:
    """All partitions of one topic as a single, deterministically ordered record stream."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        start_offsets: dict[int, int] | None = None,
        batch_size: int = 500,
        poll_timeout: float = 0.2,
        stall_seconds: float = 5.0,
    ) -> None:
        self.topic = topic
        self.group_id = group_id
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.stall_seconds = stall_seconds
        self._config = {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 100,
        }
        self._start = dict(start_offsets or {})
        self._consumer: Any = None
        self.partitions: list[int] = []
        self._buffers: dict[int, deque] = {}
        self._eof: dict[int, bool] = {}
        self._waiting_since: dict[int, float] = {}
        self.consumer_errors = 0
        self.expired = 0
        self.at_head = False  # the last fetch found less than a batch: the stream's head

    def open(self, timeout: float = 30.0) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer(self._config)
        metadata = consumer.list_topics(self.topic, timeout=timeout)
        topic_metadata = metadata.topics.get(self.topic)
        if (
            topic_metadata is None
            or topic_metadata.error is not None
            or not topic_metadata.partitions
        ):
            consumer.close()
            reason = topic_metadata.error.str() if topic_metadata and topic_metadata.error else ""
            raise RuntimeError(f"Kafka topic {self.topic!r} is not available {reason}".strip())
        self.partitions = sorted(topic_metadata.partitions)
        assignment = [
            TopicPartition(self.topic, p, self._start.get(p, OFFSET_BEGINNING))
            for p in self.partitions
        ]
        self.expired = self._expired(consumer)
        consumer.assign(assignment)
        self._consumer = consumer
        self._buffers = {p: deque() for p in self.partitions}
        self._eof = dict.fromkeys(self.partitions, False)

    def _expired(self, consumer: Any) -> int:
        """Messages between a start offset and the log start: deleted by retention before
        they were learned (they cannot be learned any more; reported, never silently)."""
        from confluent_kafka import TopicPartition

        missing = 0
        for p, offset in self._start.items():
            low, _ = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
            if 0 <= offset < low:
                missing += low - offset
        if missing:
            log.warning("%s: %d messages expired by retention before they were learned",
                        self.topic, missing)  # fmt: skip
        return missing

    def __enter__(self) -> TopicReader:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def caught_up(self) -> bool:
        """Every partition is at its end and nothing is buffered."""
        return all(self._eof.values()) and not any(self._buffers.values())

    def _fill(self) -> None:
        from confluent_kafka import KafkaError

        messages = self._consumer.consume(num_messages=self.batch_size, timeout=self.poll_timeout)
        self.at_head = len(messages) < self.batch_size
        for msg in messages:
            error = msg.error()
            partition = msg.partition()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._eof[partition] = True
                else:
                    self.consumer_errors += 1
                continue
            _, timestamp = msg.timestamp()
            self._buffers[partition].append((timestamp, partition, msg.offset(), msg.value()))
            self._eof[partition] = False

    def _ready(self) -> list[Record]:
        """Records that can go out now without breaking the deterministic order."""
        now = time.monotonic()
        heads = []
        for p in self.partitions:
            buffer = self._buffers[p]
            if buffer:
                self._waiting_since.pop(p, None)
                heads.append(p)
            elif not self._eof[p]:
                since = self._waiting_since.setdefault(p, now)
                if now - since < self.stall_seconds:
                    return []  # this partition may still hold an older message
        out: list[Record] = []
        heap = [(*self._buffers[p][0][:3], p) for p in heads]
        heapq.heapify(heap)
        while heap:
            _, partition, _, _ = heapq.heappop(heap)
            buffer = self._buffers[partition]
            timestamp, _, offset, value = buffer.popleft()
            out.append(Record(value, partition, offset, timestamp))
            if buffer:
                heapq.heappush(heap, (*buffer[0][:3], partition))
            elif not self._eof[partition]:
                break  # its next message is not fetched yet: wait for it
        return out

    def records(self) -> Iterator[Record | None]:
        """Records in merge order; None whenever nothing is ready (a chance to stop)."""
        while True:
            self._fill()
            ready = self._ready()
            if not ready:
                yield None
                continue
            yield from ready

    def commit(self, offsets: dict[int, int]) -> None:
        """Record consumed offsets in the consumer group (after a durable snapshot)."""
        from confluent_kafka import TopicPartition

        if offsets and self._consumer is not None:
            self._consumer.commit(
                offsets=[TopicPartition(self.topic, p, o) for p, o in sorted(offsets.items())],
                asynchronous=True,
            )

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class LagMonitor:
    """Consumer lag (messages in the topic not yet learned) on its own thread and client.

    Asking the broker for watermarks takes tens of milliseconds; the learning thread only
    shares its offsets dict, which this thread copies.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        offsets: dict[int, int],
        report: Any,
        interval_seconds: float = 5.0,
    ) -> None:
        self.topic = topic
        self.offsets = offsets
        self.report = report
        self.interval = interval_seconds
        self.errors = 0
        self._config = {"bootstrap.servers": bootstrap_servers, "group.id": "coelho-lag-probe"}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="coelho-lag", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer(self._config)
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.report(self.lag(consumer))
                except Exception:  # noqa: BLE001 - lag is informative only
                    self.errors += 1
        finally:
            consumer.close()

    def lag(self, consumer: Any) -> int:
        from confluent_kafka import TopicPartition

        offsets = dict(self.offsets)
        metadata = consumer.list_topics(self.topic, timeout=5.0).topics[self.topic]
        total = 0
        for p in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=5.0)
            total += max(0, high - max(offsets.get(p, low), low))
        return total

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
