"""Prequential metric state: the spec's River metrics, cluster analytics, serialisable values.

Each metric owns its state (no shared confusion matrix). Classification metrics get what
`river.evaluate.progressive_val_score` would give them for the same model: probability
metrics (ROCAUC, LogLoss, ...) the probability dict, label metrics its argmax. Time-rolling
metrics are keyed by the event time. Clustering metrics are River's Silhouette fed with
precomputed distances (see `DistanceSilhouette`), so rolling windows store two floats per
event instead of every event's copy of all cluster centers; ROCAUC is counted in a
histogram (`HistogramROCAUC`). Both give River's values exactly (tests compare them).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from coelho_pipelines.use_cases.spec import UseCaseSpec

NON_SCALAR = ("ConfusionMatrix", "ClassificationReport")


def finite(value: Any) -> float | None:
    """`value` as a float, or None when missing or not finite (JSON- and MLflow-safe)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def argmax(proba: dict[Any, float]) -> Any:
    """The label River's `predict_one` derives from `predict_proba_one` (first max wins)."""
    return max(proba, key=proba.get) if proba else None


class DistanceSilhouette:
    """River's `metrics.Silhouette`, updated from precomputed distances.

    Identical arithmetic to River 0.26: the sum of distances to the assigned center over the
    sum of `sorted(distances to every center)[-2]`; lower is better. Use `distances()` to
    compute the pair from an event and the centers.
    """

    def __init__(self) -> None:
        self._sum_closest = 0.0
        self._sum_second = 0.0

    @staticmethod
    def distances(x: dict, y_pred: Any, centers: dict) -> tuple[float, float] | None:
        from river.utils.vectordict import euclidean_distance_dict

        if y_pred not in centers or len(centers) < 2:
            return None
        closest = euclidean_distance_dict(centers[y_pred], x)
        second = sorted(euclidean_distance_dict(centers[i], x) for i in centers)[-2]
        return closest, second

    @staticmethod
    def predict_nearest(x: dict, centers: dict) -> tuple[int, tuple[float, float] | None]:
        """DBSTREAM's `predict_one` (nearest center, first on ties, 0 without centers) and
        the Silhouette distances, from one distance per center."""
        from river.utils.vectordict import euclidean_distance_dict

        nearest, best = 0, math.inf
        distances = []
        for i, center in centers.items():
            distance = euclidean_distance_dict(center, x)
            distances.append(distance)
            if distance < best:
                nearest, best = i, distance
        if len(distances) < 2:
            return nearest, None
        return nearest, (best, sorted(distances)[-2])

    def update(self, closest: float, second: float) -> None:
        self._sum_closest += closest
        self._sum_second += second

    def revert(self, closest: float, second: float) -> None:
        self._sum_closest -= closest
        self._sum_second -= second

    def get(self) -> float:
        try:
            return self._sum_closest / self._sum_second
        except ZeroDivisionError:
            return math.inf


class HistogramROCAUC:
    """River's `metrics.ROCAUC` (same thresholds, same value) with O(log n) updates.

    River updates one confusion matrix per threshold on every event (50 of them here, a
    third of the learner's per-event cost). Counting each event once, under the number
    of thresholds its probability exceeds, holds the same information: the confusion
    matrix of threshold i is recovered from the counts above and below i. Counts are
    whole numbers, so every value matches River's exactly.
    """

    requires_labels = False
    bigger_is_better = True

    def __init__(self, n_thresholds: int = 10, pos_val: Any = True) -> None:
        self.n_thresholds = n_thresholds
        self.pos_val = pos_val
        self.thresholds = [i / (n_thresholds - 1) for i in range(n_thresholds)]
        self.thresholds[0] -= 1e-7
        self.thresholds[-1] += 1e-7
        self._positives = [0.0] * (n_thresholds + 1)
        self._negatives = [0.0] * (n_thresholds + 1)

    def _bucket(self, y_true: Any, y_pred: Any) -> tuple[list[float], int]:
        p_true = y_pred.get(True, 0.0) if isinstance(y_pred, dict) else y_pred
        above = bisect.bisect_left(self.thresholds, p_true)  # thresholds t with p_true > t
        return (self._positives if y_true == self.pos_val else self._negatives), above

    def update(self, y_true: Any, y_pred: Any, w: float = 1.0) -> None:
        counts, above = self._bucket(y_true, y_pred)
        counts[above] += w

    def revert(self, y_true: Any, y_pred: Any, w: float = 1.0) -> None:
        counts, above = self._bucket(y_true, y_pred)
        counts[above] -= w

    def get(self) -> float:
        from scipy import integrate

        def safe_div(a: float, b: float) -> float:
            try:
                return a / b
            except ZeroDivisionError:
                return 0.0

        tprs, fprs = [0] * self.n_thresholds, [0] * self.n_thresholds
        for i in range(self.n_thresholds):
            # Threshold i predicts True for events that exceed more than i thresholds.
            tp, fn = sum(self._positives[i + 1 :]), sum(self._positives[: i + 1])
            fp, tn = sum(self._negatives[i + 1 :]), sum(self._negatives[: i + 1])
            tprs[i] = safe_div(tp, tp + fn)
            fprs[i] = safe_div(fp, fp + tn)
        return -integrate.trapezoid(x=fprs, y=tprs)


