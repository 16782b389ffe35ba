"""Batch metrics on the test split, with scikit-learn names (USE_CASES.md).

`geometric_mean` (sqrt of sensitivity x specificity) and `smape` (percent, 0..200) are
computed here; everything else comes from `sklearn.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

SILHOUETTE_SAMPLE = 5000


def _finite(value: Any) -> float:
    value = float(value)
    return value if math.isfinite(value) else float("nan")


def geometric_mean(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """sqrt(recall of the positive class x recall of the negative class)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    positives, negatives = y_true == 1, y_true == 0
    sensitivity = (y_pred[positives] == 1).mean() if positives.any() else 0.0
    specificity = (y_pred[negatives] == 0).mean() if negatives.any() else 0.0
    return float(math.sqrt(sensitivity * specificity))


def smape(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Symmetric MAPE in percent: mean(2|y - p| / (|y| + |p|)) x 100 (0/0 counts as 0)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    denominator = np.abs(y_true) + np.abs(y_pred)
    ratio = np.divide(
        2 * np.abs(y_true - y_pred), denominator, out=np.zeros_like(y_true),
        where=denominator > 0,
    )  # fmt: skip
    return float(ratio.mean() * 100)


def classification_metrics(
    y_true: Any, probability: Any, threshold: float = 0.5, y_pred: Any = None
) -> dict:
    """Every tfd batch metric from true labels (0/1) and positive-class probabilities; the
    decisions are `probability >= threshold` unless given (`y_pred`, e.g. a served model's)."""
    from sklearn import metrics as m

    y_true = np.asarray(y_true, dtype=int)
    proba = np.clip(np.asarray(probability, dtype=float), 1e-15, 1 - 1e-15)
    decided = proba >= threshold if y_pred is None else y_pred
    y_pred = np.asarray(decided, dtype=int)
    both = len(np.unique(y_true)) > 1
    labels = [0, 1]
    values = {
        "recall": m.recall_score(y_true, y_pred, zero_division=0),
        "precision": m.precision_score(y_true, y_pred, zero_division=0),
        "f1": m.f1_score(y_true, y_pred, zero_division=0),
        "fbeta": m.fbeta_score(y_true, y_pred, beta=2, zero_division=0),
        "roc_auc": m.roc_auc_score(y_true, proba) if both else float("nan"),
        "average_precision": m.average_precision_score(y_true, proba) if both else float("nan"),
        "accuracy": m.accuracy_score(y_true, y_pred),
        "balanced_accuracy": m.balanced_accuracy_score(y_true, y_pred),
        "matthews_corrcoef": m.matthews_corrcoef(y_true, y_pred),
        "cohen_kappa": m.cohen_kappa_score(y_true, y_pred, labels=labels),
        "jaccard": m.jaccard_score(y_true, y_pred, zero_division=0),
        "geometric_mean": geometric_mean(y_true, y_pred),
        "log_loss": m.log_loss(y_true, proba, labels=labels),
        "brier_score": m.brier_score_loss(y_true, proba, labels=labels),
        "d2_log_loss": m.d2_log_loss_score(y_true, proba, labels=labels) if both else float("nan"),
        "d2_brier": m.d2_brier_score(y_true, proba, labels=labels) if both else float("nan"),
    }
    return {name: _finite(value) for name, value in values.items()}


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Every eta batch metric (d2_tweedie with sklearn's default power 0)."""
    from sklearn import metrics as m

    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    values = {
        "mae": m.mean_absolute_error(y_true, y_pred),
        "rmse": m.root_mean_squared_error(y_true, y_pred),
        "mse": m.mean_squared_error(y_true, y_pred),
        "mape": m.mean_absolute_percentage_error(y_true, y_pred),
        "smape": smape(y_true, y_pred),
        "r2": m.r2_score(y_true, y_pred),
        "explained_variance": m.explained_variance_score(y_true, y_pred),
        "median_absolute_error": m.median_absolute_error(y_true, y_pred),
        "max_error": m.max_error(y_true, y_pred),
        "d2_absolute_error": m.d2_absolute_error_score(y_true, y_pred),
        "d2_pinball": m.d2_pinball_score(y_true, y_pred),
        "d2_tweedie": m.d2_tweedie_score(y_true, y_pred),
    }
    return {name: _finite(value) for name, value in values.items()}


def clustering_metrics(
    encoded: Any, labels: Any, centers: Any, seed: int = 42, sample: int = SILHOUETTE_SAMPLE
) -> dict[str, float]:
    """Every ecci batch metric on the encoded test matrix (silhouette on a sample)."""
    from sklearn import metrics as m

    x, labels, centers = np.asarray(encoded, float), np.asarray(labels), np.asarray(centers)
    inertia = float(((x - centers[labels]) ** 2).sum())
    several = len(np.unique(labels)) > 1
    size = min(sample, len(x))
    values = {
        "silhouette": m.silhouette_score(x, labels, sample_size=size, random_state=seed)
        if several else float("nan"),
        "calinski_harabasz": m.calinski_harabasz_score(x, labels) if several else float("nan"),
        "davies_bouldin": m.davies_bouldin_score(x, labels) if several else float("nan"),
        "inertia": inertia,
        "n_clusters": float(len(centers)),
    }  # fmt: skip
    return {name: _finite(value) for name, value in values.items()}


def evaluate(model: Any, frame: Any, label: str | None, seed: int = 42) -> dict[str, float]:
    """The task's metrics of a `CoelhoBatchModel` on a frame (features, and label if any)."""
    predictions = model.predict_frame(frame)
    if model.task == "classification":
        return classification_metrics(frame[label], predictions["probability"], model.threshold)
    if model.task == "regression":
        return regression_metrics(frame[label], predictions["prediction"])
    encoded = model.transform(frame)
    centers = model.estimator[-1].cluster_centers_
    return clustering_metrics(encoded, predictions["prediction"].to_numpy(), centers, seed)


def metrics_markdown(values: dict[str, float], primary: str | None = None) -> str:
    """A two-column markdown table; the primary metric in bold."""
    lines = ["| metric | value |", "|---|---|"]
    for name, value in values.items():
        shown = f"**{name}**" if name == primary else name
        lines.append(f"| {shown} | {value:.6g} |")
    return "\n".join(lines)


def baselines(spec: Any, train: Any, test: Any) -> dict[str, float]:
    """Trivial reference scores on the test split: all-negative and constant-score for
    classification, the train median for regression (none for clustering)."""
    from sklearn import metrics as m

    label = spec.label_field
    if spec.task == "classification":
        y = np.asarray(test[label], dtype=int)
        negatives = np.zeros_like(y)
        return {
            "fbeta": float(m.fbeta_score(y, negatives, beta=2, zero_division=0)),
            "roc_auc": 0.5,
            "accuracy": float(m.accuracy_score(y, negatives)),
        }
    if spec.task == "regression":
        constant = np.full(len(test), float(np.median(train[label])))
        return {
            "mae": float(m.mean_absolute_error(test[label], constant)),
            "rmse": float(m.root_mean_squared_error(test[label], constant)),
        }
    return {}
