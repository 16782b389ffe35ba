"""What every plot receives (`PlotData`) and how figures become PNG files.

Figures are `matplotlib.figure.Figure` objects drawn with the Agg canvas (no pyplot state),
so rendering is headless and safe to repeat in a long-running process. Slow plots work on
samples of `sample_size` rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from coelho_pipelines.models.encoding import FeatureLayout

PlotFunction = Callable[["PlotData"], Figure]
CMAP = "viridis"
DPI = 90


def figure(width: float = 7.0, height: float = 4.5) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def axes(width: float = 7.0, height: float = 4.5) -> tuple[Figure, Any]:
    fig = figure(width, height)
    return fig, fig.add_subplot()


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= size else frame.sample(n=size, random_state=seed)


@dataclass
class PlotData:
    """Everything the catalogue draws from: the model, the splits and test predictions."""

    task: str
    title: str
    model: Any  # CoelhoBatchModel
    layout: FeatureLayout
    label: str | None
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    k_trials: list[dict[str, float]] = field(default_factory=list)
    texts: pd.DataFrame | None = None  # columns: text, cluster
    sample_size: int = 1000
    diagnostics_sample_size: int = 1200
    seed: int = 42

    # --- test predictions ---------------------------------------------------------------
    @cached_property
    def predictions(self) -> pd.DataFrame:
        return self.model.predict_frame(self.test)

    @property
    def y_test(self) -> np.ndarray:
        return self.test[self.label].to_numpy()

    @property
    def y_pred(self) -> np.ndarray:
        return self.predictions["prediction"].to_numpy()

    @property
    def proba(self) -> np.ndarray:
        return self.predictions["probability"].to_numpy()

    @property
    def class_names(self) -> list[str]:
        return [f"{self.label}=0", f"{self.label}=1"] if self.label else []

    # --- samples and matrices ------------------------------------------------------------
    @cached_property
    def test_sample(self) -> pd.DataFrame:
        return sample(self.test, self.sample_size, self.seed)

    @cached_property
    def sample_target(self) -> np.ndarray:
        """What colours a sample: the label, or the predicted cluster."""
        if self.task == "clustering":
            return self.model.predict_frame(self.test_sample)["prediction"].to_numpy()
        return self.test_sample[self.label].to_numpy()

    @property
    def target_name(self) -> str:
        return "cluster" if self.task == "clustering" else str(self.label)

    @property
    def target_is_discrete(self) -> bool:
        return self.task != "regression"

    @cached_property
    def encoder(self) -> Any:
        """Scaled numerics + one-hot categoricals fitted on train (the model's own for KMeans)."""
        if self.task == "clustering":
            return self.model.estimator[:-1]
        from coelho_pipelines.models.estimators import encoder

        return encoder(self.layout).fit(sample(self.train, 20_000, self.seed))

    @cached_property
    def encoded_sample(self) -> np.ndarray:
        return np.asarray(self.encoder.transform(self.test_sample), dtype=float)

    @cached_property
    def encoded_names(self) -> list[str]:
        return [str(n) for n in self.encoder[-1].get_feature_names_out()]

    @cached_property
    def numeric_sample(self) -> pd.DataFrame:
        """The numeric features of the sample, standardized (missing -> column mean)."""
        frame = self.layout.normalize(self.test_sample)[list(self.layout.numeric)]
        frame = frame.fillna(frame.mean()).fillna(0.0)
        std = frame.std(ddof=0).replace(0.0, 1.0)
        return (frame - frame.mean()) / std

    @cached_property
    def diagnostics_frame(self) -> pd.DataFrame:
        """Train rows for the refitting diagnostics (stratified for classification)."""
        frame, size = self.train, self.diagnostics_sample_size
        if len(frame) <= size:
            return frame
        if self.task == "classification" and frame[self.label].nunique() > 1:
            from sklearn.model_selection import train_test_split

            kept, _ = train_test_split(
                frame, train_size=size, stratify=frame[self.label], random_state=self.seed
            )
            return kept.sort_index()
        return frame.iloc[-size:]

    def scatter_target(self, ax: Any, x: np.ndarray, y: np.ndarray, target: np.ndarray) -> None:
        """Scatter coloured by the target, with a legend (discrete) or colour bar."""
        if self.target_is_discrete:
            for value in np.unique(target):
                mask = target == value
                ax.scatter(x[mask], y[mask], s=10, alpha=0.7, label=f"{self.target_name}={value}")
            ax.legend(fontsize="small", markerscale=1.5, loc="best")
        else:
            points = ax.scatter(x, y, c=target, s=10, alpha=0.7, cmap=CMAP)
            ax.figure.colorbar(points, ax=ax, label=self.target_name)
