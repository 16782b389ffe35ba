"""Group commit: decoded batches wait for a background writer that commits them in order,
merging whatever has accumulated into one Delta commit.

Decoding small batches while Kafka is still being read keeps the reader busy and leaves only a
small batch to decode after the last message; merging keeps commits few and files large. The
merged batch carries the last next-offset of each partition, so a commit still writes rows and
offsets together (exactly once, see `writer.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from coelho_pipelines.ingestion.writer import CommitStats, PendingBatch


@dataclass
class Committed:
    """One finished commit: its stats, what it wrote and how many Kafka messages it covered."""

    stats: CommitStats
    batch: PendingBatch
    messages: int


def merge(batches: list[PendingBatch]) -> PendingBatch:
    """Consecutive batches as one: rows and dead letters in order, the newest offsets."""
    if len(batches) == 1:
        return batches[0]
    next_offsets: dict[int, int] = {}
    for batch in batches:
        next_offsets.update(batch.next_offsets)
    return PendingBatch(
        pa.concat_tables([b.rows for b in batches]),
        pa.concat_tables([b.dead_letters for b in batches]),
        next_offsets,
    )


class GroupCommitter:
    """Commits submitted batches on one background thread, in submission order.

    A commit takes every waiting batch up to `max_messages` messages, once at least
    `min_messages` wait (or the committer is closing). `submit` blocks while more than
    `2 * max_messages` wait, so memory stays bounded. A failed commit stops the writer; its
    error is raised by the next `submit` or `close`, and nothing after it is committed.
    """

    def __init__(
        self,
        commit: Callable[[PendingBatch], CommitStats],
        max_messages: int,
        min_messages: int | None = None,
    ) -> None:
        self._commit = commit
        self.max_messages = max(1, max_messages)
        self.min_messages = min(self.max_messages, max(1, min_messages or self.max_messages // 2))
        self._waiting: list[tuple[PendingBatch, int]] = []
        self._waiting_messages = 0
        self._done: list[Committed] = []
        self._error: BaseException | None = None
        self._closing = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._write, name="delta-group-commit", daemon=True)
        self._thread.start()

    def submit(self, batch: PendingBatch, messages: int) -> list[Committed]:
        """Queue a batch; returns the commits finished since the last call."""
        with self._condition:
            while self._waiting_messages >= 2 * self.max_messages and self._error is None:
                self._condition.wait()
            self._raise_error()
            self._waiting.append((batch, messages))
            self._waiting_messages += messages
            self._condition.notify_all()
            return self._take_done()

    def drain(self) -> list[Committed]:
        """The commits finished since the last call, without submitting anything."""
        with self._condition:
            self._raise_error()
            return self._take_done()

    def close(self) -> list[Committed]:
        """Commit everything still waiting, stop the writer; returns the last commits."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join()
        with self._condition:
            self._raise_error()
            return self._take_done()

    def abandon(self) -> None:
        """Stop without committing what waits (after an error elsewhere)."""
        with self._condition:
            self._waiting.clear()
            self._waiting_messages = 0
            self._closing = True
            self._condition.notify_all()
        self._thread.join()

    def _take_done(self) -> list[Committed]:
        done, self._done = self._done, []
        return done

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _write(self) -> None:
        while True:
            group = self._next_group()
            if group is None:
                return
            batch, messages = merge([b for b, _ in group]), sum(m for _, m in group)
            try:
                stats = self._commit(batch)
            except BaseException as error:  # noqa: BLE001 - handed to the submitting thread
                with self._condition:
                    self._error = error
                    self._condition.notify_all()
                return
            with self._condition:
                self._done.append(Committed(stats, batch, messages))
                self._condition.notify_all()

    def _next_group(self) -> list[tuple[PendingBatch, int]] | None:
        with self._condition:
            while not self._ready():
                self._condition.wait()
            if not self._waiting:
                return None
            group, total = [], 0
            while self._waiting and (not group or total + self._waiting[0][1] <= self.max_messages):
                batch, messages = self._waiting.pop(0)
                group.append((batch, messages))
                total += messages
            self._waiting_messages -= total
            self._condition.notify_all()
            return group

    def _ready(self) -> bool:
        return self._closing or self._waiting_messages >= self.min_messages
