"""Every online candidate of a use case, with its own metrics and decision threshold.

`CandidateState` is one River pipeline of the spec's `river_candidates` as the learner runs it:
its model, its `MetricSet` (the spec's metrics, fed with its own predictions) and, for a
classifier, its `ThresholdTuner`. `Challengers` holds them with the `Leaderboard`; it is part
of the learner's `Progress`, so a snapshot carries every candidate. The served candidate's
model also lives in the model bundle (`LiveModel.model`): it is left out of the pickled
challengers and put back from the bundle on load (`attach`), so both stay one object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coelho_pipelines.incremental.leaderboard import Leaderboard
from coelho_pipelines.incremental.metrics import MetricSet, finite
from coelho_pipelines.incremental.threshold import ThresholdTuner
from coelho_pipelines.use_cases.spec import UseCaseSpec


@dataclass
class CandidateState:
    """One candidate as the learner runs it."""

    name: str
    model: Any
    metrics: MetricSet
    threshold: ThresholdTuner | None = None  # classifiers only

    def primary(self, metric: str) -> float | None:
        found = self.metrics.metrics.get(metric)
        return None if found is None else finite(found.get())


def decision_beta(spec: UseCaseSpec) -> float:
    """The beta of the F-beta the threshold maximises: the primary metric's (F1: 1)."""
    metric = spec.river_metrics().get(spec.river_primary.name)
    return float(getattr(metric, "beta", 1.0))


def new_threshold(spec: UseCaseSpec, every: int | None = None) -> ThresholdTuner | None:
    if spec.task != "classification":
        return None
    beta = decision_beta(spec)
    return ThresholdTuner(beta=beta) if every is None else ThresholdTuner(beta=beta, every=every)


class Challengers:
    """The candidates of one use case and their leaderboard."""

    def __init__(self, candidates: dict[str, CandidateState], leaderboard: Leaderboard) -> None:
        self.candidates = candidates
        self.leaderboard = leaderboard

    @classmethod
    def fresh(
        cls,
        spec: UseCaseSpec,
        served_model: Any,
        served_metrics: MetricSet,
        threshold_every: int | None = None,
    ) -> Challengers:
        """New candidates; the original (`river_model_name`) is served with the given model."""
        served = spec.river_model_name
        candidates = {}
        for candidate in spec.river_candidates:
            is_served = candidate.name == served
            candidates[candidate.name] = CandidateState(
                candidate.name,
                served_model if is_served else candidate.factory(),
                served_metrics if is_served else MetricSet(spec),
                new_threshold(spec, threshold_every),
            )
        board = Leaderboard(candidates, spec.leaderboard_rule, spec.river_promotion, served)
        return cls(candidates, board)

    @property
    def served(self) -> CandidateState:
        return self.candidates[self.leaderboard.served]

    def values(self) -> dict[str, float | None]:
        """Each candidate's leaderboard metric value now."""
        metric = self.leaderboard.rule.name
        return {name: c.primary(metric) for name, c in self.candidates.items()}

    def attach(self, served_model: Any) -> None:
        """Put the bundle's model back as the served candidate's (after unpickling)."""
        self.served.model = served_model

    def __getstate__(self) -> dict[str, Any]:
        served = self.leaderboard.served
        candidates = {
            name: c if name != served else CandidateState(c.name, None, c.metrics, c.threshold)
            for name, c in self.candidates.items()
        }
        return {"candidates": candidates, "leaderboard": self.leaderboard}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