def _fast(metric: Any) -> Any:
    """An exact, cheaper equivalent of a River metric where we have one."""
    from river import metrics as river_metrics

    if type(metric) is river_metrics.ROCAUC:
        return HistogramROCAUC(metric.n_thresholds, metric.pos_val)
    return metric


def _distance_based(metric: Any) -> Any:
    """The DistanceSilhouette counterpart of a (possibly rolling) River Silhouette."""
    from river import metrics as river_metrics
    from river import utils

    if isinstance(metric, utils.TimeRolling):
        return utils.TimeRolling(DistanceSilhouette, period=metric.period)
    if isinstance(metric, utils.Rolling):
        return utils.Rolling(DistanceSilhouette, window_size=metric.window_size)
    if isinstance(metric, river_metrics.Silhouette):
        return DistanceSilhouette()
    raise TypeError(f"unsupported clustering metric {metric!r}")


def confusion_matrix_dict(cm: Any) -> dict[str, Any]:
    """A River ConfusionMatrix as {labels, matrix (rows true, columns predicted), total}."""
    labels = sorted(cm.classes, key=str)
    matrix = [[float(cm.data[t][p]) for p in labels] for t in labels]
    return {"labels": [_json_label(c) for c in labels], "matrix": matrix, "total": cm.total_weight}


def classification_report_dict(report: Any) -> dict[str, Any]:
    """A River ClassificationReport as per-class and averaged precision/recall/F1."""
    cm = report.cm
    decimals = report.decimals
    labels = sorted(cm.classes, key=str)
    total = sum(cm.sum_row[c] for c in labels)
    per_class: dict[str, dict[str, float]] = {}
    for c in labels:
        tp = cm.data[c][c]
        precision = tp / cm.sum_col[c] if cm.sum_col[c] else 0.0
        recall = tp / cm.sum_row[c] if cm.sum_row[c] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[str(_json_label(c))] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": cm.sum_row[c],
        }

    def average(weights: dict[str, float]) -> dict[str, float]:
        norm = sum(weights.values())
        return {
            key: sum(per_class[c][key] * w for c, w in weights.items()) / norm if norm else 0.0
            for key in ("precision", "recall", "f1")
        }

    accuracy = sum(cm.data[c][c] for c in labels) / total if total else 0.0
    result = {
        "classes": per_class,
        "macro": average({c: 1.0 for c in per_class}),
        "micro": {"precision": accuracy, "recall": accuracy, "f1": accuracy},
        "weighted": average({c: per_class[c]["support"] for c in per_class}),
        "accuracy": accuracy,
    }
    return _rounded(result, decimals)


def _rounded(value: Any, decimals: int) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v, decimals) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, decimals)
    return value


def _json_label(label: Any) -> Any:
    return label if isinstance(label, bool | int | float | str) or label is None else str(label)


