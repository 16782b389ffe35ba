"""Concept drift on the learner's error stream (ADWIN).

The error of each prequential prediction: 0/1 misclassification (classification), absolute
error (regression), distance to the assigned cluster center (clustering). ADWIN flags a
change in the mean; only a change for the worse, after a warm-up, counts as drift (an error
that falls while the model learns is not drift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DRIFT_DELTA = 0.002
DEFAULT_WARMUP_EVENTS = 1000


@dataclass(frozen=True)
class Drift:
    """One detected drift (before/after are the error means ADWIN saw around the cut)."""

    events_learned: int
    error_before: float
    error_after: float
    detected_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "events_learned": self.events_learned,
            "error_before": self.error_before,
            "error_after": self.error_after,
            "detected_at": self.detected_at,
            "detector": "ADWIN",
            "delta": DRIFT_DELTA,
        }


class DriftMonitor:
    """ADWIN(delta=0.002) over the error stream; `update` returns a Drift or None."""

    def __init__(self, warmup_events: int = DEFAULT_WARMUP_EVENTS) -> None:
        from river import drift

        self.detector = drift.ADWIN(delta=DRIFT_DELTA)
        self.warmup_events = warmup_events
        self.n_drifts = 0

    def update(self, error: float, events_learned: int, event_time: str) -> Drift | None:
        detector = self.detector
        before = detector.estimation
        detector.update(error)
        if not detector.drift_detected or events_learned < self.warmup_events:
            return None
        after = detector.estimation
        if after <= before:
            return None  # the error went down: the model improved
        self.n_drifts += 1
        return Drift(events_learned, float(before), float(after), event_time)
