"""scikit-learn compatible batch estimators that carry their own feature encoding.

Each estimator takes the raw feature frame (the spec's feature columns) and applies
`FeatureLayout.normalize` itself, so the fitted object is the whole model: serving passes the
same columns and gets exactly the training encoding. Being sklearn estimators, they also work
with sklearn's model selection tools (learning and validation curves, cross-validation).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from coelho_pipelines.models.encoding import FeatureLayout
from coelho_pipelines.use_cases import model_factories as mf


class FeatureNormalizer(TransformerMixin, BaseEstimator):
    """Selects and types the feature columns (`FeatureLayout.normalize`) inside a Pipeline."""

    def __init__(self, numeric: tuple[str, ...] = (), categorical: tuple[str, ...] = ()):
        self.numeric = numeric
        self.categorical = categorical

    @property
    def layout(self) -> FeatureLayout:
        return FeatureLayout(
            tuple(self.numeric), tuple(self.categorical), (*self.numeric, *self.categorical)
        )

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureNormalizer:
        self.feature_names_in_ = np.asarray(self.layout.order, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return self.layout.ensure_normalized(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.layout.order, dtype=object)


class _CatBoostEstimator(BaseEstimator):
    """CatBoost on the raw feature frame, categoricals passed natively as `cat_features`."""

    def __init__(
        self,
        numeric: tuple[str, ...] = (),
        categorical: tuple[str, ...] = (),
        iterations: int = 1000,
        learning_rate: float = 0.05,
        depth: int = 6,
        l2_leaf_reg: float = 3.0,
        early_stopping_rounds: int = 50,
        random_seed: int = 42,
        thread_count: int = -1,
        factory: Callable[..., Any] | None = None,
    ):
        self.numeric = numeric
        self.categorical = categorical
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.depth = depth
        self.l2_leaf_reg = l2_leaf_reg
        self.early_stopping_rounds = early_stopping_rounds
        self.random_seed = random_seed
        self.thread_count = thread_count
        self.factory = factory

    _factory = staticmethod(mf.catboost_classifier)

    @property
    def layout(self) -> FeatureLayout:
        return FeatureLayout(
            tuple(self.numeric), tuple(self.categorical), (*self.numeric, *self.categorical)
        )

    def _params(self) -> dict[str, Any]:
        return {
            "iterations": self.iterations,
            "learning_rate": self.learning_rate,
            "depth": self.depth,
            "l2_leaf_reg": self.l2_leaf_reg,
            "early_stopping_rounds": self.early_stopping_rounds,
            "random_seed": self.random_seed,
            "thread_count": self.thread_count,
        }

    def fit(self, X: pd.DataFrame, y: Any, eval_set: tuple[pd.DataFrame, Any] | None = None):
        """Fit; `eval_set=(X_val, y_val)` enables early stopping (and best-iteration pick)."""
        layout = self.layout
        model = (self.factory or self._factory)(**self._params())
        fit_kwargs: dict[str, Any] = {"cat_features": list(layout.categorical)}
        if eval_set is not None and len(eval_set[0]) > 0:
            fit_kwargs["eval_set"] = (layout.normalize(eval_set[0]), np.asarray(eval_set[1]))
            fit_kwargs["use_best_model"] = True
        model.fit(layout.normalize(X), np.asarray(y), **fit_kwargs)
        self.model_ = model
        self.feature_names_in_ = np.asarray(layout.order, dtype=object)
        self.n_features_in_ = len(layout.order)
        self.best_iteration_ = model.get_best_iteration()
        self.tree_count_ = model.tree_count_
        return self

    @property
    def feature_importances_(self) -> np.ndarray:
        return np.asarray(self.model_.get_feature_importance(), dtype=float)

    def shap_values(self, X: pd.DataFrame) -> pd.DataFrame:
        """SHAP values per feature (the expected value column dropped)."""
        from catboost import Pool

        layout = self.layout
        pool = Pool(layout.normalize(X), cat_features=list(layout.categorical))
        values = self.model_.get_feature_importance(pool, type="ShapValues")
        return pd.DataFrame(values[:, :-1], columns=list(layout.order), index=X.index)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model_.predict(self.layout.ensure_normalized(X))).ravel()


class CatBoostClassifierEstimator(ClassifierMixin, _CatBoostEstimator):
    """Binary classifier: Logloss, eval AUC, balanced class weights (spec defaults)."""

    _factory = staticmethod(mf.catboost_classifier)

    def fit(self, X: pd.DataFrame, y: Any, eval_set: Any = None):
        super().fit(X, y, eval_set)
        self.classes_ = np.asarray(self.model_.classes_)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(self.layout.ensure_normalized(X)))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        proba = self.predict_proba(X)[:, 1]
        return np.where(proba >= 0.5, self.classes_[1], self.classes_[0])


class CatBoostRegressorEstimator(RegressorMixin, _CatBoostEstimator):
    """Regressor: RMSE loss, eval MAE (spec defaults)."""

    _factory = staticmethod(mf.catboost_regressor)


def encoder(layout: FeatureLayout) -> Pipeline:
    """Typing + median-imputed standard scaling of numerics + one-hot categoricals."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    columns = ColumnTransformer(
        [
            ("numeric", numeric, list(layout.numeric)),
            ("categorical", categorical, list(layout.categorical)),
        ],
        verbose_feature_names_out=True,
    )
    return Pipeline(
        [("normalize", FeatureNormalizer(layout.numeric, layout.categorical)), ("encode", columns)]
    )