class MetricSet:
    """The spec's River metrics, updated prequentially (predict, update, then learn)."""

    def __init__(self, spec: UseCaseSpec) -> None:
        from river import utils

        self.task = spec.task
        self.metrics: dict[str, Any] = spec.river_metrics()
        if self.task == "clustering":
            self.metrics = {k: _distance_based(m) for k, m in self.metrics.items()}
        else:
            self.metrics = {k: _fast(m) for k, m in self.metrics.items()}
        self._time_rolling = {
            k for k, m in self.metrics.items() if isinstance(m, utils.TimeRolling)
        }
        self._label_metrics = {
            k for k, m in self.metrics.items() if getattr(m, "requires_labels", True)
        }
        self.n_clusters = 0
        self.n_micro_clusters = 0
        self.skipped: dict[str, int] = {}  # per metric: events outside its domain

    def update_classification(
        self, y_true: Any, proba: dict[Any, float], t: datetime, label: Any = None
    ) -> None:
        """Probability metrics get `proba`, label metrics `label` (default: its argmax, as
        River's `predict_one`; the learner passes its online threshold's decision)."""
        if not proba:
            return  # an untrained model has no opinion; River skips these too
        if label is None:
            label = argmax(proba)
        labels = self._label_metrics
        for name, metric in self.metrics.items():
            self._update(name, metric, t, y_true, label if name in labels else proba)

    def update_regression(self, y_true: float, y_pred: float | None, t: datetime) -> None:
        if y_pred is None:
            return
        for name, metric in self.metrics.items():
            self._update(name, metric, t, y_true, y_pred)

    def update_clustering(self, distances: tuple[float, float] | None, t: datetime) -> None:
        if distances is None:
            return
        for name, metric in self.metrics.items():
            self._update(name, metric, t, *distances)

    def _update(self, name: str, metric: Any, t: datetime, *args: Any) -> None:
        """One metric update; a value outside a metric's domain (e.g. RMSLE of a prediction
        below -1) skips that metric for this event only, and is counted."""
        try:
            if name in self._time_rolling:
                metric.update(*args, t=t)
            else:
                metric.update(*args)
        except (ArithmeticError, ValueError):
            self.skipped[name] = self.skipped.get(name, 0) + 1

    def set_cluster_counts(self, n_clusters: int, n_micro_clusters: int) -> None:
        self.n_clusters = n_clusters
        self.n_micro_clusters = n_micro_clusters

    def scalars(self) -> dict[str, float]:
        """Finite scalar metric values (MLflow, Prometheus, asset metadata)."""
        out = {}
        for name, metric in self.metrics.items():
            if name in NON_SCALAR:
                continue
            value = finite(metric.get())
            if value is not None:
                out[name] = value
        if self.task == "clustering":
            out["n_clusters"] = float(self.n_clusters)
            out["n_micro_clusters"] = float(self.n_micro_clusters)
        return out

    def values(self) -> dict[str, Any]:
        """Every metric, JSON-serialisable: scalars (None when undefined) and report dicts."""
        out: dict[str, Any] = {}
        for name, metric in self.metrics.items():
            if name == "ConfusionMatrix":
                out[name] = confusion_matrix_dict(metric)
            elif name == "ClassificationReport":
                out[name] = classification_report_dict(metric)
            else:
                out[name] = finite(metric.get())
        if self.task == "clustering":
            out["n_clusters"] = self.n_clusters
            out["n_micro_clusters"] = self.n_micro_clusters
        return out


class ClusterAnalytics:
    """Samples per cluster and per-cluster counts of each categorical feature's values."""

    def __init__(self, categorical_features: list[str]) -> None:
        self.features = list(categorical_features)
        self.samples: Counter[int] = Counter()
        self.counts: dict[str, defaultdict[int, Counter[str]]] = {
            f: defaultdict(Counter) for f in self.features
        }

    def update(self, cluster: int, raw: dict[str, Any]) -> None:
        self.samples[cluster] += 1
        for feature in self.features:
            value = raw.get(feature)
            self.counts[feature][cluster]["null" if value is None else str(value)] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples_per_cluster": {str(c): n for c, n in sorted(self.samples.items())},
            "features": {
                feature: {str(c): dict(counter.most_common()) for c, counter in sorted(per.items())}
                for feature, per in self.counts.items()
            },
        }
