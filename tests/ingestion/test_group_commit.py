"""Group commit: order, merging, size bounds and errors (pure logic; the commit function here
is a recording fake, the real Delta commits are covered by test_exactly_once)."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from coelho_pipelines.ingestion.group_commit import GroupCommitter, merge
from coelho_pipelines.ingestion.writer import CommitStats, PendingBatch


def _batch(partition: int, start: int, n: int) -> PendingBatch:
    rows = pa.table(
        {"kafka_partition": [partition] * n, "kafka_offset": list(range(start, start + n))}
    )
    dead = pa.table({"offset": pa.array([], pa.int64())})
    return PendingBatch(rows, dead, {partition: start + n})


class RecordingFakeCommit:
    """Stands in for `DeltaSink.commit`: records each merged batch, optionally blocks or fails."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[PendingBatch] = []
        self.fail_on = fail_on
        self.release = threading.Event()
        self.release.set()

    def __call__(self, batch: PendingBatch) -> CommitStats:
        self.release.wait(10)
        if self.fail_on is not None and len(self.batches) == self.fail_on:
            raise RuntimeError("commit refused")
        self.batches.append(batch)
        return CommitStats(rows=batch.rows.num_rows)


def test_merge_keeps_order_and_newest_offsets() -> None:
    merged = merge([_batch(0, 0, 3), _batch(1, 10, 2), _batch(0, 3, 4)])
    assert merged.rows.column("kafka_offset").to_pylist() == [0, 1, 2, 10, 11, 3, 4, 5, 6]
    assert merged.next_offsets == {0: 7, 1: 12}


def test_every_row_committed_once_in_order_within_bounds() -> None:
    commit = RecordingFakeCommit()
    commit.release.clear()  # let batches pile up so commits merge them
    committer = GroupCommitter(commit, max_messages=25, min_messages=10)
    done = []
    for i in range(12):
        done += committer.submit(_batch(0, i * 5, 5), 5)
        if i == 5:
            commit.release.set()
    done += committer.close()
    offsets = [o for b in commit.batches for o in b.rows.column("kafka_offset").to_pylist()]
    assert offsets == list(range(60))
    assert all(b.rows.num_rows <= 25 for b in commit.batches)
    assert any(b.rows.num_rows > 5 for b in commit.batches), "waiting batches were merged"
    assert sum(c.messages for c in done) == 60
    assert [c.batch.next_offsets[0] for c in done][-1] == 60


def test_close_commits_a_remainder_below_the_minimum() -> None:
    commit = RecordingFakeCommit()
    committer = GroupCommitter(commit, max_messages=100)
    assert committer.submit(_batch(0, 0, 7), 7) == []
    done = committer.close()
    assert [c.messages for c in done] == [7]


def test_a_failed_commit_stops_everything_after_it() -> None:
    commit = RecordingFakeCommit(fail_on=1)
    committer = GroupCommitter(commit, max_messages=5, min_messages=5)
    with pytest.raises(RuntimeError, match="commit refused"):
        for i in range(20):
            committer.submit(_batch(0, i * 5, 5), 5)
        committer.close()
    assert len(commit.batches) == 1
    assert commit.batches[0].next_offsets == {0: 5}
