"""One ingestion pass: read offset ranges from Kafka, validate, commit to Delta exactly once.

`ingest` is the single code path behind the Dagster run (`<uc>_ingestion`), `coelho ingest` and
the benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from coelho_pipelines import telemetry
from coelho_pipelines.events.validate import DEFAULT_MAX_BYTES, BatchDecoder
from coelho_pipelines.ingestion.consume import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_IDLE_TIMEOUT_S,
    Batch,
    ConsumeStats,
    OffsetRange,
    plan_ranges,
    prefetch,
    read_ranges,
)
from coelho_pipelines.ingestion.group_commit import Committed, GroupCommitter
from coelho_pipelines.ingestion.writer import DeltaSink, PendingBatch
from coelho_pipelines.lakehouse.tables import dead_letters_to_arrow, with_ingestion_columns
from coelho_pipelines.resources import KafkaResource, LakehouseResource
from coelho_pipelines.use_cases.spec import UseCaseSpec

Log = Callable[[str], None]
# Messages decoded at a time; a commit merges decoded batches up to the run's batch size.
DECODE_CHUNK = 10_000


@dataclass
class IngestionResult:
    """What one pass committed."""

    use_case: str
    topic: str
    ranges: list[OffsetRange]
    events: int = 0
    dead_letters: int = 0
    messages_read: int = 0
    commits: int = 0
    seconds: float = 0.0
    committed_offsets: dict[int, int | None] = field(default_factory=dict)
    end_offsets: dict[int, int] = field(default_factory=dict)
    raw_version: int | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    timed_out: bool = False

    @property
    def events_per_second(self) -> float:
        return self.messages_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def lag(self) -> dict[int, int]:
        return {
            p: max(0, end - (self.committed_offsets.get(p) or 0))
            for p, end in self.end_offsets.items()
        }

    def summary(self) -> str:
        ranges = ", ".join(f"p{r.partition} [{r.start}, {r.end})" for r in self.ranges) or "none"
        return (
            f"{self.use_case}: {self.events} events and {self.dead_letters} dead letters "
            f"committed in {self.commits} commits from {self.topic} ({ranges}) "
            f"in {self.seconds:.2f}s ({self.events_per_second:,.0f} msg/s)"
        )


def decode_batch(
    spec: UseCaseSpec, decoder: BatchDecoder, batch: Batch, ingested_at: datetime | None = None
) -> PendingBatch:
    """Validate a batch of Kafka messages into raw rows and dead-letter rows."""
    now = ingested_at or datetime.now(UTC)
    decoded = decoder.decode(batch.values)
    partitions = pa.array(batch.partitions, pa.int32())
    offsets = pa.array(batch.offsets, pa.int64())
    if len(decoded.indices) != len(batch.values):
        take = pa.array(decoded.indices, pa.int64())
        partitions, offsets = partitions.take(take), offsets.take(take)
    rows = with_ingestion_columns(spec, decoded.events, partitions, offsets, now)
    dead = dead_letters_to_arrow(
        spec.topic,
        [
            (batch.values[i], batch.key(i), reason, batch.partitions[i], batch.offsets[i])
            for i, reason in decoded.rejects
        ],
        failed_at=now,
    )
    return PendingBatch(rows, dead, dict(batch.next_offsets))


def ingest(
    spec: UseCaseSpec,
    kafka: KafkaResource,
    lakehouse: LakehouseResource,
    ranges: list[OffsetRange] | None = None,
    max_events: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    log: Log | None = None,
) -> IngestionResult:
    """Ingest `ranges` (default: everything new, up to `max_events`) of the use case's topic.

    Each range starts at the later of its own start and what the table already holds, so a
    repeated or overlapping request writes nothing twice.
    """
    log = log or (lambda _message: None)
    started = time.perf_counter()
    watermarks = kafka.watermarks(spec.topic)
    end_offsets = {p: high for p, (_, high) in watermarks.items()}
    sink = DeltaSink(spec, lakehouse.uri, lakehouse.storage_options)
    partitions = sorted(end_offsets)
    committed = sink.committed(partitions)
    if ranges is None:
        low = {p: low for p, (low, _) in watermarks.items()}
        ranges = plan_ranges(end_offsets, committed, max_events, low)
    else:
        ranges = _resume(ranges, committed)
    result = IngestionResult(spec.key, spec.topic, ranges, end_offsets=end_offsets)
    if ranges:
        _run(spec, kafka, sink, ranges, batch_size, idle_timeout_s, max_bytes, result, log)
    result.committed_offsets = sink.committed(partitions)
    result.raw_version = sink.raw.version()
    result.seconds = time.perf_counter() - started
    for partition, lag in result.lag.items():
        telemetry.INGESTION_LAG.labels(spec.key, str(partition)).set(lag)
    return result


def _resume(ranges: list[OffsetRange], committed: Mapping[int, int | None]) -> list[OffsetRange]:
    resumed = []
    for r in ranges:
        start = max(r.start, committed.get(r.partition) or 0)
        if start < r.end:
            resumed.append(OffsetRange(r.partition, start, r.end))
    return resumed


def _run(
    spec: UseCaseSpec,
    kafka: KafkaResource,
    sink: DeltaSink,
    ranges: list[OffsetRange],
    batch_size: int,
    idle_timeout_s: float,
    max_bytes: int,
    result: IngestionResult,
    log: Log,
) -> None:
    decoder = BatchDecoder(spec, max_bytes=max_bytes)
    consumer = kafka.consumer(
        f"coelho-ingest-{spec.key}",
        **{"fetch.max.bytes": 64 << 20, "queued.max.messages.kbytes": 256 << 10},
    )
    stats = ConsumeStats()
    committer = GroupCommitter(sink.commit, max_messages=batch_size)
    try:
        # Small batches are decoded while Kafka is still read; commits merge them.
        chunk = min(batch_size, DECODE_CHUNK)
        batches = read_ranges(consumer, spec.topic, ranges, chunk, idle_timeout_s, stats)
        for batch in prefetch(batches):
            pending = decode_batch(spec, decoder, batch)
            for committed in committer.submit(pending, len(batch)):
                _record(spec, result, committed, log)
        for committed in committer.close():
            _record(spec, result, committed, log)
    except BaseException:
        committer.abandon()
        raise
    finally:
        consumer.close()
    result.timed_out = stats.timed_out


def _record(spec: UseCaseSpec, result: IngestionResult, committed: Committed, log: Log) -> None:
    commit, pending = committed.stats, committed.batch
    result.commits += 1
    result.events += commit.rows
    result.dead_letters += commit.dead_letters
    result.messages_read += committed.messages
    _count_reasons(result, pending)
    telemetry.INGESTED_EVENTS.labels(spec.key).inc(commit.rows)
    telemetry.DEAD_LETTERS.labels(spec.key).inc(commit.dead_letters)
    telemetry.INGESTION_COMMIT_LATENCY.labels(spec.key).observe(commit.seconds)
    log(
        f"committed {commit.rows} events, {commit.dead_letters} dead letters "
        f"(Delta version {commit.raw_version}, offsets {pending.next_offsets})"
    )


def _count_reasons(result: IngestionResult, pending: PendingBatch) -> None:
    if pending.dead_letters.num_rows == 0:
        return
    for reason in pending.dead_letters.column("reason").to_pylist():
        kind = reason.split(":", 1)[0]
        result.reasons[kind] = result.reasons.get(kind, 0) + 1
