"""River's ARFClassifier vote, the one implementation the learner and the server share.

`ARFClassifier.predict_proba_one` (river 0.26) weights each tree's probabilities by the value
of that tree's performance metric (`forest._metrics`, private), sums them in tree order as
`collections.Counter.update` does and normalises. This module is the only place that reads
those metrics; `weigh` and `combine` are River's two steps, used by
- the learner (`ForestVote`): River's trees, each metric value kept until that metric object
  is replaced (drift) or records a new sample. For a ROCAUC metric the value is a trapezoid
  integral over ten confusion matrices, more than half of a bare tfd predict-then-learn loop,
  and behind the tfd under-sampler a tree's metric changes on a few percent of events;
- the server (`coelho_serving.accel.frozen`): compiled trees, weights read once.
Both give River's probabilities bit for bit (tests compare with River). `for_model` serves
River's own `predict_proba_one` when the fence (`RIVER`) is closed.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable
from typing import Any

from coelho_pipelines.accel.fence import Fence

Proba = dict[Any, float]

RIVER_VERSIONS = frozenset({"0.26.1"})


# --- River's two steps -------------------------------------------------------------------------


def tree_metrics(forest: Any) -> list[Any]:
    """The forest's per-tree metrics (one per tree, replaced by a fresh clone on drift)."""
    return forest._metrics


def metric_values(forest: Any) -> list[float]:
    """Each tree's metric value now (what River weighs that tree's vote by)."""
    return [metric.get() for metric in tree_metrics(forest)]


def tree_weight(metric_value: float, weighted: bool) -> float | None:
    """The factor River multiplies a tree's probabilities by (None: left as they are)."""
    return metric_value if weighted and metric_value > 0.0 else None


def weigh(proba: Proba, weight: float | None) -> Proba:
    """One tree's probabilities as River adds them to the vote."""
    if weight is None:
        return proba
    return {label: p * weight for label, p in proba.items()}


def combine(probas: Iterable[Proba]) -> Proba:
    """River's sum of the weighted tree probabilities (`Counter.update`, in order), normalised;
    the empty (or all-zero) Counter when there is no vote, as River returns it."""
    votes: Proba = {}
    for proba in probas:
        if votes:
            get = votes.get
            for label, p in proba.items():
                votes[label] = p + get(label, 0)
        else:  # Counter.update of an empty Counter is dict.update
            votes.update(proba)
    total = sum(votes.values())
    if total > 0:
        return {label: p / total for label, p in votes.items()}
    return collections.Counter(votes)  # type: ignore[return-value]


# --- the learner's vote --------------------------------------------------------------------


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
    """`predict_proba_one` of a learning ARFClassifier (alone or behind an imblearn random
    sampler), each tree's metric value kept until its metric changes."""

    def __init__(self, forest: Any) -> None:
        self.forest = forest
        self._weights: list[_TreeWeight] = []

    @classmethod
    def for_model(cls, model: Any) -> Callable[[dict], Proba]:
        """The cheapest exact `predict_proba_one` for `model`: River's own for other models,
        or when the fence is closed."""
        forest = _forest_of(model)
        if forest is None or not RIVER.open():
            return model.predict_proba_one
        return cls(forest).predict_proba_one

    def predict_proba_one(self, x: dict) -> Proba:
        forest = self.forest
        if len(forest) == 0:
            return forest.predict_proba_one(x)  # River initialises the ensemble
        weighted = not forest.disable_weighted_vote
        return combine(
            weigh(tree.predict_proba_one(x), tree_weight(weight.get(), weighted))
            for weight, tree in zip(self._tree_weights(), forest, strict=True)
        )

    def _tree_weights(self) -> list[_TreeWeight]:
        metrics = tree_metrics(self.forest)
        weights = self._weights
        if len(weights) != len(metrics):
            weights[:] = [_TreeWeight(m) for m in metrics]
            return weights
        for i, metric in enumerate(metrics):
            if weights[i].metric is not metric:
                weights[i] = _TreeWeight(metric)
        return weights


# --- the fence -------------------------------------------------------------------------------


def probe_stream(n: int, seed: int = 7) -> list[tuple[dict, Any]]:
    """A small labelled stream with numeric and nominal features (River's Agrawal)."""
    from river.datasets import synth

    return list(itertools.islice(synth.Agrawal(classification_function=2, seed=seed), n))


def agrees_while_learning(vote: Callable[[Any], Callable[[dict], Proba]], n: int = 300) -> bool:
    """`vote(forest)` and River's `predict_proba_one` on a small ARFClassifier (ROCAUC, as the
    learner's), event by event while it learns: identical answers, labels in the same order."""
    from river import forest, metrics

    model = forest.ARFClassifier(n_models=3, metric=metrics.ROCAUC(), seed=1)
    predict = vote(model)
    for x, y in probe_stream(n):
        expected = model.predict_proba_one(x)
        got = predict(x)
        if got != expected or list(got) != list(expected):
            return False
        model.learn_one(x, y)
    return True


def _probe() -> bool:
    return agrees_while_learning(lambda forest: ForestVote(forest).predict_proba_one)


RIVER = Fence("ForestVote (learner's ARF vote)", "river", RIVER_VERSIONS, _probe)
