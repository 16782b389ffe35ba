"""Serving-side fast path of a fitted `CoelhoBatchModel`: the same outputs without pandas.

`predict_frame` builds pandas frames and runs sklearn's input validation on every call, which
costs milliseconds per request for a one-row input. `compile_predictor` reads the fitted model
once and returns a function from feature rows (`spec.extract_features(event)` dicts) to the
served output (the probability for classification, the value for regression, the cluster for
clustering), computed with the model's own arithmetic:

- CatBoost: CatBoost's own evaluator on an object matrix of the rows in the estimator's column
  order (the same values `FeatureLayout.normalize` gives, without the DataFrame), with the
  pool built and the prediction asked for without `predict`'s per-call Python checks, on a copy
  of the model whose metadata keeps only the training parameters applying a model reads.
- KMeans pipelines (`estimators.kmeans_pipeline`): the median imputation, standard scaling and
  one-hot encoding applied from the fitted statistics (row by row for plain values, in numpy
  otherwise), then scikit-learn's own label kernel (the one `KMeans.predict` calls) on the
  encoded matrix.

Anything else, or a fitted model whose settings this does not replicate, gets the original
`predict_frame`. Each kind is fenced (`CATBOOST`, `SKLEARN`: exact library versions,
`COELHO_ACCEL=0`), and its agreement probe is the model itself: every compiled predictor is
checked against `predict_frame` on probe rows before it is used; a mismatch falls back too
(with one log line).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from coelho_pipelines.accel.fence import Fence, log
from coelho_pipelines.models.encoding import MISSING, FeatureLayout, _direct_columns

# The exact versions whose internals these fast paths were written against (requirements-dev.lock).
CATBOOST = Fence("CatBoost batch predictor", "catboost", frozenset({"1.2.10"}))
SKLEARN = Fence("KMeans batch predictor", "scikit-learn", frozenset({"1.8.0"}))

Rows = Sequence[Mapping[str, Any]]
RowPredictor = Callable[[Rows], list[Any]]


def output_column(task: str) -> str:
    """The `predict_frame` column the API serves for a task."""
    return "probability" if task == "classification" else "prediction"


def frame_predictor(model: Any) -> RowPredictor:
    """The reference path: `predict_frame` on a normalized frame of the rows."""
    column = output_column(model.task)

    def predict(rows: Rows) -> list[Any]:
        return model.predict_frame(model.input_layout.frame_from_rows(rows))[column].tolist()

    return predict


def compile_predictor(model: Any) -> RowPredictor:
    """A fast predictor equal to `frame_predictor(model)`, else `frame_predictor(model)`."""
    reference = frame_predictor(model)
    kind = _kind(model)
    if kind is None or not kind.fence.open():
        return reference
    try:
        fast = kind.compile(model, reference)
    except (AttributeError, ImportError, KeyError, TypeError, ValueError):
        return reference
    if fast is None:
        return reference
    if not _agrees(fast, reference, _probe_rows(model)):
        name = getattr(model, "use_case", "?")
        log.warning("fast path %s off for model %s, the public path serves: the agreement "
                    "probe disagrees with predict_frame", kind.fence.name, name)  # fmt: skip
        return reference
    fast.compiled = True  # type: ignore[attr-defined]
    return fast


def is_compiled(predictor: RowPredictor) -> bool:
    """Whether `compile_predictor` returned a fast path (else it is `frame_predictor`)."""
    return getattr(predictor, "compiled", False)


class Kind(NamedTuple):
    """A kind of model with a fast path: its fence and its compiler."""

    fence: Fence
    compile: Callable[[Any, RowPredictor], RowPredictor | None]


def _kind(model: Any) -> Kind | None:
    from coelho_pipelines.models.estimators import _CatBoostEstimator

    if isinstance(model.estimator, _CatBoostEstimator) and model.task in (
        "classification",
        "regression",
    ):
        return Kind(CATBOOST, _catboost_predictor)
    if model.task == "clustering":
        return Kind(SKLEARN, _kmeans_predictor)
    return None


# --- the normalized columns of rows ----------------------------------------------------------


def normalized_columns(layout: FeatureLayout, rows: Rows) -> dict[str, np.ndarray]:
    """The columns `layout.frame_from_rows(rows)` holds (float64 numerics, string
    categoricals), as numpy arrays: built from the python values when they are plain, else
    through pandas exactly as `frame_from_rows` does."""
    columns = {name: [row.get(name) for row in rows] for name in layout.order}
    direct = _direct_columns(layout, columns)
    if direct is not None:
        return direct
    frame = layout.frame_from_rows(rows)
    return {name: frame[name].to_numpy() for name in layout.order}


# --- CatBoost ----------------------------------------------------------------------------------


def _catboost_predictor(model: Any, reference: RowPredictor) -> RowPredictor | None:
    from catboost import CatBoost, CatBoostError

    estimator = model.estimator
    booster = estimator.model_
    layout: FeatureLayout = model.input_layout
    if not isinstance(booster, CatBoost) or layout != estimator.layout:
        return None
    prediction_type = _catboost_prediction_type(booster, model.task)
    if prediction_type is None or not booster.is_fitted():
        return None
    try:
        score = _catboost_scorer(booster, prediction_type)
    except CatBoostError:  # a model CatBoost cannot copy: the reference path serves it
        return None
    plain = _plain_matrix_builder(layout)
    classification = model.task == "classification"

    def predict(rows: Rows) -> list[Any]:
        if not rows:
            return reference(rows)
        matrix = plain(rows)
        if matrix is None:  # some value is not plain: the pandas branch of the encoding
            columns = normalized_columns(layout, rows)
            if any(columns[name].dtype != np.float64 for name in layout.numeric):
                return reference(rows)
            matrix = _object_matrix([columns[name].tolist() for name in layout.order])
        values = np.asarray(score(matrix))
        if classification:
            return values[:, 1].tolist()
        return np.asarray(values.ravel(), dtype="float64").tolist()

    return predict


def _catboost_prediction_type(booster: Any, task: str) -> str | None:
    """The prediction type the reference path asks for: `predict_proba`'s for a classifier,
    `predict`'s default for a regressor (single-valued types only)."""
    from catboost import CatBoostClassifier, CatBoostRegressor

    if task == "classification":
        return "Probability" if isinstance(booster, CatBoostClassifier) else None
    if not isinstance(booster, CatBoostRegressor):
        return None
    prediction_type = booster._get_default_prediction_type()
    return prediction_type if prediction_type in ("RawFormulaVal", "Exponent") else None


