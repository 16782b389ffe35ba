"""When the learner captures its state, as pure logic: counts, clocks and budgets in, a
decision out (no I/O, no threads, no clock of its own).

- A snapshot is due every `snapshot_every` events or `snapshot_interval_seconds`, whichever
  comes later (a fast learner catching up does not fork a snapshot every second; a slow
  stream still gets one every 1,000 events), and not while MLflow is still writing the last.
- A publish (the live model to Redis) is due every `publish_every` events, or at the stream's
  head (a fetch found less than a batch) as soon as anything new was learned, but never
  sooner than `publish_interval_seconds` after the last capture, nor sooner than keeps
  publish captures under `publish_budget` of the time (a capture costs the learning thread
  the fork or the inline pickle, and the machine the child's pickling), nor while Redis has
  not taken the last model. A snapshot also pickles every candidate and the progress: its
  own schedule budgets it, so its cost does not count here.
- One capture at a time; a snapshot wins over a publish (it is published too); a failed
  snapshot is retried at the next chance.

The learning loop asks `decide()`, reports `started()` when it took a capture and
`settled()` when the capture's result came back (from the capture thread, via the loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from coelho_pipelines.incremental.settings import LearnerSettings

Kind = Literal["snapshot", "publish"]
SNAPSHOT: Kind = "snapshot"
PUBLISH: Kind = "publish"
_LONG_AGO = -1e9  # a monotonic time before any capture


def snapshot_due_by_schedule(
    events_since: int, seconds_since: float, settings: LearnerSettings
) -> bool:
    """Every `snapshot_every` events or `snapshot_interval_seconds`, whichever comes later."""
    return (
        events_since >= settings.snapshot_every
        and seconds_since >= settings.snapshot_interval_seconds
    )


@dataclass
class CapturePolicy:
    """The capture schedules of one run (see the module docstring); times are monotonic."""

    settings: LearnerSettings
    publish_at: float = _LONG_AGO  # start of the last capture (either kind)
    publish_events: int = 0  # events learned at the last capture
    snapshot_at: float = _LONG_AGO
    snapshot_events: int = 0
    last_cost: float = 0.0  # last publish capture: learning-thread blocking + child's pickling
    in_flight: Kind | None = None

    @classmethod
    def resuming_at(cls, settings: LearnerSettings, events_learned: int) -> CapturePolicy:
        """A run that starts with `events_learned` events already in its snapshot."""
        return cls(settings, publish_events=events_learned, snapshot_events=events_learned)

    def could_be_due(self, events: int, now: float) -> bool:
        """Cheap pre-check for every event: False when no capture can be due yet."""
        s = self.settings
        return self.in_flight is None and (
            events - self.snapshot_events >= s.snapshot_every
            or now - self.publish_at >= s.publish_interval_seconds
        )

    def publish_gap(self) -> float:
        """Shortest time between publish captures: the interval, or what keeps the budget."""
        s = self.settings
        return max(s.publish_interval_seconds, self.last_cost / s.publish_budget)

    def decide(
        self,
        events: int,
        now: float,
        *,
        at_head: bool,
        snapshot_pending: bool,
        model_pending: bool,
    ) -> Kind | None:
        """The capture to take now, if any. `snapshot_pending`: MLflow has not written the
        last snapshot yet; `model_pending`: Redis has not taken the last model yet."""
        if not self.could_be_due(events, now):
            return None
        since_snapshot = events - self.snapshot_events
        if not snapshot_pending and snapshot_due_by_schedule(
            since_snapshot, now - self.snapshot_at, self.settings
        ):
            return SNAPSHOT
        since_publish = events - self.publish_events
        if (
            since_publish > 0
            and (since_publish >= self.settings.publish_every or at_head)
            and now - self.publish_at >= self.publish_gap()
            and not model_pending
        ):
            return PUBLISH
        return None

    def started(self, kind: Kind, at: float, events: int, blocking_seconds: float) -> None:
        """A capture of `kind` started at `at` with `events` learned; it blocked learning for
        `blocking_seconds` (the fork, or the whole inline pickle)."""
        self.in_flight = kind
        self.publish_at, self.publish_events = at, events
        if kind == SNAPSHOT:
            self.snapshot_at, self.snapshot_events = at, events
        else:
            self.last_cost = blocking_seconds

    def settled(self, kind: Kind, ok: bool, total_cost: float | None = None) -> None:
        """The capture finished. `total_cost`: blocking plus a forked child's pickling, when
        known (the child competes with learning for CPU: a publish budgets it too)."""
        self.in_flight = None
        if ok and kind == PUBLISH and total_cost is not None:
            self.last_cost = total_cost
        if not ok and kind == SNAPSHOT:  # retry at the next chance
            self.snapshot_events = -self.settings.snapshot_every
            self.snapshot_at = _LONG_AGO
