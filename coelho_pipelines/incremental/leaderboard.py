"""The online leaderboard: candidates ranked by one metric, and when the served one changes.

Pure logic (no River, no I/O). The learner calls `observe(events, values)` every
`policy.check_every` events with each candidate's current value of the leaderboard metric. A
challenger replaces the served candidate only after it led it by the policy's margin at every
check for `sustain_events` events in a row (and not before `min_events`); each switch is a
`Promotion`, kept in `promotions` (the newest `MAX_PROMOTIONS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from coelho_pipelines.use_cases.spec import MetricRule, PromotionPolicy

MAX_PROMOTIONS = 100


@dataclass(frozen=True)
class Promotion:
    """One switch of the served candidate."""

    events_learned: int
    previous: str
    served: str
    metric: str
    values: dict[str, float | None]  # every candidate's metric value at the switch
    led_since: int  # events learned when the sustained lead began
    at: str  # wall-clock time (ISO-8601 UTC)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Leaderboard:
    """Candidates ranked by `rule`; promotes a challenger after a sustained lead."""

    def __init__(
        self, names: Iterable[str], rule: MetricRule, policy: PromotionPolicy, served: str
    ) -> None:
        self.names = list(names)
        if served not in self.names:
            raise ValueError(f"served candidate {served!r} is not one of {self.names}")
        self.rule = rule
        self.policy = policy
        self.served = served
        self.values: dict[str, float | None] = dict.fromkeys(self.names)
        self.challenger: str | None = None  # the challenger currently leading by the margin
        self.led_since = 0
        self.checked_at = 0
        self.promotions: list[Promotion] = []

    def due(self, events_learned: int) -> bool:
        """Whether a check is due (every `policy.check_every` events)."""
        return events_learned - self.checked_at >= self.policy.check_every

    def ranking(self) -> list[str]:
        """Candidate names, best first (missing values last, ties in declaration order)."""
        return sorted(self.names, key=lambda n: self.rule.best_first_key(self.values[n]))

    def leads(self, value: float | None, incumbent: float | None) -> bool:
        """Whether `value` beats `incumbent` by the policy's margin."""
        if value is None:
            return False
        if incumbent is None:
            return True
        gap = max(self.policy.margin * abs(incumbent), self.policy.min_gap)
        if self.rule.direction == "max":
            return value > incumbent + gap
        return value < incumbent - gap

    def observe(self, events_learned: int, values: Mapping[str, float | None]) -> Promotion | None:
        """Record the candidates' values at `events_learned`; a `Promotion` if one is due."""
        self.checked_at = events_learned
        self.values = {n: _finite(values.get(n)) for n in self.names}
        served_value = self.values[self.served]
        best = next((n for n in self.ranking() if n != self.served), None)
        if best is None or not self.leads(self.values[best], served_value):
            self.challenger = None
            return None
        if best != self.challenger:
            self.challenger, self.led_since = best, events_learned
        sustained = events_learned - self.led_since >= self.policy.sustain_events
        if not sustained or events_learned < self.policy.min_events:
            return None
        promotion = Promotion(
            events_learned=events_learned,
            previous=self.served,
            served=best,
            metric=self.rule.name,
            values=dict(self.values),
            led_since=self.led_since,
            at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        self.served, self.challenger = best, None
        self.promotions.append(promotion)
        del self.promotions[:-MAX_PROMOTIONS]
        return promotion

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: metric, served candidate, ranked candidates, promotions (oldest first)."""
        ranking = self.ranking()
        return {
            "metric": {"name": self.rule.name, "direction": self.rule.direction},
            "served": self.served,
            "challenger": self.challenger,
            "challenger_since": self.led_since if self.challenger else None,
            "checked_at": self.checked_at,
            "candidates": [
                {
                    "name": n,
                    "rank": ranking.index(n) + 1,
                    "value": self.values[n],
                    "served": n == self.served,
                }
                for n in self.names
            ],
            "promotions": [p.to_dict() for p in self.promotions],
            "policy": asdict(self.policy),
        }


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None
