"""Concept drift on the served model's error stream: worse than its own recent past.

The error of each prequential prediction: 0/1 misclassification (classification), absolute
error (regression), distance to the assigned cluster center (clustering). The monitor does
not know the model; it only sees that stream, optionally split into groups (classification:
the true class, so the misses on a rare class are not drowned by the common class's errors).

A drift alarm means the model got worse than its own recent past, not that it is still
learning:
- nothing is flagged during a warm-up (`warmup_events`: a young model's error moves a lot
  while it learns, and not always downwards);
- per group, a reference of the model's own past errors (the last `reference_size` of the
  group, mean and spread) is compared with what follows through a one-sided CUSUM of
  standardized, clipped errors (clipping keeps one huge error, e.g. a traffic incident, from
  looking like a change). The CUSUM only climbs when errors exceed the reference by more
  than the tolerated rise k (`tolerance`, relative to the reference mean), so a falling,
  steady or mildly rising error never accumulates; an alarm needs the cumulative excess to
  pass h = `evidence` / (2 k) reference standard deviations (about e^evidence events
  between false alarms when nothing changes, a delay of about h / (shift - k) errors when
  the error rises by `shift`) and to stay above it for `persistence` events (a decaying
  burst of huge errors, e.g. after one outlier event, is not a drift). Use cases set
  `tolerance` and `persistence` in their spec (`drift_tolerance`, `drift_persistence`);
- errors join the reference only while the CUSUM is at rest, so a rise does not become its
  own reference; after an alarm the group starts a new reference (the model re-learns).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

DEFAULT_WARMUP_EVENTS = 10_000
REFERENCE_SIZE = 2_000  # per group: the model's recent past
MIN_REFERENCE = 100  # a group is monitored once its reference holds this many errors
TOLERANCE = 0.5  # a rise up to +50% of the reference mean error is tolerated
EVIDENCE = 12.0  # CUSUM alarm level h = EVIDENCE / (2 k): a false alarm every ~e^12 events
PERSISTENCE = 100  # events the CUSUM must stay above h (a decaying burst is not a drift)
CLIP = 4.0  # standardized errors are clipped to +-CLIP
REFRESH = 32  # admitted errors between recomputations of the reference's mean and spread
DETECTOR = "CUSUM over the model's own recent errors"


@dataclass(frozen=True)
class Drift:
    """One detected drift (before: the reference mean error; after: the mean error since the
    rise began)."""

    events_learned: int
    error_before: float
    error_after: float
    detected_at: str
    group: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "events_learned": self.events_learned,
            "error_before": self.error_before,
            "error_after": self.error_after,
            "detected_at": self.detected_at,
            "group": self.group,
            "detector": DETECTOR,
        }


class _GroupMonitor:
    """The reference window and the CUSUM of one group's errors."""

    __slots__ = ("reference", "total", "squares", "admitted", "stats", "cusum", "pending",
                 "pending_sum", "above_since")  # fmt: skip

    def __init__(self) -> None:
        self.reference: deque[float] = deque()
        self.total = 0.0
        self.squares = 0.0
        self.admitted = 0
        self.stats: tuple[float, float, float, float] | None = None  # mean, scale, k, h
        self.cusum = 0.0
        self.pending: list[float] = []  # errors since the CUSUM left zero
        self.pending_sum = 0.0
        self.above_since: int | None = None  # events learned when the CUSUM passed h

    def _admit(self, error: float, size: int) -> None:
        reference = self.reference
        reference.append(error)
        self.total += error
        self.squares += error * error
        if len(reference) > size:
            old = reference.popleft()
            self.total -= old
            self.squares -= old * old
        self.admitted += 1
        if self.admitted % REFRESH == 0:
            self.stats = None
            if self.admitted % size == 0:  # exact sums now and then: no rounding drift
                self.total = math.fsum(reference)
                self.squares = math.fsum(x * x for x in reference)

    def _reference_stats(self, settings: DriftMonitor) -> tuple[float, float, float, float]:
        """Mean, scale, allowance k and threshold h of the reference (refreshed every
        `REFRESH` admitted errors: it moves slowly)."""
        if self.stats is None:
            n = len(self.reference)
            mean = self.total / n
            spread = math.sqrt(max(self.squares / n - mean * mean, 0.0))
            scale = max(spread, 1e-3 * abs(mean), 1e-9)
            allowance = max(settings.tolerance * abs(mean) / scale, 1e-3)
            self.stats = (mean, scale, allowance, settings.evidence / (2.0 * allowance))
        return self.stats

    def update(
        self, error: float, events_learned: int, settings: DriftMonitor
    ) -> tuple[float, float] | None:
        """Feed one error; (reference mean, mean since the rise) on an alarm, else None."""
        if len(self.reference) < settings.min_reference:
            self._admit(error, settings.reference_size)
            return None
        mean, scale, allowance, limit = self._reference_stats(settings)
        z = (error - mean) / scale
        z = CLIP if z > CLIP else -CLIP if z < -CLIP else z
        cusum = self.cusum + z - allowance
        if cusum <= 0.0:
            self.cusum = 0.0
            self.above_since = None
            if self.pending:
                for held in self.pending:
                    self._admit(held, settings.reference_size)
                self.pending.clear()
                self.pending_sum = 0.0
            self._admit(error, settings.reference_size)
            return None
        self.cusum = cusum
        if cusum < limit:
            self.above_since = None
        elif self.above_since is None:
            self.above_since = events_learned
        self.pending.append(error)
        self.pending_sum += error
        if self.above_since is None or events_learned - self.above_since < settings.persistence:
            return None
        after = self.pending_sum / len(self.pending)
        self.__init__()  # a new reference: the model re-learns from here
        return mean, after


