"""Continuous ingestion: one long-lived consumer per use case, committing to Delta every
`commit_interval_seconds` (or every `max_events` messages, whichever first).

The same pieces as a bounded pass (`pipeline.py`): Kafka batches are decoded by
`pipeline.decode_batch`, committed in order by the `GroupCommitter` through `DeltaSink.commit`
(rows and offsets in one Delta commit, dead letters first: exactly once). Reading starts at
the raw table's transaction versions, so a run killed at any point resumes where the table
stands. Small files are compacted on the commit thread every `compact_every_commits` commits
(only the event dates written since the last compaction).

`ContinuousIngestion.run` is a generator of reports, at a bounded rate: `Progress` (what was
committed since the last one, offsets, lag) every `report_interval_seconds`, and the raw-events
check results every `checks_interval_seconds` (computed on a worker thread). It returns when
`should_stop()` turns true (polled at least every commit interval), after committing what it has
decoded; messages read but not yet decoded are simply read again by the next run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc

from coelho_pipelines import telemetry
from coelho_pipelines.events.validate import DEFAULT_MAX_BYTES, BatchDecoder
from coelho_pipelines.ingestion.consume import prefetch, read_continuous
from coelho_pipelines.ingestion.group_commit import Committed, GroupCommitter
from coelho_pipelines.ingestion.pipeline import Log, decode_batch
from coelho_pipelines.ingestion.writer import CommitStats, DeltaSink, PendingBatch
from coelho_pipelines.naming import PARTITION_COLUMN
from coelho_pipelines.resources import KafkaResource, LakehouseResource
from coelho_pipelines.use_cases.spec import UseCaseSpec


@dataclass(frozen=True)
class ContinuousSettings:
    commit_interval_seconds: float = 2.0
    max_events: int = 50_000  # messages per commit at most
    report_interval_seconds: float = 30.0
    checks_interval_seconds: float = 300.0  # 0: never
    compact_every_commits: int = 300  # 0: never
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass
class Progress:
    """What was committed since the previous report, and where the table stands."""

    events: int = 0
    dead_letters: int = 0
    messages: int = 0
    commits: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    committed_offsets: dict[int, int | None] = field(default_factory=dict)
    end_offsets: dict[int, int] = field(default_factory=dict)
    raw_version: int | None = None
    compactions: int = 0
    seconds: float = 0.0
    final: bool = False

    @property
    def lag(self) -> int:
        return sum(
            max(0, end - (self.committed_offsets.get(p) or 0))
            for p, end in self.end_offsets.items()
        )


@dataclass
class CheckResults:
    results: list[Any]  # dagster AssetCheckResult


@dataclass
class _Totals:
    events: int = 0
    dead_letters: int = 0
    commits: int = 0


class ContinuousIngestion:
    """One use case's continuous ingestion (see the module docstring)."""

    def __init__(
        self,
        spec: UseCaseSpec,
        kafka: KafkaResource,
        lakehouse: LakehouseResource,
        settings: ContinuousSettings | None = None,
        log: Log | None = None,
        check: Callable[[], list[Any]] | None = None,
    ) -> None:
        self.spec = spec
        self.kafka = kafka
        self.lakehouse = lakehouse
        self.settings = settings or ContinuousSettings()
        self.log = log or (lambda _message: None)
        self.check = check
        self.totals = _Totals()
        self.sink: DeltaSink | None = None
        self._dates: set[str] = set()
        self._since_compaction = 0
        self._compactions = 0
        self._partitions: list[int] = []
        self._raw_version: int | None = None

    # ---------------------------------------------------------------- commit thread

    def _commit(self, batch: PendingBatch) -> CommitStats:
        """Commit, then compact every N commits (same thread: never concurrent with a commit)."""
        assert self.sink is not None
        stats = self.sink.commit(batch)
        if batch.rows.num_rows:
            dates = pc.unique(batch.rows.column(PARTITION_COLUMN)).to_pylist()
            self._dates.update(str(d) for d in dates)
        self._since_compaction += 1
        every = self.settings.compact_every_commits
        if every and self._since_compaction >= every:
            self._compact()
        return stats

    def _compact(self) -> None:
        assert self.sink is not None
        started = time.perf_counter()
        try:
            figures = self.sink.compact(sorted(self._dates))
        except Exception as error:  # noqa: BLE001 - next time; daily maintenance also compacts
            self.log(f"compaction failed, retried later: {error}")
            return
        self._since_compaction = 0
        self._dates.clear()
        self._compactions += 1
        self.log(f"compacted: {figures} in {time.perf_counter() - started:.2f}s")

    # ------------------------------------------------------------------ main loop

    def starts(self, sink: DeltaSink) -> dict[int, int]:
        """Per partition, the next offset to read: the table's version, else the low mark."""
        watermarks = self.kafka.watermarks(self.spec.topic)
        committed = sink.committed(sorted(watermarks))
        return {p: max(committed[p] or 0, low) for p, (low, _) in watermarks.items()}

    def run(self, should_stop: Callable[[], bool]) -> Iterator[Progress | CheckResults]:
        s, spec = self.settings, self.spec
        self.sink = sink = DeltaSink(spec, self.lakehouse.uri, self.lakehouse.storage_options)
        starts = self.starts(sink)
        self._partitions = sorted(starts)
        self._raw_version = sink.raw.version()
        self.log(f"{spec.key}: continuous ingestion of {spec.topic} from offsets {starts}")
        decoder = BatchDecoder(spec, max_bytes=s.max_bytes)
        consumer = self.kafka.consumer(
            f"coelho-ingest-{spec.key}",
            **{"enable.partition.eof": False, "fetch.max.bytes": 64 << 20},
        )
        committer = GroupCommitter(self._commit, max_messages=s.max_events, min_messages=1)
        batches = prefetch(
            read_continuous(consumer, spec.topic, starts, s.max_events, s.commit_interval_seconds)
        )
        progress = Progress()
        reported_at = checked_at = time.monotonic()
        checks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-checks")
        pending_checks: Future | None = None
        try:
            for batch in batches:
                if len(batch) or batch.next_offsets:
                    done = committer.submit(decode_batch(spec, decoder, batch), len(batch))
                else:
                    done = committer.drain()
                self._record(progress, done)
                now = time.monotonic()
                if now - reported_at >= s.report_interval_seconds:
                    yield self._report(progress, now - reported_at)
                    progress, reported_at = Progress(), now
                if pending_checks is not None and pending_checks.done():
                    yield from self._check_results(pending_checks)
                    pending_checks = None
                due = s.checks_interval_seconds and now - checked_at >= s.checks_interval_seconds
                if self.check is not None and due and pending_checks is None:
                    pending_checks, checked_at = checks.submit(self.check), now
                if should_stop():
                    break
            batches.close()
            self._record(progress, committer.close())
        except BaseException:
            committer.abandon()
            raise
        finally:
            batches.close()
            consumer.close()
            checks.shutdown(wait=True, cancel_futures=True)
        final = self._report(progress, time.monotonic() - reported_at)
        final.final = True
        yield final

    def _record(self, progress: Progress, done: list[Committed]) -> None:
        for committed in done:
            stats = committed.stats
            progress.commits += 1
            progress.events += stats.rows
            progress.dead_letters += stats.dead_letters
            progress.messages += committed.messages
            self._raw_version = stats.raw_version
            self.totals.commits += 1
            self.totals.events += stats.rows
            self.totals.dead_letters += stats.dead_letters
            if committed.batch.dead_letters.num_rows:
                for reason in committed.batch.dead_letters.column("reason").to_pylist():
                    kind = reason.split(":", 1)[0]
                    progress.reasons[kind] = progress.reasons.get(kind, 0) + 1
            telemetry.INGESTED_EVENTS.labels(self.spec.key).inc(stats.rows)
            telemetry.DEAD_LETTERS.labels(self.spec.key).inc(stats.dead_letters)
            telemetry.INGESTION_COMMIT_LATENCY.labels(self.spec.key).observe(stats.seconds)

    def _report(self, progress: Progress, seconds: float) -> Progress:
        assert self.sink is not None
        progress.seconds = seconds
        progress.compactions = self._compactions
        try:
            watermarks = self.kafka.watermarks(self.spec.topic, timeout=5.0)
            progress.end_offsets = {p: high for p, (_, high) in watermarks.items()}
        except Exception as error:  # noqa: BLE001 - the report goes out without the lag
            self.log(f"cannot read end offsets: {error}")
        partitions = sorted(set(progress.end_offsets) | set(self._partitions))
        progress.committed_offsets = self.sink.committed(partitions)
        progress.raw_version = self._raw_version
        for partition, end in progress.end_offsets.items():
            lag = max(0, end - (progress.committed_offsets.get(partition) or 0))
            telemetry.INGESTION_LAG.labels(self.spec.key, str(partition)).set(lag)
        self.log(
            f"{self.spec.key}: {progress.events} events, {progress.dead_letters} dead letters in "
            f"{progress.commits} commits over {seconds:.0f}s; lag {progress.lag}"
        )
        return progress

    def _check_results(self, future: Future) -> Iterator[CheckResults]:
        try:
            yield CheckResults(future.result())
        except Exception as error:  # noqa: BLE001 - a failed check pass never ends ingestion
            self.log(f"raw-events checks failed to run: {error}")