def kmeans_pipeline(
    layout: FeatureLayout,
    n_clusters: int,
    factory: Callable[..., Any] | None = None,
    **params: Any,
) -> Pipeline:
    """Encoder followed by KMeans (k-means++, n_init and seed from the spec)."""
    steps = encoder(layout).steps
    return Pipeline([*steps, ("cluster", (factory or mf.kmeans)(n_clusters, **params))])


@dataclass(frozen=True)
class KTrial:
    """One k of the k search: silhouette on the selection sample, inertia, fit time."""

    k: int
    silhouette: float
    inertia: float
    fit_seconds: float


def _sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= size else frame.sample(n=size, random_state=seed)


def search_kmeans(
    layout: FeatureLayout,
    train: pd.DataFrame,
    selection: pd.DataFrame,
    k_min: int = 2,
    k_max: int = 10,
    silhouette_sample_size: int = 5000,
    factory: Callable[..., Any] | None = None,
    **params: Any,
) -> tuple[Pipeline, list[KTrial]]:
    """KMeans for every k in k_min..k_max on `train`; the best silhouette on a sample of
    `selection` wins. Returns the fitted pipeline (encoder + KMeans) and every trial."""
    seed = int(params.get("random_state", 42))
    prep = encoder(layout).fit(train)
    x_train = prep.transform(train)
    sample = _sample(
        selection if len(selection) >= 2 * k_max else train, silhouette_sample_size, seed
    )
    x_sample = prep.transform(sample)
    upper = max(k_min, min(k_max, len(x_train) - 1, len(x_sample) - 1))
    trials: list[tuple[KTrial, Any]] = []
    # One OpenMP thread: KMeans' Lloyd iterations on small matrices slow down many times over
    # when threads spin against other work on a busy 2-core machine.
    with threadpool_limits(limits=1, user_api="openmp"):
        for k in range(k_min, upper + 1):
            started = time.perf_counter()
            model = (factory or mf.kmeans)(k, **params).fit(x_train)
            seconds = time.perf_counter() - started
            labels = model.predict(x_sample)
            score = silhouette_score(x_sample, labels) if len(set(labels)) > 1 else -1.0
            trials.append((KTrial(k, float(score), float(model.inertia_), seconds), model))
    best_trial, best_model = max(trials, key=lambda pair: pair[0].silhouette)
    pipeline = Pipeline([*prep.steps, ("cluster", best_model)])
    return pipeline, [trial for trial, _ in trials]


def make_estimator(
    task: str,
    layout: FeatureLayout,
    params: dict[str, Any],
    factory: Callable[..., Any] | None = None,
) -> Any:
    """An unfitted estimator for `task` (KMeans needs `n_clusters` in params). `factory` is the
    spec's batch model factory (default: the model_factories one for the task)."""
    if task == "classification":
        return CatBoostClassifierEstimator(
            layout.numeric, layout.categorical, **params, factory=factory
        )
    if task == "regression":
        return CatBoostRegressorEstimator(
            layout.numeric, layout.categorical, **params, factory=factory
        )
    params = dict(params)
    return kmeans_pipeline(layout, params.pop("n_clusters"), factory, **params)
