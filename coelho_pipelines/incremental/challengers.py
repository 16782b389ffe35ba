"""Every online candidate of a use case, with its own metrics and decision threshold.

`CandidateState` is one River pipeline of the spec's `river_candidates` as the learner runs it:
its model, its `MetricSet` (the spec's metrics, fed with its own predictions) and, for a
classifier, its `ThresholdTuner`. `Challengers` holds them with the `Leaderboard` and one feature
pipeline per encoding the candidates use (the spec's default, or native features); it is part
of the learner's `Progress`, so a snapshot carries every candidate. The served candidate's
model and feature pipeline also live in the model bundle (`LiveModel`): they are left out of
the pickled challengers and put back from the bundle on load (`attach`), so both stay one object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coelho_pipelines.incremental.features import FeaturePipeline
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
    numeric_only: bool = False  # the encoding it learns from (key of Challengers.features)

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

    def __init__(
        self,
        candidates: dict[str, CandidateState],
        leaderboard: Leaderboard,
        features: dict[bool, FeaturePipeline],
    ) -> None:
        self.candidates = candidates
        self.leaderboard = leaderboard
        self.features = features  # numeric_only -> the pipeline of that encoding

    @classmethod
    def fresh(
        cls,
        spec: UseCaseSpec,
        served_model: Any,
        served_metrics: MetricSet,
        served_features: FeaturePipeline,
        threshold_every: int | None = None,
    ) -> Challengers:
        """New candidates; the original (`river_model_name`) is served with the given model
        and features."""
        served = spec.river_model_name
        candidates = {}
        for candidate in spec.river_candidates:
            is_served = candidate.name == served
            candidates[candidate.name] = CandidateState(
                candidate.name,
                served_model if is_served else candidate.factory(),
                served_metrics if is_served else MetricSet(spec),
                new_threshold(spec, threshold_every),
                served_features.numeric_only if is_served else _numeric_only(spec, candidate),
            )
        board = Leaderboard(candidates, spec.leaderboard_rule, spec.river_promotion, served)
        challengers = cls(candidates, board, {served_features.numeric_only: served_features})
        challengers._add_features(spec)
        return challengers

    def _add_features(self, spec: UseCaseSpec) -> None:
        for candidate in self.candidates.values():
            mode = candidate.numeric_only
            if mode not in self.features:
                self.features[mode] = FeaturePipeline(spec, numeric_only=mode)

    @property
    def served(self) -> CandidateState:
        return self.candidates[self.leaderboard.served]

    def values(self) -> dict[str, float | None]:
        """Each candidate's leaderboard metric value now."""
        metric = self.leaderboard.rule.name
        return {name: c.primary(metric) for name, c in self.candidates.items()}

    def reconcile(self, spec: UseCaseSpec, threshold_every: int | None = None) -> None:
        """Follow a changed candidate set after a resume: new candidates start fresh, dropped
        ones leave (the served one stays until a challenger is promoted)."""
        wanted = {c.name: c for c in spec.river_candidates}
        served = self.leaderboard.served
        kept = {n: c for n, c in self.candidates.items() if n in wanted or n == served}
        for name, candidate in wanted.items():
            if name not in kept:
                kept[name] = CandidateState(
                    name,
                    candidate.factory(),
                    MetricSet(spec),
                    new_threshold(spec, threshold_every),
                    _numeric_only(spec, candidate),
                )
        self.candidates = kept
        self._add_features(spec)
        board = self.leaderboard
        board.names = list(kept)
        board.values = {n: board.values.get(n) for n in board.names}
        if board.challenger not in kept:
            board.challenger = None

    def attach(self, bundle: Any) -> None:
        """Put the bundle's model and features back as the served candidate's (after
        unpickling)."""
        served = self.served
        served.model = bundle.model
        self.features[served.numeric_only] = bundle.features

    def __getstate__(self) -> dict[str, Any]:
        served = self.served
        candidates = dict(self.candidates)
        candidates[served.name] = CandidateState(
            served.name, None, served.metrics, served.threshold, served.numeric_only
        )
        features = {
            mode: None if mode == served.numeric_only else pipeline
            for mode, pipeline in self.features.items()
        }
        return {"candidates": candidates, "leaderboard": self.leaderboard, "features": features}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _numeric_only(spec: UseCaseSpec, candidate: Any) -> bool:
    """The encoding a candidate learns from: native, or the use case's default."""
    return False if candidate.native_features else spec.task != "classification"