def _catboost_scorer(booster: Any, prediction_type: str) -> Callable[[np.ndarray], Any]:
    """CatBoost's own evaluator on an object matrix in the model's column order, without the
    Python-side checks of `predict` (done once here) and on a copy of the model whose training
    parameters are cut to what applying it reads (see `_prediction_copy`)."""
    from catboost import Pool

    evaluator = _prediction_copy(booster)._object
    cat_features = [int(i) for i in booster._get_cat_feature_indices()]

    def score(matrix: np.ndarray) -> Any:
        # What `Pool(matrix, cat_features=...)` builds, less its argument checks.
        pool = Pool.__new__(Pool)
        pool._init_pool(matrix, None, cat_features, *([None] * 14), 1)
        return evaluator._base_predict(pool, prediction_type, 0, 0, 1, False, "CPU")

    return score


# The training parameters CatBoost reads when it applies a model: the loss (the prediction
# transform), the class names (label order) and posterior sampling.
_APPLY_PARAMS = (
    ("loss_function",),
    ("data_processing_options", "class_names"),
    ("boosting_options", "posterior_sampling"),
)


def _prediction_copy(booster: Any) -> Any:
    """A copy of `booster` whose metadata `params` keep only `_APPLY_PARAMS`.

    CatBoost parses the whole `params` JSON (all training options, kilobytes) on every
    prediction call to find the loss function and class names: most of the cost of a one-row
    prediction. The trees, borders, CTR tables and scale/bias are untouched, so predictions are
    the same (and checked against the original on probe rows by `compile_predictor`)."""
    import json

    copy = booster.copy()
    metadata = copy.get_metadata()
    if "params" not in metadata:
        return copy
    params = json.loads(metadata["params"])
    kept: dict[str, Any] = {}
    for path in _APPLY_PARAMS:
        source, target = params, kept
        for key in path[:-1]:
            source = source.get(key, {})
            target = target.setdefault(key, {})
        if path[-1] in source:
            target[path[-1]] = source[path[-1]]
    metadata["params"] = json.dumps(kept)
    return copy


def _plain_matrix_builder(layout: FeatureLayout) -> Callable[[Rows], np.ndarray | None]:
    """The normalized values of rows as an object matrix in layout order (python floats for
    numerics, strings for categoricals), built straight from plain values (the same values
    `_direct_columns` gives), or None when some value is not plain."""
    numeric = frozenset(layout.numeric)
    kinds = [(name, name in numeric) for name in layout.order]
    nan = float("nan")

    def build(rows: Rows) -> np.ndarray | None:
        matrix = []
        for row in rows:
            values = []
            for name, is_numeric in kinds:
                value = row.get(name)
                kind = type(value)
                if value is None:
                    values.append(nan if is_numeric else MISSING)
                elif kind is bool:
                    values.append(float(value) if is_numeric else "true" if value else "false")
                elif is_numeric and (kind is float or kind is int and -(2**53) <= value <= 2**53):
                    values.append(float(value))
                elif kind is str and not is_numeric:
                    values.append(value)
                else:
                    return None
            matrix.append(values)
        return _object_matrix(matrix, transpose=False)

    return build


