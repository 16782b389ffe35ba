"""Read-only copies of served River models with the per-call work of a learning model removed.

River's adaptive random forests weigh each tree's vote by its metric, recomputing
`metric.get()` for every tree on every prediction (for ROCAUC: the confusion matrices of its
10 thresholds and a trapezoid integral, about half of a tfd prediction). `get()` only reads the
metric's state, and a served model never learns, so that state (and the value) is fixed:
`freeze` reads each weight once, compiles each tree once (`compiled_trees`: flat nodes,
precomputed leaves) and predicts with River's own arithmetic, step for step
(`ARFClassifier.predict_proba_one`, `ARFRegressor.predict_one` in river 0.26), so predictions
are bit-identical. The learner's model is only read: serving wraps its own unpickled copy.
Models that are not (wrapped) forests are served as they are.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from coelho_pipelines.accel import forest_vote
from coelho_pipelines.accel.fence import Fence
from coelho_serving.accel import compiled_trees


class FrozenARFClassifier:
    """`ARFClassifier.predict_proba_one` with the trees' metric values read once and the trees
    compiled (`compiled_trees.classifier_tree`), summed by the learner's own vote
    (`coelho_pipelines.accel.forest_vote.combine`)."""

    def __init__(self, forest: Any) -> None:
        self.forest = forest
        self.weights = forest_vote.metric_values(forest)
        weighted = not forest.disable_weighted_vote
        trees = zip(forest, self.weights, strict=True) if len(forest) else ()
        self.trees = [
            compiled_trees.classifier_tree(tree, forest_vote.tree_weight(w, weighted))
            for tree, w in trees
        ]

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict[Any, float]:
        if not self.trees:
            return self.forest.predict_proba_one(x, **kwargs)
        find_leaf = compiled_trees.find_leaf
        votes = []
        for root in self.trees:
            leaf = find_leaf(root, x)
            y_proba = leaf.value
            votes.append(leaf.call(x) if y_proba is None else y_proba)
        return forest_vote.combine(votes)

    def predict_one(self, x: dict, **kwargs: Any) -> Any:
        """River's `Classifier.predict_one`: the most probable class, None without any."""
        y_pred = self.predict_proba_one(x, **kwargs)
        if y_pred:
            return max(y_pred, key=y_pred.get)
        return None


class FrozenARFRegressor:
    """`ARFRegressor.predict_one` with the trees' metric values read once (and the weights
    normalised once, as River does per call) and the trees compiled
    (`compiled_trees.regressor_tree`); the median of plain floats is taken without numpy."""

    def __init__(self, forest: Any) -> None:
        self.forest = forest
        self.weights = np.array(forest_vote.metric_values(forest), dtype=float)
        self.trees = [compiled_trees.regressor_tree(tree) for tree in forest]
        self.weighted = not forest.disable_weighted_vote and (
            forest.aggregation_method != forest._MEDIAN
        )
        self.vote_weights = self._vote_weights() if self.weighted else None

    def _vote_weights(self) -> np.ndarray | None:
        """River's per-call weight arithmetic, done once (None: the sum of weights is 0)."""
        weights = np.zeros(self.forest.n_models)
        sum_weights = 0.0
        for i in range(len(self.trees)):
            weights[i] = self.weights[i]
            sum_weights += weights[i]
        if sum_weights == 0:
            return None
        weights = sum_weights - weights
        weights /= weights.sum()
        return weights

    def predict_one(self, x: dict, **kwargs: Any) -> float:
        forest = self.forest
        if not self.trees or len(self.trees) != forest.n_models:
            return forest.predict_one(x, **kwargs)
        find_leaf = compiled_trees.find_leaf
        values = []
        for root in self.trees:
            leaf = find_leaf(root, x)
            value = leaf.value
            values.append(leaf.call(x) if value is None else value)
        if forest.aggregation_method != forest._MEAN:
            median = compiled_trees.median(values)
            if median is not None:
                return median
        y_pred = np.zeros(forest.n_models)
        for i, value in enumerate(values):
            y_pred[i] = value
        if self.vote_weights is not None:
            y_pred *= self.vote_weights
        if forest.aggregation_method == forest._MEAN:
            return float(y_pred.mean())
        return float(np.median(y_pred))


