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
from typing import Any

import numpy as np
import pandas as pd
import pytest

from coelho_pipelines.models import batch_model, fast_predict
from coelho_pipelines.models.encoding import FeatureLayout
from coelho_pipelines.use_cases import all_specs, get_spec
from coelho_serving.frozen import FrozenARFClassifier, FrozenARFRegressor, freeze, frozen_model

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


# --- incremental: frozen forests ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tfd_learned() -> tuple[Any, list[dict[str, Any]]]:
    from coelho_pipelines.incremental.learner import Learner, Record

    spec = get_spec("tfd")
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
    frozen = frozen_model(model)
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
    frozen = frozen_model(model)
    if aggregation == "median":  # the median reads no metric: served as it is
        assert frozen is None
        return
    assert isinstance(frozen, FrozenARFRegressor)
    assert [frozen.predict_one(x) for x, _ in data] == [model.predict_one(x) for x, _ in data]


def test_models_without_vote_weights_are_served_as_they_are() -> None:
    from coelho_pipelines.incremental.learner import Learner, Record

    spec = get_spec("ecci")
    learner = Learner(spec)
    learner.learn_many(Record(event) for event in _events(spec, 200, seed=1))
    assert freeze(learner.bundle) is learner.bundle