def _object_matrix(values: list[list[Any]], transpose: bool = True) -> np.ndarray:
    """A 2-D object array from row lists (or from column lists with `transpose`)."""
    rows = list(zip(*values, strict=True)) if transpose else values
    matrix = np.empty((len(rows), len(rows[0]) if rows else 0), dtype=object)
    matrix[:] = rows
    return matrix


# --- KMeans pipelines --------------------------------------------------------------------------


def _kmeans_predictor(model: Any, reference: RowPredictor) -> RowPredictor | None:
    from sklearn.cluster import KMeans
    from sklearn.cluster._kmeans import _labels_inertia
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from coelho_pipelines.models.estimators import FeatureNormalizer

    pipeline = model.estimator
    if not isinstance(pipeline, Pipeline) or [n for n, _ in pipeline.steps] != [
        "normalize",
        "encode",
        "cluster",
    ]:
        return None
    normalize, encode, kmeans = (step for _, step in pipeline.steps)
    if not (
        isinstance(normalize, FeatureNormalizer)
        and isinstance(encode, ColumnTransformer)
        and isinstance(kmeans, KMeans)
        and not encode.sparse_output_
    ):
        return None
    layout: FeatureLayout = normalize.layout
    blocks = []
    for name, transformer, names in encode.transformers_:
        if name == "remainder":
            if transformer != "drop":
                return None
            continue
        if len(names) == 0:  # an empty group (e.g. no categoricals) adds no columns
            continue
        if name == "numeric":
            block = _numeric_block(transformer, list(names), SimpleImputer, StandardScaler)
        elif name == "categorical":
            block = _onehot_block(transformer, list(names), OneHotEncoder)
        else:
            return None
        if block is None:
            return None
        blocks.append((encode.output_indices_[name], block))
    width = max((s.stop for s, _ in blocks), default=0)
    centers = np.ascontiguousarray(kmeans.cluster_centers_, dtype=np.float64)
    if width != centers.shape[1]:
        return None
    encode_rows = _row_encoder(blocks, width)

    def predict(rows: Rows) -> list[Any]:
        n = len(rows)
        encoded = encode_rows(rows) if encode_rows is not None and n else None
        if encoded is None:  # some value is not plain: the pandas branch of the encoding
            columns = normalized_columns(layout, rows)
            encoded = np.zeros((n, width), dtype=np.float64)
            for where, block in blocks:
                encoded[:, where] = block.columns(columns, n)
        if not np.isfinite(encoded).all():  # sklearn rejects these: let it say so
            return reference(rows)
        labels = _labels_inertia(
            encoded, np.ones(n, dtype=np.float64), centers, n_threads=1, return_inertia=False
        )
        return np.asarray(labels, dtype="int64").tolist()

    return predict


class Block(NamedTuple):
    """One encoder block: its output for normalized columns (`normalized_columns`, n rows),
    and for one row of plain values (as `_direct_columns` takes them; None if not plain)."""

    columns: Callable[[Mapping[str, np.ndarray], int], np.ndarray]
    row: Callable[[Mapping[str, Any]], list[float] | None]


def _row_encoder(
    blocks: list[tuple[slice, Block]], width: int
) -> Callable[[Rows], np.ndarray | None] | None:
    """The encoded matrix built row by row from plain values (None when some value is not
    plain), if the blocks' outputs lie side by side in order; else None."""
    ordered = sorted(blocks, key=lambda item: item[0].start)
    stop = 0
    for where, _ in ordered:
        if where.start != stop or where.step not in (None, 1):
            return None
        stop = where.stop
    if stop != width:
        return None
    row_blocks = [block.row for _, block in ordered]

    def encode(rows: Rows) -> np.ndarray | None:
        encoded = []
        for row in rows:
            values: list[float] = []
            for block_row in row_blocks:
                part = block_row(row)
                if part is None:
                    return None
                values += part
            encoded.append(values)
        return np.array(encoded, dtype=np.float64).reshape(len(rows), width)

    return encode


