"""River's ARFClassifier vote, exactly, without recomputing unchanged tree weights.

`ARFClassifier.predict_proba_one` weights each tree's probabilities by the value of that
tree's performance metric. For a ROCAUC metric that value is a trapezoid integral over ten
confusion matrices, recomputed for every tree on every prediction: more than half of a bare tfd
predict-then-learn loop. A tree's metric only changes when the forest learns, which behind the
tfd under-sampler is a few percent of events. `ForestVote` keeps each tree's metric value until
that metric object is replaced (drift) or records a new sample, and otherwise sums the vote in
River's own order, so probabilities are equal bit for bit (tests compare with River).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

Proba = dict[Any, float]


def _update_count(metric: Any) -> Callable[[], int] | None:
    """A counter that moves on every `update` of `metric`, or None when there is none known.

    ARF only ever updates its tree metrics (never reverts), one sample per learned event.
    """
    matrices = getattr(metric, "cms", None)
    if isinstance(matrices, list) and matrices and hasattr(matrices[0], "n_samples"):
        return lambda: metric.cms[0].n_samples
    matrix = getattr(metric, "cm", None)
    if matrix is not None and hasattr(matrix, "n_samples"):
        return lambda: metric.cm.n_samples
    return None


class _TreeWeight:
    """One tree's metric value, valid while the metric is the same object with the same count."""

    __slots__ = ("metric", "count", "samples", "value")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.count = _update_count(metric)
        self.samples = -1
        self.value = 0.0

    def get(self) -> float:
        if self.count is None:
            return self.metric.get()
        samples = self.count()
        if samples != self.samples:
            self.value = self.metric.get()
            self.samples = samples
        return self.value


def _forest_of(model: Any) -> Any | None:
    """The ARFClassifier that answers `model.predict_proba_one` unchanged, if there is one."""
    from river import forest, imblearn

    sampler = imblearn.random.ClassificationSampler
    if isinstance(model, sampler) and type(model).predict_proba_one is sampler.predict_proba_one:
        model = model.classifier
    return model if type(model) is forest.ARFClassifier else None


class ForestVote:
    """`predict_proba_one` of an ARFClassifier (alone or behind an imblearn random sampler)."""

    def __init__(self, forest: Any) -> None:
        self.forest = forest
        self._weights: list[_TreeWeight] = []

    @classmethod
    def for_model(cls, model: Any) -> Callable[[dict], Proba]:
        """The cheapest exact `predict_proba_one` for `model` (River's own for other models)."""
        forest = _forest_of(model)
        return cls(forest).predict_proba_one if forest is not None else model.predict_proba_one

    def predict_proba_one(self, x: dict) -> Proba:
        forest = self.forest
        if len(forest) == 0:
            return forest.predict_proba_one(x)  # River initialises the ensemble
        votes: collections.Counter = collections.Counter()
        weighted = not forest.disable_weighted_vote
        for weight, model in zip(self._tree_weights(), forest, strict=True):
            proba = model.predict_proba_one(x)
            metric_value = weight.get()
            if weighted and metric_value > 0.0:
                proba = {label: p * metric_value for label, p in proba.items()}
            votes.update(proba)
        total = sum(votes.values())
        if total > 0:
            return {label: p / total for label, p in votes.items()}
        return votes  # type: ignore[return-value]  # River returns the empty Counter too

    def _tree_weights(self) -> list[_TreeWeight]:
        metrics = self.forest._metrics  # one per tree, replaced by a fresh clone on drift
        weights = self._weights
        if len(weights) != len(metrics):
            weights[:] = [_TreeWeight(m) for m in metrics]
            return weights
        for i, metric in enumerate(metrics):
            if weights[i].metric is not metric:
                weights[i] = _TreeWeight(metric)
        return weights