class FrozenSampler:
    """A River imblearn sampler, read-only: prediction delegates to the frozen classifier
    exactly as `ClassificationSampler.predict_proba_one` / `predict_one` do."""

    def __init__(self, sampler: Any, classifier: FrozenARFClassifier) -> None:
        self.sampler = sampler
        self.classifier = classifier

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict[Any, float]:
        return self.classifier.predict_proba_one(x, **kwargs)

    def predict_one(self, x: dict, **kwargs: Any) -> Any:
        return self.classifier.predict_one(x, **kwargs)


def served_model(model: Any) -> Any | None:
    """The stand-in serving a River model (compiled trees, weights read once), or None when
    there is none for its type. A median (eta) or unweighted ARFRegressor reads no weight but
    its trees are compiled all the same."""
    from river.forest import ARFClassifier, ARFRegressor
    from river.imblearn.random import ClassificationSampler

    if type(model) is ARFClassifier:
        return FrozenARFClassifier(model)
    if type(model) is ARFRegressor:
        return FrozenARFRegressor(model)
    if isinstance(model, ClassificationSampler) and type(model.classifier) is ARFClassifier:
        return FrozenSampler(model, FrozenARFClassifier(model.classifier))
    return None


def freeze(live_model: Any) -> Any:
    """A serving copy of a `LiveModel` whose River model is frozen and compiled (the same
    object when there is nothing to serve differently, or the fence is closed). The given
    object is not changed."""
    model = getattr(live_model, "model", None)
    if model is None or not RIVER.open():
        return live_model
    frozen = served_model(model)
    if frozen is None:
        return live_model
    served = copy.copy(live_model)
    served.model = frozen
    return served


# --- the fence -------------------------------------------------------------------------------

RIVER_VERSIONS = forest_vote.RIVER_VERSIONS


def _probe_stream(n: int) -> list[tuple[dict, Any]]:
    """Agrawal events with a nominal feature added (nominal splitters, unseen values)."""
    stream = []
    for x, y in forest_vote.probe_stream(n, seed=3):
        stream.append(({**x, "colour": "rgb"[x["car"] % 3]}, y))
    return stream


def _probe_inputs(stream: list[tuple[dict, Any]]) -> list[dict]:
    """The stream's features, plus one missing a feature and one with an unseen value."""
    xs = [x for x, _ in stream]
    missing = {k: v for k, v in xs[0].items() if k not in ("salary", "colour")}
    return [*xs, missing, {**xs[1], "colour": "unseen-value"}]


def _numeric(x: dict) -> dict:
    return {k: v for k, v in x.items() if k != "colour"}


def _probe_models() -> list[tuple[Any, Any, Any]]:
    """Small River models of each served kind: (model, its label of (x, y), its input of x);
    the regressors' linear leaf models take numbers only."""
    from river import forest, imblearn, metrics

    def arf_classifier(seed: int) -> Any:
        return forest.ARFClassifier(n_models=3, metric=metrics.ROCAUC(), grace_period=20,
                                    seed=seed)  # fmt: skip

    sampler = imblearn.RandomUnderSampler(arf_classifier(4), desired_dist={0: 0.6, 1: 0.4},
                                          seed=4)  # fmt: skip
    regressors = [
        forest.ARFRegressor(n_models=3, grace_period=20, aggregation_method=method, seed=2)
        for method in ("mean", "median")
    ]
    classify = lambda x, y: y  # noqa: E731
    regress = lambda x, y: x["salary"] / 1000.0 + x["age"]  # noqa: E731
    same = lambda x: x  # noqa: E731
    return [(arf_classifier(1), classify, same), (sampler, classify, same),
            *((r, regress, _numeric) for r in regressors)]  # fmt: skip


def agrees(serve: Any, n: int = 200) -> bool:
    """`serve(model)` and the River model itself give identical predictions on small fitted
    models of each served kind (classifier, sampler, mean and median regressor)."""
    stream = _probe_stream(n)
    for model, label, given in _probe_models():
        for x, y in stream:
            model.learn_one(given(x), label(x, y))
        served = serve(model)
        if served is None:
            return False
        xs = [given(x) for x in _probe_inputs(stream)]
        probas = hasattr(served, "predict_proba_one")
        if probas and any(served.predict_proba_one(x) != model.predict_proba_one(x) for x in xs):
            return False
        if any(served.predict_one(x) != model.predict_one(x) for x in xs):
            return False
    return True


def _probe() -> bool:
    return agrees(served_model)


RIVER = Fence("frozen River forests (serving)", "river", RIVER_VERSIONS, _probe)