def _numeric_block(
    transformer: Any, names: list[str], imputer_type: Any, scaler_type: Any
) -> Block | None:
    """Median imputation then standard scaling, as the fitted `SimpleImputer` and
    `StandardScaler` compute them (fill the missing, subtract the mean, divide by the scale)."""
    from sklearn.pipeline import Pipeline

    if not isinstance(transformer, Pipeline) or len(transformer.steps) != 2:
        return None
    imputer, scaler = (step for _, step in transformer.steps)
    if not (isinstance(imputer, imputer_type) and isinstance(scaler, scaler_type)):
        return None
    statistics = np.asarray(imputer.statistics_, dtype=np.float64)
    missing = imputer.missing_values
    if (
        imputer.add_indicator
        or not (isinstance(missing, float) and math.isnan(missing))
        or np.isnan(statistics).any()
        or len(statistics) != len(names)
    ):
        return None
    mean = np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean else None
    scale = np.asarray(scaler.scale_, dtype=np.float64) if scaler.with_std else None

    def block(columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        values = np.empty((n, len(names)), dtype=np.float64)
        for j, name in enumerate(names):
            values[:, j] = columns[name]
        holes = np.isnan(values)
        if holes.any():
            values[holes] = np.broadcast_to(statistics, values.shape)[holes]
        if mean is not None:
            values -= mean
        if scale is not None:
            values /= scale
        return values

    # The same IEEE operations one value at a time (python floats are float64).
    fills, means = statistics.tolist(), None if mean is None else mean.tolist()
    scales = None if scale is None else scale.tolist()

    def row(features: Mapping[str, Any]) -> list[float] | None:
        out = []
        for j, name in enumerate(names):
            value = features.get(name)
            kind = type(value)
            if value is None or kind is float and math.isnan(value):
                value = fills[j]
            elif kind is bool or kind is int and -(2**53) <= value <= 2**53:
                value = float(value)
            elif kind is not float:
                return None
            if means is not None:
                value -= means[j]
            if scales is not None:
                value /= scales[j]
            out.append(value)
        return out

    return Block(block, row)


def _onehot_block(encoder: Any, names: list[str], encoder_type: Any) -> Block | None:
    """One-hot columns from the fitted categories; an unseen value is all zeros (as
    `handle_unknown="ignore"`)."""
    if not (
        isinstance(encoder, encoder_type)
        and encoder.handle_unknown == "ignore"
        and encoder.drop_idx_ is None
        and not getattr(encoder, "_infrequent_enabled", False)
        and np.dtype(encoder.dtype) == np.float64
        and len(encoder.categories_) == len(names)
    ):
        return None
    tables, offsets, width = [], [], 0
    for categories in encoder.categories_:
        if categories.dtype != object or not all(isinstance(c, str) for c in categories):
            return None
        tables.append({value: i for i, value in enumerate(categories)})
        offsets.append(width)
        width += len(categories)

    def block(columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        values = np.zeros((n, width), dtype=np.float64)
        for name, table, offset in zip(names, tables, offsets, strict=True):
            for i, value in enumerate(columns[name].tolist()):
                index = table.get(value)
                if index is not None:
                    values[i, offset + index] = 1.0
        return values

    def row(features: Mapping[str, Any]) -> list[float] | None:
        out = [0.0] * width
        for name, table, offset in zip(names, tables, offsets, strict=True):
            value = features.get(name)
            kind = type(value)
            if value is None:
                value = MISSING
            elif kind is bool:
                value = "true" if value else "false"
            elif kind is not str:
                return None
            index = table.get(value)
            if index is not None:
                out[offset + index] = 1.0
        return out

    return Block(block, row)


# --- the self-check ----------------------------------------------------------------------------


def _probe_rows(model: Any) -> list[dict[str, Any]]:
    """Rows that exercise every encoding branch: missing values, seen and unseen categories,
    booleans, zeros and large values."""
    layout: FeatureLayout = model.input_layout
    seen = _seen_categories(model)
    numbers = [0.0, 1.0, -3.5, 17.25, 1234.5, None, 86.0, 2.0]
    rows = []
    for i, number in enumerate(numbers):
        row: dict[str, Any] = {name: number for name in layout.numeric}
        for j, name in enumerate(layout.categorical):
            options = [*seen.get(name, []), MISSING, None, True, "unseen-value"]
            row[name] = options[(i + j) % len(options)]
        rows.append(row)
    return rows


def _seen_categories(model: Any) -> dict[str, list[str]]:
    if model.task != "clustering":
        return {}
    encode = model.estimator.named_steps.get("encode")
    onehot = getattr(encode, "named_transformers_", {}).get("categorical")
    if onehot is None:
        return {}
    layout: FeatureLayout = model.input_layout
    return {
        name: [str(c) for c in cats]
        for name, cats in zip(layout.categorical, getattr(onehot, "categories_", []), strict=False)
    }


def _agrees(fast: RowPredictor, reference: RowPredictor, rows: list[dict[str, Any]]) -> bool:
    """Identical outputs one row at a time and all rows in one call."""
    try:
        expected = reference(rows)
        if fast(rows) != expected:
            return False
        return all(fast([row]) == [value] for row, value in zip(rows, expected, strict=True))
    except Exception:  # noqa: BLE001 - a fast path that cannot score the probes is not used
        return False


__all__ = [
    "RowPredictor",
    "compile_predictor",
    "frame_predictor",
    "is_compiled",
    "normalized_columns",
    "output_column",
]
