"""Exactly-once appends to the raw and dead-letter tables.

Where ingestion stands is recorded in the tables themselves, as Delta application transactions:
one app id per topic partition (`coelho-ingest:<topic>:<partition>`), its version the next
offset to read. Rows and the versions they advance go in ONE commit, so a crash leaves either
both or neither.

The two tables are separate commits. For each batch the dead letters are committed first, then
the raw rows; a batch is never committed to the raw table before its dead letters. So:
- every offset below the raw table's version has its dead letter (if any) written: reading
  resumes at the raw table's version;
- the dead-letter table may be ahead after a crash between the two commits: dead letters at
  offsets below its own version are already there and are filtered out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from coelho_pipelines.lakehouse.tables import (
    DEAD_LETTER_SCHEMA,
    app_id,
    ensure_table,
    raw_schema,
    raw_writer_properties,
)
from coelho_pipelines.naming import (
    PARTITION_COLUMN,
    dead_letter_table_name,
    raw_table_name,
    table_uri,
)
from coelho_pipelines.use_cases.spec import UseCaseSpec

CHECKPOINT_INTERVAL = 25  # commits between explicit Delta checkpoints


class ConcurrentIngestionError(RuntimeError):
    """Another writer advanced the same partitions: this run stops without writing twice."""


@dataclass
class CommitStats:
    rows: int = 0
    dead_letters: int = 0
    raw_version: int | None = None
    seconds: float = 0.0


@dataclass
class PendingBatch:
    """What one commit writes: typed rows, dead-letter rows, and each partition's next offset."""

    rows: pa.Table
    dead_letters: pa.Table
    next_offsets: dict[int, int] = field(default_factory=dict)


class DeltaSink:
    """The raw and dead-letter tables of one use case, and how far each partition is written."""

    def __init__(
        self,
        spec: UseCaseSpec,
        lakehouse_uri: str,
        storage_options: Mapping[str, str] | None = None,
        checkpoint_interval: int = CHECKPOINT_INTERVAL,
    ) -> None:
        self.spec = spec
        self.topic = spec.topic
        self.storage_options = dict(storage_options or {})
        self.raw_uri = table_uri(lakehouse_uri, raw_table_name(spec))
        self.dead_uri = table_uri(lakehouse_uri, dead_letter_table_name(spec))
        self.raw = ensure_table(
            self.raw_uri,
            raw_schema(spec),
            [PARTITION_COLUMN],
            self.storage_options,
            description=f"{spec.title}: raw events from Kafka topic {spec.topic}",
        )
        self.dead = ensure_table(
            self.dead_uri,
            DEAD_LETTER_SCHEMA,
            (),
            self.storage_options,
            description=f"{spec.title}: events from {spec.topic} that failed validation",
        )
        self.raw_properties = raw_writer_properties(spec)
        self.checkpoint_interval = checkpoint_interval
        self._commits = 0
        self._raw_versions: dict[int, int | None] = {}
        self._dead_versions: dict[int, int | None] = {}

    def committed(self, partitions: list[int]) -> dict[int, int | None]:
        """The next offset to read per partition: the raw table's versions."""
        return {p: self._raw_version(p) for p in partitions}

    def dead_letter_committed(self, partitions: list[int]) -> dict[int, int | None]:
        return {p: self._dead_version(p) for p in partitions}

    def _raw_version(self, partition: int) -> int | None:
        if partition not in self._raw_versions:
            self._raw_versions[partition] = self.raw.transaction_version(
                app_id(self.topic, partition)
            )
        return self._raw_versions[partition]

    def _dead_version(self, partition: int) -> int | None:
        if partition not in self._dead_versions:
            self._dead_versions[partition] = self.dead.transaction_version(
                app_id(self.topic, partition)
            )
        return self._dead_versions[partition]

    def commit(self, batch: PendingBatch) -> CommitStats:
        """Write the batch exactly once: dead letters first, then rows with their offsets."""
        from deltalake import write_deltalake
        from deltalake.exceptions import CommitFailedError

        started = time.perf_counter()
        stats = CommitStats()
        partitions = sorted(batch.next_offsets)
        dead = _after(batch.dead_letters, self.dead_letter_committed(partitions))
        rows = _after(batch.rows, self.committed(partitions))
        try:
            if dead.num_rows:
                write_deltalake(
                    self.dead,
                    dead,
                    mode="append",
                    commit_properties=self._versions(batch.next_offsets),
                )
                for p in partitions:
                    self._dead_versions[p] = batch.next_offsets[p]
            write_deltalake(
                self.raw,
                rows,
                mode="append",
                partition_by=[PARTITION_COLUMN],
                commit_properties=self._versions(batch.next_offsets),
                writer_properties=self.raw_properties,
            )
        except CommitFailedError as error:
            self._raw_versions.clear()
            self._dead_versions.clear()
            raise ConcurrentIngestionError(
                f"another ingestion of {self.topic} committed first ({error}); "
                "stopping so no event is written twice"
            ) from error
        for p in partitions:
            self._raw_versions[p] = batch.next_offsets[p]
        self._commits += 1
        if self._commits % self.checkpoint_interval == 0:
            self.checkpoint()
        stats.rows = rows.num_rows
        stats.dead_letters = dead.num_rows
        stats.raw_version = self.raw.version()
        stats.seconds = time.perf_counter() - started
        return stats

    def _versions(self, next_offsets: Mapping[int, int]):
        from deltalake import CommitProperties, Transaction

        now = int(datetime.now(UTC).timestamp() * 1000)
        return CommitProperties(
            app_transactions=[
                Transaction(app_id(self.topic, p), int(offset), now)
                for p, offset in sorted(next_offsets.items())
            ],
            custom_metadata={"coelho.ingestion": self.spec.key},
        )

    def compact(self, dates: list[str] | None = None, target_mb: int = 128) -> dict[str, int]:
        """Merge small files of the raw table (only `dates`' partitions when given) and of the
        dead-letter table, on this sink's own table objects so its next commit builds on them.
        The raw table keeps its Parquet writer properties; the offsets are untouched."""
        filters = [(PARTITION_COLUMN, "in", sorted(dates))] if dates else None
        raw = self.raw.optimize.compact(
            partition_filters=filters,
            target_size=target_mb << 20,
            writer_properties=self.raw_properties,
        )
        dead = self.dead.optimize.compact(target_size=target_mb << 20)
        return {
            "files_removed": int(raw.get("numFilesRemoved", 0) or 0)
            + int(dead.get("numFilesRemoved", 0) or 0),
            "files_added": int(raw.get("numFilesAdded", 0) or 0)
            + int(dead.get("numFilesAdded", 0) or 0),
        }

    def checkpoint(self) -> None:
        """Write a Delta checkpoint of both tables so readers replay a short log."""
        self.raw.create_checkpoint()
        self.dead.create_checkpoint()


def _after(table: pa.Table, committed: Mapping[int, int | None]) -> pa.Table:
    """Rows whose offset is at or after their partition's committed version."""
    if table.num_rows == 0 or all(v is None for v in committed.values()):
        return table
    partitions = table.column("kafka_partition")
    offsets = table.column("kafka_offset")
    keep = None
    for partition, version in committed.items():
        in_partition = pc.equal(partitions, pa.scalar(partition, pa.int32()))
        if version is None:
            ok = in_partition
        else:
            ok = pc.and_(in_partition, pc.greater_equal(offsets, pa.scalar(version, pa.int64())))
        keep = ok if keep is None else pc.or_(keep, ok)
    return table.filter(keep)
