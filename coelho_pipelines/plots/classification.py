"""Classification tab (tfd): how the fraud scores separate the classes on the test split."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from sklearn import metrics

from coelho_pipelines.plots.common import PlotData, axes


def confusion_matrix(data: PlotData) -> Figure:
    fig, ax = axes(5.5, 4.5)
    metrics.ConfusionMatrixDisplay.from_predictions(
        data.y_test, data.y_pred, labels=[0, 1], display_labels=data.class_names, ax=ax,
        cmap="Blues", colorbar=True,
    )  # fmt: skip
    ax.set_title("Confusion matrix (test split)")
    return fig


def classification_report(data: PlotData) -> Figure:
    report = metrics.classification_report(
        data.y_test, data.y_pred, labels=[0, 1], output_dict=True, zero_division=0
    )
    rows = ["0", "1"]
    columns = ["precision", "recall", "f1-score"]
    values = np.array([[report[r][c] for c in columns] for r in rows])
    fig, ax = axes(6, 3.5)
    image = ax.imshow(values, cmap="YlOrRd", vmin=0, vmax=1)
    for i in range(len(rows)):
        for j in range(len(columns)):
            ax.text(j, i, f"{values[i, j]:.3f}", ha="center", va="center")
    ax.set_xticks(range(len(columns)), columns)
    labels = [
        f"{name} (n={int(report[r]['support'])})"
        for name, r in zip(data.class_names, rows, strict=True)
    ]
    ax.set_yticks(range(len(rows)), labels)
    fig.colorbar(image, ax=ax)
    ax.set_title("Classification report (test split)")
    return fig


def roc_curve(data: PlotData) -> Figure:
    fig, ax = axes(5.5, 5)
    metrics.RocCurveDisplay.from_predictions(
        data.y_test, data.proba, ax=ax, name="CatBoost", plot_chance_level=True
    )
    ax.set_title("ROC curve (test split)")
    return fig


def precision_recall_curve(data: PlotData) -> Figure:
    fig, ax = axes(5.5, 5)
    metrics.PrecisionRecallDisplay.from_predictions(
        data.y_test, data.proba, ax=ax, name="CatBoost", plot_chance_level=True
    )
    ax.set_title("Precision-recall curve (test split)")
    return fig


def class_prediction_error(data: PlotData) -> Figure:
    fig, ax = axes(6, 4.5)
    y, pred = data.y_test, data.y_pred
    bottom = np.zeros(2)
    for predicted in (0, 1):
        counts = np.array([np.sum((y == actual) & (pred == predicted)) for actual in (0, 1)])
        ax.bar(data.class_names, counts, bottom=bottom, label=f"predicted {predicted}")
        bottom += counts
    ax.set_yscale("symlog")
    ax.set_ylabel("events (symlog)")
    ax.set_xlabel("actual class")
    ax.legend()
    ax.set_title("Class prediction error")
    return fig


def _threshold_scores(y: np.ndarray, proba: np.ndarray, thresholds: np.ndarray) -> dict:
    scores: dict[str, list[float]] = {"precision": [], "recall": [], "f1": [], "fbeta (2)": [],
                                      "queue rate": []}  # fmt: skip
    for t in thresholds:
        pred = (proba >= t).astype(int)
        scores["precision"].append(metrics.precision_score(y, pred, zero_division=0))
        scores["recall"].append(metrics.recall_score(y, pred, zero_division=0))
        scores["f1"].append(metrics.f1_score(y, pred, zero_division=0))
        scores["fbeta (2)"].append(metrics.fbeta_score(y, pred, beta=2, zero_division=0))
        scores["queue rate"].append(pred.mean())
    return scores


def discrimination_threshold(data: PlotData) -> Figure:
    thresholds = np.linspace(0.01, 0.99, 50)
    scores = _threshold_scores(data.y_test, data.proba, thresholds)
    fig, ax = axes(7, 4.5)
    for name, values in scores.items():
        ax.plot(thresholds, values, label=name)
    best = thresholds[int(np.argmax(scores["fbeta (2)"]))]
    ax.axvline(best, color="black", linestyle="--", label=f"best fbeta at {best:.2f}")
    ax.axvline(data.model.threshold, color="grey", linestyle=":", label="model threshold")
    ax.set_xlabel("threshold")
    ax.set_ylabel("score")
    ax.legend(fontsize="small")
    ax.set_title("Discrimination threshold")
    return fig


def calibration_curve(data: PlotData) -> Figure:
    from sklearn.calibration import CalibrationDisplay

    fig, ax = axes(5.5, 5)
    CalibrationDisplay.from_predictions(
        data.y_test, data.proba, n_bins=10, strategy="quantile", ax=ax, name="CatBoost"
    )
    ax.set_title("Calibration curve (quantile bins)")
    return fig


def det_curve(data: PlotData) -> Figure:
    fig, ax = axes(5.5, 5)
    metrics.DetCurveDisplay.from_predictions(data.y_test, data.proba, ax=ax, name="CatBoost")
    ax.set_title("DET curve")
    return fig


def ks_statistic(data: PlotData) -> Figure:
    y, proba = data.y_test, data.proba
    grid = np.linspace(0, 1, 201)
    cdfs = [np.searchsorted(np.sort(proba[y == c]), grid, side="right") / max((y == c).sum(), 1)
            for c in (0, 1)]  # fmt: skip
    gap = np.abs(cdfs[0] - cdfs[1])
    at = int(np.argmax(gap))
    fig, ax = axes(6.5, 4.5)
    for name, cdf in zip(data.class_names, cdfs, strict=True):
        ax.plot(grid, cdf, label=name)
    ax.vlines(
        grid[at],
        min(cdfs[0][at], cdfs[1][at]),
        max(cdfs[0][at], cdfs[1][at]),
        colors="black",
        linestyles="--",
        label=f"KS = {gap[at]:.3f} at {grid[at]:.2f}",
    )
    ax.set_xlabel("score threshold")
    ax.set_ylabel("cumulative share")
    ax.legend()
    ax.set_title("KS statistic")
    return fig


def _gains(y: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-proba, kind="stable")
    hits = np.cumsum(y[order] == 1)
    population = np.arange(1, len(y) + 1) / len(y)
    return population, hits / max(hits[-1], 1)


def cumulative_gain(data: PlotData) -> Figure:
    population, gain = _gains(data.y_test, data.proba)
    fig, ax = axes(5.5, 5)
    ax.plot(np.r_[0, population], np.r_[0, gain], label=data.class_names[1])
    ax.plot([0, 1], [0, 1], "k--", label="baseline")
    ax.set_xlabel("share of events (highest scores first)")
    ax.set_ylabel("share of positives found")
    ax.legend()
    ax.set_title("Cumulative gain")
    return fig


def lift_curve(data: PlotData) -> Figure:
    population, gain = _gains(data.y_test, data.proba)
    fig, ax = axes(5.5, 5)
    ax.plot(population, gain / population, label=data.class_names[1])
    ax.axhline(1.0, color="black", linestyle="--", label="baseline")
    ax.set_xlabel("share of events (highest scores first)")
    ax.set_ylabel("lift")
    ax.legend()
    ax.set_title("Lift curve")
    return fig


PLOTS = {
    "confusion_matrix": confusion_matrix,
    "classification_report": classification_report,
    "roc_curve": roc_curve,
    "precision_recall_curve": precision_recall_curve,
    "class_prediction_error": class_prediction_error,
    "discrimination_threshold": discrimination_threshold,
    "calibration_curve": calibration_curve,
    "det_curve": det_curve,
    "ks_statistic": ks_statistic,
    "cumulative_gain": cumulative_gain,
    "lift_curve": lift_curve,
}
