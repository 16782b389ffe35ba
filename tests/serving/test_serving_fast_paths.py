"""The serving fast paths give exactly the outputs of the models they stand in for.

- Batch: `fast_predict.compile_predictor` (numpy KMeans encoding, CatBoost on plain rows)
  against `predict_frame` on the test split of real models trained by `batch_model.train`,
  one row per call and all rows in one call (the micro-batcher's case).
- Incremental: `frozen.freeze` (forest vote weights read once) against the learner's own
  model, on real River models: the tfd learner and River forests on synthetic streams.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from coelho_pipelines.accel import fast_predict
from coelho_pipelines.models import batch_model
from coelho_pipelines.models.encoding import FeatureLayout
from coelho_pipelines.use_cases import all_specs, get_spec
from coelho_serving.accel.frozen import (
    FrozenARFClassifier,
    FrozenARFRegressor,
    freeze,
    served_model,
)

KEYS = [spec.key for spec in all_specs()]
EVENTS = 2000
PARAMS = {"iterations": 60, "early_stopping_rounds": 20, "thread_count": 1, "k_min": 3,
          "k_max": 5, "n_init": 2, "silhouette_sample_size": 500}  # fmt: skip


def _events(spec: Any, n: int, seed: int) -> list[dict[str, Any]]:
    options = {"fraud_rate": 0.1} if spec.task == "classification" else {}
    return list(itertools.islice(spec.generator(seed=seed, **options), n))


@pytest.fixture(scope="module", params=KEYS)
def batch_case(request: pytest.FixtureRequest) -> tuple[Any, Any, list[dict[str, Any]]]:
    """(spec, trained CoelhoBatchModel, feature rows of the test split)."""
    return _trained_case(request.param)


@functools.cache
def _trained_case(key: str) -> tuple[Any, Any, list[dict[str, Any]]]:
    spec = get_spec(key)
    events = _events(spec, EVENTS, seed=3)
    rows = []
    for event in events:
        row = spec.extract_features(event)
        if spec.label_field:
            row[spec.label_field] = event[spec.label_field]
        rows.append(row)
    frame = pd.DataFrame(rows)
    train, validation = frame.iloc[:1200], frame.iloc[1200:1500]
    layout = FeatureLayout.of(spec.features)
    trained = batch_model.train(
        spec.task, spec.key, layout, train, validation, spec.label_field, PARAMS, spec.batch_model
    )
    test_rows = [spec.extract_features(event) for event in events[1500:]]
    return spec, trained.model, test_rows


def test_batch_fast_path_equals_predict_frame_on_the_test_split(batch_case: Any) -> None:
    spec, model, rows = batch_case
    predictor = fast_predict.compile_predictor(model)
    assert fast_predict.is_compiled(predictor), spec.key
    reference = fast_predict.frame_predictor(model)  # predict_frame's served column
    expected = [reference([row])[0] for row in rows]
    assert predictor(rows) == expected  # one call for all rows (a micro-batch)
    assert [predictor([row])[0] for row in rows] == expected  # one row per call
    assert all(type(value) is type(expected[0]) for value in predictor(rows[:5]))


def test_batch_fast_path_on_missing_unseen_and_odd_values(batch_case: Any) -> None:
    """Missing numerics and categoricals, unseen categories, booleans, numbers as strings
    (the pandas branch of the encoding): still exactly `predict_frame`."""
    spec, model, rows = batch_case
    layout = model.input_layout
    odd = []
    for i, row in enumerate(rows[:40]):
        row = dict(row)
        name = layout.order[i % len(layout.order)]
        row[name] = [None, "never-seen", True, float("nan"), 0][i % 5]
        if i % 7 == 0 and layout.numeric:
            row[layout.numeric[0]] = "12.5"
        odd.append(row)
    reference = fast_predict.frame_predictor(model)
    predictor = fast_predict.compile_predictor(model)
    assert predictor(odd) == reference(odd)
    assert [predictor([row])[0] for row in odd] == reference(odd)


def test_batch_fast_path_falls_back_when_the_model_is_not_replicated() -> None:
    """A fitted KMeans encoding setting the fast path does not replicate: the reference path
    is served."""
    _, model, _ = _trained_case(next(s.key for s in all_specs() if s.task == "clustering"))
    import copy

    changed = copy.deepcopy(model)
    changed.estimator.named_steps["encode"].named_transformers_["categorical"].drop_idx_ = np.zeros(
        len(model.input_layout.categorical), dtype=int
    )
    predictor = fast_predict.compile_predictor(changed)
    assert not fast_predict.is_compiled(predictor)


def _catboost_cases() -> list[str]:
    return [spec.key for spec in all_specs() if spec.task != "clustering"]


@pytest.mark.parametrize("key", KEYS)
def test_batch_fast_path_batches_of_every_size_and_mixed_rows(key: str) -> None:
    """Batches of 1..64 rows, and batches where one odd row sends the whole call through the
    pandas branch of the encoding: exactly `predict_frame`, row for row."""
    _, model, rows = _trained_case(key)
    predictor = fast_predict.compile_predictor(model)
    assert fast_predict.is_compiled(predictor)
    reference = fast_predict.frame_predictor(model)
    expected = [reference([row])[0] for row in rows[:64]]
    for size in (1, 2, 7, 16, 64):
        assert predictor(rows[:size]) == expected[:size], size
    layout = model.input_layout
    odd = [dict(row) for row in rows[:16]]
    odd[5][layout.numeric[0]] = "12.5"  # a number as a string: not a plain value
    odd[9][layout.numeric[-1]] = 2**60  # an int beyond float precision
    odd[11][layout.categorical[0]] = 7  # a number where a category goes
    assert predictor(odd) == reference(odd)
    assert predictor(odd[:5]) == expected[:5]


@pytest.mark.parametrize("key", KEYS)
def test_batch_fast_path_on_extreme_and_special_values(key: str) -> None:
    """Every numeric at once missing, NaN, zero, negative zero, huge, tiny, infinite, bool and
    int; categoricals empty, unseen, missing and bool: exactly `predict_frame` (KMeans: the
    infinite rows are the reference's to reject)."""
    _, model, rows = _trained_case(key)
    layout = model.input_layout
    numbers = [None, float("nan"), 0.0, -0.0, 1e300, -1e-300, float("inf"), float("-inf"),
               True, False, 3, -(2**53), 2**53]  # fmt: skip
    categories = ["", "never-seen", None, True, False, "__missing__", "ü-ñ"]
    odd = []
    for i in range(max(len(numbers), len(categories))):
        row = dict(rows[i])
        for j, name in enumerate(layout.numeric):
            row[name] = numbers[(i + j) % len(numbers)]
        for j, name in enumerate(layout.categorical):
            row[name] = categories[(i + j) % len(categories)]
        odd.append(row)
    predictor = fast_predict.compile_predictor(model)
    assert fast_predict.is_compiled(predictor)
    reference = fast_predict.frame_predictor(model)
    if model.task == "clustering":  # sklearn refuses infinite inputs, on either path
        odd = [row for row in odd if _finite(row, layout)]
    expected = reference(odd)
    assert predictor(odd) == expected
    assert [predictor([row])[0] for row in odd] == expected


def _finite(row: dict[str, Any], layout: FeatureLayout) -> bool:
    return not any(
        isinstance(row[name], float) and math.isinf(row[name]) for name in layout.numeric
    )


@pytest.mark.parametrize("key", _catboost_cases())
def test_catboost_prediction_copy_keeps_the_model_and_its_predictions(key: str) -> None:
    """The copy the fast path scores with: the served model's metadata untouched, the copy's
    training parameters cut to the loss and class names, and CatBoost's own public `predict`
    on the copy equal to the original's."""
    import json

    _, model, rows = _trained_case(key)
    booster = model.estimator.model_
    before = dict(booster.get_metadata())
    copy = fast_predict._prediction_copy(booster)
    assert dict(booster.get_metadata()) == before
    params = json.loads(copy.get_metadata()["params"])
    assert params["loss_function"] == json.loads(before["params"])["loss_function"]
    assert set(params) <= {"loss_function", "data_processing_options", "boosting_options"}
    frame = model.input_layout.frame_from_rows(rows)
    if model.task == "classification":
        assert (copy.predict_proba(frame) == booster.predict_proba(frame)).all()
        assert (copy.predict(frame) == booster.predict(frame)).all()
    else:
        assert (copy.predict(frame) == booster.predict(frame)).all()


def test_catboost_fast_path_for_a_poisson_regressor() -> None:
    """A regressor whose prediction is `Exponent` (Poisson loss): exactly `predict_frame`."""
    from catboost import CatBoostRegressor

    from coelho_pipelines.use_cases.model_factories import CATBOOST_DEFAULTS

    spec = get_spec(next(key for key in _catboost_cases() if get_spec(key).task == "regression"))
    events = _events(spec, 900, seed=5)
    frame = pd.DataFrame(
        [{**spec.extract_features(e), spec.label_field: e[spec.label_field]} for e in events]
    )

    def poisson(**params: Any) -> Any:
        settings = CATBOOST_DEFAULTS | params
        return CatBoostRegressor(
            loss_function="Poisson", verbose=False, allow_writing_files=False, **settings
        )

    layout = FeatureLayout.of(spec.features)
    trained = batch_model.train(
        spec.task, spec.key, layout, frame.iloc[:600], frame.iloc[600:750], spec.label_field,
        PARAMS, poisson,
    )  # fmt: skip
    model = trained.model
    assert model.estimator.model_._get_default_prediction_type() == "Exponent"
    rows = [spec.extract_features(e) for e in events[750:]]
    predictor = fast_predict.compile_predictor(model)
    assert fast_predict.is_compiled(predictor)
    expected = fast_predict.frame_predictor(model)(rows)
    assert predictor(rows) == expected
    assert [predictor([row])[0] for row in rows] == expected


def test_plain_matrix_holds_the_normalized_values() -> None:
    """Pure logic: the object matrix built from plain values holds what `normalized_columns`
    gives (NaN for missing numerics), and non-plain values are left to the pandas branch."""
    layout = FeatureLayout(("x", "y"), ("c",), ("x", "c", "y"))
    build = fast_predict._plain_matrix_builder(layout)
    rows = [{"x": 1, "y": None, "c": True}, {"x": 2.5, "y": False, "c": None},
            {"x": -0.0, "y": 2**53, "c": "a"}, {"c": "b"}]  # fmt: skip
    matrix = build(rows)
    columns = fast_predict.normalized_columns(layout, rows)
    for j, name in enumerate(layout.order):
        got, want = matrix[:, j].tolist(), columns[name].tolist()
        assert [type(v) for v in got] == [type(v) for v in want]
        assert [repr(v) for v in got] == [repr(v) for v in want]
    for odd in ({"x": "1"}, {"x": 2**53 + 1}, {"x": np.float64(1.0)}, {"c": 1}, {"c": 1.5}):
        assert build([rows[0], {**rows[1], **odd}]) is None


def test_kmeans_row_encoding_equals_the_column_encoding() -> None:
    """The KMeans encoding built row by row from plain values (the served path) is the matrix
    the column blocks build from `normalized_columns`, bit for bit, on every value kind."""
    _, model, rows = _trained_case(next(s.key for s in all_specs() if s.task == "clustering"))
    layout = model.input_layout
    numbers = [None, float("nan"), 0.0, -0.0, 1e300, -1e-300, True, False, 3, 2**53]
    categories = ["", "never-seen", None, True, False, "__missing__"]
    odd = []
    for i, row in enumerate(rows[:40]):
        row = dict(row)
        name = layout.numeric[i % len(layout.numeric)]
        row[name] = numbers[i % len(numbers)]
        row[layout.categorical[i % len(layout.categorical)]] = categories[i % len(categories)]
        odd.append(row)
    encode = model.estimator.named_steps["encode"]
    expected = encode.transform(model.input_layout.frame_from_rows(odd))
    predictor = fast_predict.compile_predictor(model)
    assert fast_predict.is_compiled(predictor)
    encoded = _kmeans_rows_encoded(model, odd)
    assert encoded.tobytes() == np.asarray(expected, dtype=np.float64).tobytes()


def _kmeans_rows_encoded(model: Any, rows: list[dict[str, Any]]) -> np.ndarray:
    """The served row encoder of a KMeans model, rebuilt as `_kmeans_predictor` builds it."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    encode = model.estimator.named_steps["encode"]
    blocks = []
    for name, transformer, names in encode.transformers_:
        if name == "numeric":
            block = fast_predict._numeric_block(
                transformer, list(names), SimpleImputer, StandardScaler
            )
        elif name == "categorical":
            block = fast_predict._onehot_block(transformer, list(names), OneHotEncoder)
        else:
            continue
        blocks.append((encode.output_indices_[name], block))
    width = max(where.stop for where, _ in blocks)
    encoder = fast_predict._row_encoder(blocks, width)
    assert encoder is not None
    encoded = encoder(rows)
    assert encoded is not None
    return encoded


# --- incremental: frozen forests ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tfd_learned() -> tuple[Any, list[dict[str, Any]]]:
    import dataclasses

    from coelho_pipelines.incremental.learner import Learner, Record

    # the forest alone: with its challengers the learner may serve another candidate by now
    spec = dataclasses.replace(get_spec("tfd"), river_challengers=())
    events = _events(spec, 2500, seed=9)
    learner = Learner(spec)
    learner.learn_many(Record(event) for event in events[:1500])
    return learner.bundle, events


def test_frozen_tfd_model_predicts_exactly_like_the_learners(tfd_learned: Any) -> None:
    bundle, events = tfd_learned
    served = freeze(bundle)
    assert isinstance(served.model.classifier, FrozenARFClassifier)
    assert served is not bundle and bundle.model is not served.model  # the learner's untouched
    assert [served.predict(e) for e in events] == [bundle.predict(e) for e in events]


def test_frozen_weights_are_the_metric_values_and_reads_change_nothing(tfd_learned: Any) -> None:
    bundle, _ = tfd_learned
    forest = bundle.model.classifier
    frozen = FrozenARFClassifier(forest)
    assert frozen.weights == [metric.get() for metric in forest._metrics]
    assert frozen.weights == [metric.get() for metric in forest._metrics]


def _stream(dataset: Any, n: int) -> list[tuple[dict, Any]]:
    return list(itertools.islice(dataset, n))


@pytest.mark.parametrize("weighted", [True, False])
def test_frozen_arf_classifier_on_a_synthetic_stream(weighted: bool) -> None:
    from river import forest
    from river.datasets import synth

    data = _stream(synth.Agrawal(seed=4), 2500)
    model = forest.ARFClassifier(n_models=5, seed=2, disable_weighted_vote=not weighted)
    for x, y in data[:1500]:
        model.learn_one(x, y)
    frozen = served_model(model)
    assert isinstance(frozen, FrozenARFClassifier)
    for x, _ in data:
        assert frozen.predict_proba_one(x) == model.predict_proba_one(x)
        assert frozen.predict_one(x) == model.predict_one(x)


@pytest.mark.parametrize("aggregation", ["mean", "median"])
def test_frozen_arf_regressor_on_a_synthetic_stream(aggregation: str) -> None:
    from river import forest
    from river.datasets import synth

    data = _stream(synth.Friedman(seed=4), 2500)
    model = forest.ARFRegressor(
        n_models=5, seed=2, aggregation_method=aggregation, disable_weighted_vote=False
    )
    for x, y in data[:1500]:
        model.learn_one(x, y)
    frozen = served_model(model)  # the median reads no metric, its trees are compiled
    assert isinstance(frozen, FrozenARFRegressor)
    assert [frozen.predict_one(x) for x, _ in data] == [model.predict_one(x) for x, _ in data]


def test_models_without_vote_weights_are_served_as_they_are() -> None:
    from coelho_pipelines.incremental.learner import Learner, Record

    spec = get_spec("ecci")
    learner = Learner(spec)
    learner.learn_many(Record(event) for event in _events(spec, 200, seed=1))
    assert freeze(learner.bundle) is learner.bundle


# --- the batch fences -------------------------------------------------------------------------


def test_batch_fast_path_off_the_allow_list_serves_predict_frame(
    batch_case: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coelho_pipelines.accel.fence import Fence

    spec, model, rows = batch_case
    kind = fast_predict._kind(model)
    assert kind is not None
    name = "CATBOOST" if kind.fence is fast_predict.CATBOOST else "SKLEARN"
    gate = Fence(name, kind.fence.distribution, kind.fence.versions, version=lambda _d: "0.fake")
    monkeypatch.setattr(fast_predict, name, gate)
    predictor = fast_predict.compile_predictor(model)
    assert not fast_predict.is_compiled(predictor), spec.key
    assert predictor(rows[:20]) == fast_predict.frame_predictor(model)(rows[:20])
    assert "not on the allow-list" in gate.reason()


def test_batch_fast_path_whose_probe_disagrees_serves_predict_frame(
    batch_case: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A deliberately broken compiled predictor (a fake): the per-model probe catches it."""
    import logging

    spec, model, rows = batch_case
    real = fast_predict._kind(model)
    assert real is not None

    def fake_broken_compiler(model: Any, reference: Any) -> Any:
        fast = real.compile(model, reference)
        return lambda rows: [value + 1 for value in fast(rows)]

    monkeypatch.setattr(
        fast_predict, "_kind", lambda _m: fast_predict.Kind(real.fence, fake_broken_compiler)
    )
    with caplog.at_level(logging.WARNING, logger="coelho.accel"):
        predictor = fast_predict.compile_predictor(model)
    assert not fast_predict.is_compiled(predictor), spec.key
    assert predictor(rows[:20]) == fast_predict.frame_predictor(model)(rows[:20])
    assert any("disagrees" in r.getMessage() for r in caplog.records if r.name == "coelho.accel")


def test_batch_fast_path_off_with_coelho_accel_0(
    batch_case: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, model, _ = batch_case
    monkeypatch.setenv("COELHO_ACCEL", "0")
    assert not fast_predict.is_compiled(fast_predict.compile_predictor(model)), spec.key
