"""Diagnostics tab: refits of a small version of the model on a training sample.

Cross-validation scores, validation and learning curves (scikit-learn Displays), recursive
feature elimination and the dropping curve. Every refit uses at most
`DIAGNOSTIC_ITERATIONS` CatBoost trees (or KMeans with `n_init=3`) so the tab stays fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import fbeta_score, make_scorer, mean_absolute_error, silhouette_score
from sklearn.model_selection import (
    KFold,
    LearningCurveDisplay,
    StratifiedKFold,
    ValidationCurveDisplay,
    cross_val_score,
    train_test_split,
)

from coelho_pipelines.models.encoding import FeatureLayout
from coelho_pipelines.models.estimators import make_estimator
from coelho_pipelines.plots.common import PlotData, axes

DIAGNOSTIC_ITERATIONS = 60
CV_FOLDS = 3
DROPPING_REPEATS = 2


def _silhouette(estimator: Any, x: pd.DataFrame, y: Any = None) -> float:
    encoded = estimator[:-1].transform(x)
    labels = estimator[-1].predict(encoded)
    return float(silhouette_score(encoded, labels)) if len(set(labels)) > 1 else -1.0


def _scoring(data: PlotData) -> tuple[Any, str, bool]:
    """(scorer, score name, whether the plotted score is negated back to an error)."""
    if data.task == "classification":
        return make_scorer(fbeta_score, beta=2, zero_division=0), "fbeta", False
    if data.task == "regression":
        return "neg_mean_absolute_error", "MAE", True
    return _silhouette, "silhouette", False


def _estimator(data: PlotData, layout: FeatureLayout | None = None, **overrides: Any) -> Any:
    layout = layout or data.layout
    if data.task == "clustering":
        params = {"n_clusters": int(data.model.estimator[-1].n_clusters), "n_init": 3,
                  "random_state": data.seed}  # fmt: skip
    else:
        iterations = min(int(data.params.get("iterations", 1000)), DIAGNOSTIC_ITERATIONS)
        params = {
            "iterations": iterations,
            "learning_rate": max(float(data.params.get("learning_rate", 0.05)), 0.1),
            "depth": int(data.params.get("depth", 6)),
            "random_seed": data.seed,
            "thread_count": int(data.params.get("thread_count", -1)),
        }
    return make_estimator(data.task, layout, params | overrides)


def _xy(data: PlotData) -> tuple[pd.DataFrame, np.ndarray | None]:
    frame = data.diagnostics_frame
    x = frame[list(data.layout.order)].reset_index(drop=True)
    y = None if data.label is None else frame[data.label].to_numpy()
    return x, y


def _cv(data: PlotData) -> Any:
    if data.task == "classification":
        return StratifiedKFold(CV_FOLDS, shuffle=True, random_state=data.seed)
    return KFold(CV_FOLDS, shuffle=True, random_state=data.seed)


def cross_validation_scores(data: PlotData) -> Figure:
    x, y = _xy(data)
    scoring, name, negate = _scoring(data)
    scores = cross_val_score(_estimator(data), x, y, cv=_cv(data), scoring=scoring,
                             error_score=np.nan)  # fmt: skip
    scores = -scores if negate else scores
    fig, ax = axes(6, 4.5)
    ax.bar([f"fold {i + 1}" for i in range(len(scores))], scores, color="tab:blue")
    ax.axhline(np.nanmean(scores), color="black", linestyle="--",
               label=f"mean {np.nanmean(scores):.4g}")  # fmt: skip
    ax.set_ylabel(name)
    ax.legend()
    ax.set_title(f"Cross-validation scores ({CV_FOLDS} folds, {len(x)} train rows)")
    return fig


def validation_curve(data: PlotData) -> Figure:
    x, y = _xy(data)
    scoring, name, negate = _scoring(data)
    if data.task == "clustering":
        param, values = "cluster__n_clusters", [2, 3, 4, 6, 8]
    else:
        param, values = "depth", [2, 4, 6]
    fig, ax = axes(6.5, 4.5)
    ValidationCurveDisplay.from_estimator(
        _estimator(data), x, y, param_name=param, param_range=values, cv=_cv(data),
        scoring=scoring, score_name=name, negate_score=negate, ax=ax, error_score=np.nan,
    )  # fmt: skip
    ax.set_title(f"Validation curve ({param})")
    return fig


def learning_curve(data: PlotData) -> Figure:
    x, y = _xy(data)
    scoring, name, negate = _scoring(data)
    fig, ax = axes(6.5, 4.5)
    LearningCurveDisplay.from_estimator(
        _estimator(data), x, y, train_sizes=np.linspace(0.4, 1.0, 3), cv=_cv(data),
        scoring=scoring, score_name=name, negate_score=negate, ax=ax, shuffle=True,
        random_state=data.seed, error_score=np.nan,
    )  # fmt: skip
    ax.set_title("Learning curve")
    return fig


def _holdout(data: PlotData) -> tuple[pd.DataFrame, pd.DataFrame, Any, Any]:
    x, y = _xy(data)
    stratify = y if data.task == "classification" else None
    if y is None:
        x_fit, x_score = train_test_split(x, test_size=0.3, random_state=data.seed)
        return x_fit, x_score, None, None
    x_fit, x_score, y_fit, y_score = train_test_split(
        x, y, test_size=0.3, random_state=data.seed, stratify=stratify
    )
    return x_fit, x_score, y_fit, y_score


def _holdout_score(data: PlotData, layout: FeatureLayout, split: tuple) -> tuple[float, Any]:
    """(score where higher is better, fitted estimator) for a feature subset."""
    x_fit, x_score, y_fit, y_score = split
    estimator = _estimator(data, layout)
    columns = list(layout.order)
    if data.task == "clustering":
        estimator.fit(x_fit[columns])
        return _silhouette(estimator, x_score[columns]), estimator
    estimator.fit(x_fit[columns], y_fit)
    predicted = estimator.predict(x_score[columns])
    if data.task == "classification":
        return float(fbeta_score(y_score, predicted, beta=2, zero_division=0)), estimator
    return -float(mean_absolute_error(y_score, predicted)), estimator


def _importances(data: PlotData, estimator: Any, layout: FeatureLayout, x: pd.DataFrame) -> dict:
    if data.task != "clustering":
        return dict(zip(layout.order, estimator.feature_importances_, strict=True))
    encoded = estimator[:-1].transform(x[list(layout.order)])
    labels = estimator[-1].predict(encoded)
    overall = encoded.mean(axis=0)
    between = np.zeros(encoded.shape[1])
    for cluster in np.unique(labels):
        members = encoded[labels == cluster]
        between += len(members) * (members.mean(axis=0) - overall) ** 2
    names = [str(n) for n in estimator[-2].get_feature_names_out()]
    totals = dict.fromkeys(layout.order, 0.0)
    for name, value in zip(names, between, strict=True):
        kind, _, rest = name.partition("__")
        matches = [f for f in layout.order if rest == f or rest.startswith(f + "_")]
        totals[max(matches, key=len) if matches else rest] += value
    return totals


def recursive_feature_elimination(data: PlotData) -> Figure:
    """Holdout score while the least important feature is dropped, one at a time."""
    split = _holdout(data)
    remaining = list(data.layout.order)
    steps: list[tuple[int, float, str]] = []
    while remaining:
        layout = data.layout.subset(remaining)
        score, estimator = _holdout_score(data, layout, split)
        importances = _importances(data, estimator, layout, split[0])
        weakest = min(remaining, key=lambda f: importances.get(f, 0.0))
        steps.append((len(remaining), score, weakest))
        remaining.remove(weakest)
        if data.task == "clustering" and len(remaining) < 2:
            break
    counts, scores, dropped = zip(*steps, strict=True)
    _, name, negate = _scoring(data)
    shown = [-s for s in scores] if negate else list(scores)
    fig, ax = axes(7, 4.5)
    ax.plot(counts, shown, "o-")
    best = int(np.argmax(scores))
    ax.axvline(counts[best], color="black", linestyle="--",
               label=f"best: {counts[best]} features")  # fmt: skip
    ax.set_xlabel("number of features")
    ax.set_ylabel(f"{name} (holdout)")
    ax.invert_xaxis()
    ax.legend()
    ax.set_title("Recursive feature elimination (dropped: " + ", ".join(dropped[:4]) + ", ...)",
                 fontsize=9)  # fmt: skip
    return fig


def dropping_curve(data: PlotData) -> Figure:
    """Holdout score against the share of features kept (random subsets)."""
    split = _holdout(data)
    rng = np.random.default_rng(data.seed)
    features = list(data.layout.order)
    minimum = 2 if data.task == "clustering" else 1
    fractions = np.linspace(0.2, 1.0, 5)
    means, stds = [], []
    for fraction in fractions:
        size = max(minimum, round(fraction * len(features)))
        scores = []
        for _ in range(DROPPING_REPEATS if size < len(features) else 1):
            chosen = list(rng.choice(features, size=size, replace=False))
            scores.append(_holdout_score(data, data.layout.subset(chosen), split)[0])
        means.append(np.mean(scores))
        stds.append(np.std(scores))
    _, name, negate = _scoring(data)
    means_arr = -np.asarray(means) if negate else np.asarray(means)
    stds_arr = np.asarray(stds)
    fig, ax = axes(6.5, 4.5)
    ax.plot(fractions, means_arr, "o-")
    ax.fill_between(fractions, means_arr - stds_arr, means_arr + stds_arr, alpha=0.2)
    ax.set_xlabel("share of features kept")
    ax.set_ylabel(f"{name} (holdout)")
    ax.set_title("Dropping curve")
    return fig


PLOTS = {
    "cross_validation_scores": cross_validation_scores,
    "validation_curve": validation_curve,
    "learning_curve": learning_curve,
    "recursive_feature_elimination": recursive_feature_elimination,
    "dropping_curve": dropping_curve,
}
