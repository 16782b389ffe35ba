"""Training a batch model and logging it to MLflow as a pyfunc that serving can load.

`CoelhoBatchModel` wraps a fitted estimator from `estimators` (which carries its own
encoding) and returns a frame with `prediction` (plus `probability` for classification), so
every consumer (evaluation, champion check, API) gets identical outputs from one object.
"""

from __future__ import annotations

import importlib.metadata
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from coelho_pipelines.models.encoding import MISSING, FeatureLayout
from coelho_pipelines.models.estimators import KTrial, make_estimator, search_kmeans

CATBOOST_PARAM_NAMES = (
    "iterations",
    "learning_rate",
    "depth",
    "l2_leaf_reg",
    "early_stopping_rounds",
    "random_seed",
    "thread_count",
)
KMEANS_PARAM_NAMES = ("k_min", "k_max", "init", "n_init", "random_state", "silhouette_sample_size")
MODEL_ARTIFACT = "model"


class CoelhoBatchModel(mlflow.pyfunc.PythonModel):
    """The served batch model: raw feature frame in, predictions frame out."""

    def __init__(
        self,
        estimator: Any,
        task: str,
        layout: FeatureLayout,
        use_case: str,
        threshold: float = 0.5,
    ) -> None:
        self.estimator = estimator
        self.task = task
        self.layout = layout
        self.use_case = use_case
        self.threshold = threshold

    @property
    def input_layout(self) -> FeatureLayout:
        """The layout (column order) the estimator consumes: a frame normalized with it
        (`input_layout.frame_from_rows`) goes through `predict_frame` without re-encoding."""
        first = self.estimator[0] if self.task == "clustering" else self.estimator
        return first.layout

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predictions for a frame holding (at least) the feature columns."""
        features = self.input_layout.ensure_normalized(frame)
        if self.task == "classification":
            proba = self.estimator.predict_proba(features)[:, 1]
            prediction = (proba >= self.threshold).astype("int64")
            return pd.DataFrame({"prediction": prediction, "probability": proba}, index=frame.index)
        if self.task == "regression":
            values = np.asarray(self.estimator.predict(features), dtype="float64")
            return pd.DataFrame({"prediction": values}, index=frame.index)
        clusters = np.asarray(self.estimator.predict(features), dtype="int64")
        return pd.DataFrame({"prediction": clusters}, index=frame.index)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None):
        return self.predict_frame(pd.DataFrame(model_input))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The encoded feature matrix a clustering model works in (KMeans only)."""
        return self.estimator[:-1].transform(frame)


@dataclass
class TrainedModel:
    """A fitted model plus what the training learned about itself."""

    model: CoelhoBatchModel
    params: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    k_trials: list[KTrial] = field(default_factory=list)
    fit_seconds: float = 0.0


def catboost_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in CATBOOST_PARAM_NAMES if k in params}


def kmeans_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in KMEANS_PARAM_NAMES if k in params}


def train(
    task: str,
    use_case: str,
    layout: FeatureLayout,
    train_frame: pd.DataFrame,
    validation_frame: pd.DataFrame,
    label: str | None,
    params: Mapping[str, Any],
    factory: Any = None,
) -> TrainedModel:
    """Fit the use case's batch model: CatBoost with early stopping on the validation split,
    or KMeans with k chosen by silhouette on a sample of the validation split. `factory` is the
    spec's `batch_model` (CatBoost params, or `n_clusters` + KMeans params)."""
    started = time.perf_counter()
    if task == "clustering":
        settings = kmeans_params(params)
        pipeline, trials = search_kmeans(
            layout, train_frame, validation_frame, factory=factory, **settings
        )
        k = int(pipeline[-1].n_clusters)
        info = {"n_clusters": k, "k_search": {t.k: t.silhouette for t in trials}}
        model = CoelhoBatchModel(pipeline, task, layout, use_case)
        return TrainedModel(model, settings, info, trials, time.perf_counter() - started)
    settings = catboost_params(params)
    estimator = make_estimator(task, layout, settings, factory)
    estimator.fit(
        train_frame[list(layout.order)],
        train_frame[label],
        eval_set=(validation_frame[list(layout.order)], validation_frame[label]),
    )
    info = {"best_iteration": int(estimator.best_iteration_ or 0),
            "tree_count": int(estimator.tree_count_)}  # fmt: skip
    model = CoelhoBatchModel(estimator, task, layout, use_case)
    return TrainedModel(model, settings, info, [], time.perf_counter() - started)


def encoders_description(trained: TrainedModel, train_frame: pd.DataFrame) -> dict[str, Any]:
    """The saved encoding, human-readable (the model artifact itself applies it)."""
    layout = trained.model.layout
    normalized = layout.normalize(train_frame)
    description: dict[str, Any] = {
        "numeric": list(layout.numeric),
        "categorical": list(layout.categorical),
        "missing_category": MISSING,
        "booleans": ["true", "false"],
        "categories_seen": {
            name: sorted(map(str, normalized[name].unique())) for name in layout.categorical
        },
    }
    estimator = trained.model.estimator
    if trained.model.task == "clustering":
        columns = estimator.named_steps["encode"]
        numeric = columns.named_transformers_["numeric"]
        description["numeric_median"] = dict(
            zip(layout.numeric, numeric["impute"].statistics_.tolist(), strict=True)
        )
        description["numeric_mean"] = dict(
            zip(layout.numeric, numeric["scale"].mean_.tolist(), strict=True)
        )
        description["numeric_scale"] = dict(
            zip(layout.numeric, numeric["scale"].scale_.tolist(), strict=True)
        )
        onehot = columns.named_transformers_["categorical"]
        description["one_hot_categories"] = {
            name: [str(c) for c in cats]
            for name, cats in zip(
                layout.categorical, getattr(onehot, "categories_", []), strict=True
            )
        }
        description["encoded_columns"] = [str(c) for c in columns.get_feature_names_out()]
    return description


def pip_requirements() -> list[str]:
    """Pinned requirements of the served model (skips MLflow's slow inference)."""
    packages = ("mlflow", "catboost", "scikit-learn", "pandas", "numpy", "cloudpickle")
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(package)
    return pins


def log_model(trained: TrainedModel, example: pd.DataFrame) -> str:
    """Log the model under the active MLflow run; returns its model URI."""
    from mlflow.models import infer_signature

    layout = trained.model.layout
    example = layout.normalize(example.head(20))
    with warnings.catch_warnings():  # integer outputs (class, cluster) are never missing
        warnings.filterwarnings("ignore", message=".*integer column.*", category=UserWarning)
        signature = infer_signature(example, trained.model.predict_frame(example))
    info = mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT,
        python_model=trained.model,
        signature=signature,
        input_example=example.head(5),
        pip_requirements=pip_requirements(),
    )
    return info.model_uri


def load_model(model_uri: str) -> CoelhoBatchModel:
    """The `CoelhoBatchModel` behind a logged pyfunc model URI."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
