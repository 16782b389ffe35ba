"""Read-only copies of served River models with the per-call work of a learning model removed.

River's adaptive random forests weigh each tree's vote by its metric, recomputing
`metric.get()` for every tree on every prediction (for ROCAUC: 50 confusion matrices and a
trapezoid integral, about half of a tfd prediction). `get()` only reads the metric's state, and
a served model never learns, so that state (and the value) is fixed: `freeze` reads each weight
once and predicts with River's own arithmetic, step for step (`ARFClassifier.predict_proba_one`,
`ARFRegressor.predict_one` in river 0.26). The learner's model is untouched: serving wraps its
own unpickled copy. Models that are not (wrapped) forests are served as they are.
"""

from __future__ import annotations

import collections
import copy
from typing import Any

import numpy as np


class FrozenARFClassifier:
    """`ARFClassifier.predict_proba_one` with the trees' metric values read once."""

    def __init__(self, forest: Any) -> None:
        self.forest = forest
        self.weights = [metric.get() for metric in forest._metrics]

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict[Any, float]:
        forest = self.forest
        if len(forest) == 0:
            return forest.predict_proba_one(x, **kwargs)
        y_pred: collections.Counter = collections.Counter()
        weighted = not forest.disable_weighted_vote
        for model, metric_value in zip(forest, self.weights, strict=True):
            y_proba_temp = model.predict_proba_one(x)
            if weighted and metric_value > 0.0:
                y_proba_temp = {k: val * metric_value for k, val in y_proba_temp.items()}
            y_pred.update(y_proba_temp)
        total = sum(y_pred.values())
        if total > 0:
            return {label: proba / total for label, proba in y_pred.items()}
        return y_pred  # type: ignore[return-value]

    def predict_one(self, x: dict, **kwargs: Any) -> Any:
        """River's `Classifier.predict_one`: the most probable class, None without any."""
        y_pred = self.predict_proba_one(x, **kwargs)
        if y_pred:
            return max(y_pred, key=y_pred.get)
        return None


class FrozenARFRegressor:
    """`ARFRegressor.predict_one` with the trees' metric values read once."""

    def __init__(self, forest: Any) -> None:
        self.forest = forest
        self.weights = np.array([metric.get() for metric in forest._metrics], dtype=float)

    def predict_one(self, x: dict, **kwargs: Any) -> float:
        forest = self.forest
        weighted = not forest.disable_weighted_vote and (
            forest.aggregation_method != forest._MEDIAN
        )
        if len(forest) == 0 or not weighted:
            return forest.predict_one(x, **kwargs)  # no metric read on these paths
        y_pred = np.zeros(forest.n_models)
        weights = np.zeros(forest.n_models)
        sum_weights = 0.0
        for i, model in enumerate(forest):
            y_pred[i] = model.predict_one(x)
            weights[i] = self.weights[i]
            sum_weights += weights[i]
        if sum_weights != 0:
            weights = sum_weights - weights
            weights /= weights.sum()
            y_pred *= weights
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


def frozen_model(model: Any) -> Any | None:
    """The frozen stand-in for a River model, or None when there is none for its type."""
    from river.forest import ARFClassifier, ARFRegressor
    from river.imblearn.random import ClassificationSampler

    if type(model) is ARFClassifier:
        return FrozenARFClassifier(model)
    if type(model) is ARFRegressor:
        # The median (eta) and unweighted votes read no metric: nothing to freeze.
        weighted = not model.disable_weighted_vote and model.aggregation_method != model._MEDIAN
        return FrozenARFRegressor(model) if weighted else None
    if isinstance(model, ClassificationSampler) and type(model.classifier) is ARFClassifier:
        return FrozenSampler(model, FrozenARFClassifier(model.classifier))
    return None


def freeze(live_model: Any) -> Any:
    """A serving copy of a `LiveModel` whose River model is frozen (the same object when
    there is nothing to freeze). The given object is not changed."""
    model = getattr(live_model, "model", None)
    frozen = None if model is None else frozen_model(model)
    if frozen is None:
        return live_model
    served = copy.copy(live_model)
    served.model = frozen
    return served