class DriftMonitor:
    """`update` returns a Drift when the served model's error rises above its own past."""

    def __init__(
        self,
        warmup_events: int = DEFAULT_WARMUP_EVENTS,
        reference_size: int = REFERENCE_SIZE,
        min_reference: int = MIN_REFERENCE,
        tolerance: float = TOLERANCE,
        evidence: float = EVIDENCE,
        persistence: int = PERSISTENCE,
    ) -> None:
        self.warmup_events = warmup_events
        self.reference_size = reference_size
        self.min_reference = min(min_reference, reference_size)
        self.tolerance = tolerance
        self.evidence = evidence
        self.persistence = persistence
        self.groups: dict[Hashable, _GroupMonitor] = {}
        self.n_drifts = 0

    @classmethod
    def for_spec(cls, spec: Any, warmup_events: int = DEFAULT_WARMUP_EVENTS) -> DriftMonitor:
        """The monitor with the use case's tolerance and persistence (`UseCaseSpec`)."""
        return cls(
            warmup_events, tolerance=spec.drift_tolerance, persistence=spec.drift_persistence
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots of the former ADWIN monitor resume with a fresh default monitor."""
        if "groups" not in state:
            self.__init__()
            self.n_drifts = state.get("n_drifts", 0)
            return
        self.__dict__.update(state)

    def new_served_model(self, events_learned: int) -> None:
        """A challenger was promoted: the error stream is another model's from here, so the
        references start again and nothing is flagged until they hold a full past."""
        self.groups = {}
        self.warmup_events = max(self.warmup_events, events_learned + self.reference_size)

    def update(
        self, error: float, events_learned: int, event_time: str, group: Hashable = None
    ) -> Drift | None:
        monitor = self.groups.get(group)
        if monitor is None:
            monitor = self.groups[group] = _GroupMonitor()
        if events_learned < self.warmup_events:
            monitor._admit(error, self.reference_size)  # the reference tracks the learning
            return None
        found = monitor.update(error, events_learned, self)
        if found is None:
            return None
        self.n_drifts += 1
        before, after = found
        return Drift(events_learned, float(before), float(after), event_time, group)
