"""Bounded Kafka reads: plan offset ranges, then consume exactly those ranges in batches.

Offsets are never committed to Kafka: where ingestion stands lives in the Delta table (see
`writer.py`). A consumer here is assigned partitions explicitly (no group rebalancing) and stops
at each range's end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from queue import Empty, Full, Queue
from typing import Any

DEFAULT_BATCH_SIZE = 50_000
DEFAULT_IDLE_TIMEOUT_S = 30.0


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Offsets `[start, end)` of one partition."""

    partition: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)

    def as_config(self) -> dict[str, int]:
        return {"partition": self.partition, "start": self.start, "end": self.end}


def plan_ranges(
    end_offsets: Mapping[int, int],
    committed: Mapping[int, int | None],
    max_events: int | None = None,
    low_offsets: Mapping[int, int] | None = None,
) -> list[OffsetRange]:
    """Non-empty ranges from what is committed to each partition's end, `max_events` in total.

    A partition with nothing committed starts at its low watermark (0 unless retention removed
    older messages). `max_events` is shared fairly across partitions.
    """
    lows = low_offsets or {}
    starts = {}
    for partition in end_offsets:
        start = committed.get(partition)
        if start is None:
            start = lows.get(partition, 0)
        starts[partition] = max(start, lows.get(partition, 0))
    lags = {p: max(0, end_offsets[p] - starts[p]) for p in end_offsets}
    takes = _share(lags, max_events) if max_events is not None else lags
    return [
        OffsetRange(p, starts[p], starts[p] + takes[p]) for p in sorted(end_offsets) if takes[p] > 0
    ]


def _share(lags: Mapping[int, int], budget: int) -> dict[int, int]:
    """Split `budget` events across partitions, no more than each one's lag, as evenly as can."""
    takes = dict.fromkeys(lags, 0)
    left = max(0, budget)
    while left > 0:
        open_partitions = [p for p in sorted(lags) if takes[p] < lags[p]]
        if not open_partitions:
            break
        each = max(1, left // len(open_partitions))
        for p in open_partitions:
            step = min(each, lags[p] - takes[p], left)
            takes[p] += step
            left -= step
            if left == 0:
                break
    return takes


def ranges_from_config(items: list[Mapping[str, Any]]) -> list[OffsetRange]:
    return sorted(OffsetRange(int(i["partition"]), int(i["start"]), int(i["end"])) for i in items)


@dataclass
class Batch:
    """Messages read from Kafka, and for each partition the next offset after this batch."""

    values: list[bytes | None] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)

    def key(self, index: int) -> bytes | None:
        return self.messages[index].key()


@dataclass
class ConsumeStats:
    messages: int = 0
    bytes: int = 0
    reached: dict[int, int] = field(default_factory=dict)
    timed_out: bool = False


def read_ranges(
    consumer: Any,
    topic: str,
    ranges: list[OffsetRange],
    batch_size: int = DEFAULT_BATCH_SIZE,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    stats: ConsumeStats | None = None,
) -> Iterator[Batch]:
    """Read `ranges` from an (unassigned) confluent-kafka consumer, in batches of <= batch_size.

    Stops when every range is read, a partition reports end-of-partition before its range end
    (the missing offsets do not exist), or nothing arrives for `idle_timeout_s`.
    """
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    stats = stats if stats is not None else ConsumeStats()
    ends = {r.partition: r.end for r in ranges if r.size > 0}
    if not ends:
        return
    consumer.assign([TopicPartition(topic, r.partition, r.start) for r in ranges if r.size > 0])
    batch = Batch()
    last_message = time.monotonic()
    while ends:
        room = batch_size - len(batch)
        messages = consumer.consume(num_messages=min(room, 10_000), timeout=0.5)
        if not messages and time.monotonic() - last_message > idle_timeout_s:
            stats.timed_out = True
            break
        if messages:
            last_message = time.monotonic()
        for message in messages:
            error = message.error()
            partition = message.partition()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                if partition in ends and message.offset() < ends[partition]:
                    _finish(consumer, topic, partition, message.offset(), ends, batch, stats)
                continue
            end = ends.get(partition)
            offset = message.offset()
            if end is None or offset >= end:
                continue
            value = message.value()
            batch.values.append(value)
            batch.partitions.append(partition)
            batch.offsets.append(offset)
            batch.messages.append(message)
            batch.next_offsets[partition] = offset + 1
            stats.messages += 1
            if offset + 1 >= end:
                _finish(consumer, topic, partition, end, ends, batch, stats)
        if len(batch) >= batch_size:
            yield batch
            batch = Batch()
    if len(batch) or batch.next_offsets:
        yield batch


def _finish(
    consumer: Any,
    topic: str,
    partition: int,
    next_offset: int,
    ends: dict[int, int],
    batch: Batch,
    stats: ConsumeStats,
) -> None:
    from confluent_kafka import TopicPartition

    ends.pop(partition, None)
    batch.next_offsets[partition] = max(batch.next_offsets.get(partition, 0), next_offset)
    stats.reached[partition] = next_offset
    consumer.pause([TopicPartition(topic, partition)])


def prefetch(batches: Iterator[Batch], depth: int = 2) -> Iterator[Batch]:
    """Run `batches` in a background thread, `depth` batches ahead of the caller.

    Kafka fetching (librdkafka releases the GIL) then overlaps Arrow parsing and Delta writes.
    An exception in the reader is re-raised in the caller.
    """
    queue: Queue[Any] = Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def pump() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        queue.put(batch, timeout=0.2)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(done)
        except BaseException as error:  # noqa: BLE001 - handed to the consuming thread
            queue.put(error)

    thread = threading.Thread(target=pump, name="kafka-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = queue.get(timeout=0.5)
            except Empty:
                if not thread.is_alive() and queue.empty():
                    return
                continue
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=10)


def read_continuous(
    consumer: Any,
    topic: str,
    starts: Mapping[int, int],
    max_events: int,
    interval_s: float,
    poll_s: float = 0.5,
) -> Iterator[Batch]:
    """Read `topic` from `starts` (partition -> next offset) without end.

    Yields a batch once it holds `max_events` messages or its first message is `interval_s`
    old, and an empty batch after `interval_s` without messages, so the caller gets control
    back at least that often. Waits in `consume` (no busy loop). Non-fatal Kafka errors are
    skipped (librdkafka retries); a fatal one raises.
    """
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    consumer.assign([TopicPartition(topic, p, o) for p, o in sorted(starts.items())])
    batch = Batch()
    opened = time.monotonic()
    while True:
        room = max(1, max_events - len(batch))
        wait = max(0.01, min(poll_s, opened + interval_s - time.monotonic()))
        for message in consumer.consume(num_messages=min(room, 10_000), timeout=wait):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF or not error.fatal():
                    continue
                raise KafkaException(error)
            if not batch.values:
                opened = time.monotonic()
            batch.values.append(message.value())
            batch.partitions.append(message.partition())
            batch.offsets.append(message.offset())
            batch.messages.append(message)
            batch.next_offsets[message.partition()] = message.offset() + 1
        if len(batch) >= max_events or time.monotonic() - opened >= interval_s:
            yield batch
            batch = Batch()
            opened = time.monotonic()
