"""Regression tab (eta): residuals and prediction error on the test split."""

from __future__ import annotations

from matplotlib.figure import Figure
from sklearn.metrics import PredictionErrorDisplay, r2_score

from coelho_pipelines.plots.common import PlotData, axes, figure, sample


def residuals(data: PlotData) -> Figure:
    """Residuals against predictions for train (sample) and test, with their histogram."""
    fig = figure(8, 4.5)
    grid = fig.add_gridspec(1, 2, width_ratios=(4, 1))
    ax = fig.add_subplot(grid[0])
    hist = fig.add_subplot(grid[1], sharey=ax)
    train = sample(data.train, data.sample_size, data.seed)
    train_pred = data.model.predict_frame(train)["prediction"].to_numpy()
    train_res = train[data.label].to_numpy() - train_pred
    test_res = data.y_test - data.y_pred
    r2_train = r2_score(train[data.label], train_pred)
    r2_test = r2_score(data.y_test, data.y_pred)
    ax.scatter(train_pred, train_res, s=8, alpha=0.5, label=f"train R² = {r2_train:.3f}")
    ax.scatter(data.y_pred, test_res, s=8, alpha=0.5, label=f"test R² = {r2_test:.3f}")
    ax.axhline(0, color="black", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (actual - predicted)")
    ax.legend()
    hist.hist([train_res, test_res], bins=30, orientation="horizontal", density=True,
              label=["train", "test"])  # fmt: skip
    hist.set_xlabel("density")
    fig.suptitle("Residuals plot")
    return fig


def prediction_error(data: PlotData) -> Figure:
    fig, ax = axes(5.5, 5.5)
    PredictionErrorDisplay.from_predictions(
        data.y_test, data.y_pred, kind="actual_vs_predicted", ax=ax,
        subsample=data.sample_size, random_state=data.seed,
    )  # fmt: skip
    ax.set_title("Prediction error (actual vs predicted)")
    return fig


def residuals_vs_predicted(data: PlotData) -> Figure:
    fig, ax = axes(6, 4.5)
    PredictionErrorDisplay.from_predictions(
        data.y_test, data.y_pred, kind="residual_vs_predicted", ax=ax,
        subsample=data.sample_size, random_state=data.seed,
    )  # fmt: skip
    ax.set_title("Residuals vs predicted (test split)")
    return fig


PLOTS = {
    "residuals": residuals,
    "prediction_error": prediction_error,
    "residuals_vs_predicted": residuals_vs_predicted,
}
