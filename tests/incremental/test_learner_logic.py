"""Pure logic of the incremental learner: features, metrics, drift, signing, captures.

No services: events come from the generators, records are built in memory.
"""

from __future__ import annotations

import inspect
import json
import math
import pickle
from datetime import timedelta

import pytest
from incremental_helpers import generate, records, thresholded

from coelho_pipelines import signing
from coelho_pipelines.incremental.capture import Capturer
from coelho_pipelines.incremental.drift import DriftMonitor
from coelho_pipelines.incremental.features import ONE_HOT_VALUE, FeaturePipeline
from coelho_pipelines.incremental.learner import Learner, Record, feature_pipeline
from coelho_pipelines.incremental.metrics import MetricSet
from coelho_pipelines.use_cases import all_specs, get_spec
from coelho_pipelines.use_cases.ecci.spec import ECCI_CANDIDATES

TFD, ETA, ECCI = get_spec("tfd"), get_spec("eta"), get_spec("ecci")
# Metrics River's progressive_val_score cannot compute for us: time-rolling ones need the
# event time, RMSLE raises on predictions below -1 (we skip those events for it only),
# and the two report metrics are compared through their dict forms elsewhere.
NOT_IN_PVS = ("TimeRolling", "RMSLE", "ConfusionMatrix", "ClassificationReport")


def _progressive(spec, events, metrics: dict, candidate=None) -> dict:
    """River's own progressive validation of a candidate pipeline (default: the spec's
    model) on the same events, in the candidate's encoding; a classifier decides with the
    learner's online threshold."""
    from river import evaluate
    from river.metrics.base import Metrics

    candidate = candidate or spec.river_candidates[0]
    factory = candidate.factory
    features = (
        FeaturePipeline(spec, numeric_only=False)
        if candidate.native_features
        else feature_pipeline(spec)
    )
    dataset = [(features.learn_transform(e), spec.label(e)) for e in events]
    # River's Metrics container passes a weight that some metrics (RollingROCAUC) refuse:
    # those get a run of their own.
    weighted = [m for m in metrics.values() if "w" in inspect.signature(m.update).parameters]
    runs = [m for m in metrics.values() if all(m is not w for w in weighted)]
    if spec.task != "clustering":
        # One container of label metrics, one of probability metrics: a mixed container is
        # fed probabilities and takes their argmax, not the model's `predict_one`.
        for labels in (True, False):
            group = [m for m in weighted if getattr(m, "requires_labels", True) is labels]
            if group:
                runs.append(Metrics(group))
    else:
        runs += weighted
    for metric in runs:
        model = factory()
        if spec.task == "classification":
            model = thresholded(model)
        evaluate.progressive_val_score(dataset, model, metric)
    return {name: metric.get() for name, metric in metrics.items()}


@pytest.mark.parametrize(
    ("spec", "options"),
    [(TFD, {"fraud_rate": 0.1}), (ETA, {}), (ECCI, {})],
    ids=["tfd", "eta", "ecci"],
)
def test_prequential_metrics_equal_river_progressive_val_score(spec, options) -> None:
    n = 600 if spec.task == "clustering" else 400  # past the k-means warm-up (200 events)
    events = generate(spec, n, seed=3, **options)
    learner = Learner(spec)
    learner.learn_many(records(events))
    assert learner.events_learned == n
    comparable = {
        name: metric
        for name, metric in spec.river_metrics().items()
        if not name.startswith(NOT_IN_PVS) and (spec.task != "clustering" or name == "Silhouette")
    }
    assert len(comparable) == {"classification": 14, "regression": 8, "clustering": 1}[spec.task]
    assert list(learner.challengers.candidates) == [c.name for c in spec.river_candidates]
    for candidate in spec.river_candidates:  # every candidate, served or not
        state = learner.challengers.candidates[candidate.name]
        mine = state.metrics.values()
        fresh = {name: spec.river_metrics()[name] for name in comparable}
        expected = _progressive(spec, events, fresh, candidate)
        assert {name: mine[name] for name in expected} == expected, candidate.name
    served = learner.challengers.served
    assert learner.metric_values() == {
        **served.metrics.values(),
        **({} if served.threshold is None else {"decision_threshold": served.threshold.value}),
    }
    if spec.task == "classification":  # the threshold moved off argmax, so this tests it
        assert {c.threshold.value for c in learner.challengers.candidates.values()} != {0.5}


def test_rolling_silhouette_equals_river_rolling_silhouette() -> None:
    from river import metrics, utils

    events = generate(ECCI, 900, seed=5)
    learner = Learner(ECCI)
    learner.learn_many(records(events))
    features, model = feature_pipeline(ECCI), ECCI.river_model()
    rolling = utils.Rolling(metrics.Silhouette, window_size=1000)
    window = utils.Rolling(metrics.Silhouette, window_size=50)
    mine_window = Learner(ECCI)
    mine_window.progress.metrics.metrics["RollingSilhouette"] = utils.Rolling(
        type(learner.progress.metrics.metrics["Silhouette"]), window_size=50
    )
    mine_window.learn_many(records(events))
    for event in events:
        x = features.learn_transform(event)
        cluster = model.predict_one(x)
        rolling.update(x, cluster, model.centers)
        window.update(x, cluster, model.centers)
        model.learn_one(x)
    values = learner.metric_values()
    assert values["RollingSilhouette"] == rolling.get()
    assert mine_window.progress.metrics.values()["RollingSilhouette"] == window.get()
    assert values["n_clusters"] == model.n_clusters > 0


def test_time_rolling_metric_uses_event_time() -> None:
    # ~20 s apart in event time; a fixed start, as the rate follows the hour of day
    events = generate(ETA, 300, seed=9, events_per_second=0.05, start="2026-03-02T12:00:00Z")
    learner = Learner(ETA)
    steps = learner.learn_many(records(events))
    values = learner.metric_values()
    last = learner.decode(events[-1])[1]
    recent = [
        abs(e[ETA.label_field] - s.prediction)
        for e, s in zip(events, steps, strict=True)
        if learner.decode(e)[1] > last - timedelta(minutes=5)
    ]
    assert 5 < len(recent) < 100
    assert values["TimeRollingMAE"] == pytest.approx(sum(recent) / len(recent))
    assert values["TimeRollingMAE"] != pytest.approx(values["MAE"])


def test_report_metrics_are_json_dicts_consistent_with_the_scalars() -> None:
    learner = Learner(TFD)
    learner.learn_many(records(generate(TFD, 300, seed=4, fraud_rate=0.2)))
    values = json.loads(json.dumps(learner.metric_values()))
    matrix = values["ConfusionMatrix"]
    assert matrix["labels"] == [0, 1]
    assert sum(map(sum, matrix["matrix"])) == matrix["total"] > 250
    report = values["ClassificationReport"]
    assert report["accuracy"] == round(values["Accuracy"], 4)
    assert report["classes"]["1"]["recall"] == round(values["Recall"], 4)
    assert report["classes"]["1"]["support"] == sum(matrix["matrix"][1])


def test_ecci_metrics_and_cluster_analytics() -> None:
    events = generate(ECCI, 500, seed=8)
    learner = Learner(ECCI)
    learner.learn_many(records(events))
    values = learner.metric_values()
    assert set(values) == {
        "Silhouette",
        "RollingSilhouette",
        "TimeRollingSilhouette",
        "n_clusters",
        "n_micro_clusters",
    }
    assert values["n_clusters"] >= 1 and values["n_micro_clusters"] >= values["n_clusters"]
    analytics = json.loads(json.dumps(learner.progress.analytics.to_dict()))
    assert sum(analytics["samples_per_cluster"].values()) == 500
    assert set(analytics["features"]) == set(ECCI.categorical_features)
    event_types = analytics["features"]["event_type"]
    assert sum(sum(c.values()) for c in event_types.values()) == 500
    searches = sum(1 for e in events if e["event_type"] == "search")
    assert sum(c.get("search", 0) for c in event_types.values()) == searches


def test_ecci_features_are_dense_scaled_and_one_hot() -> None:
    pipeline = FeaturePipeline(ECCI)
    events = generate(ECCI, 200, seed=1)
    encoded = [pipeline.learn_transform(e) for e in events]
    keys = list(encoded[0])
    assert all(list(x) == keys for x in encoded)  # every key always present
    assert keys == pipeline.output_names
    assert all(isinstance(v, float) for x in encoded for v in x.values())
    search = next(i for i, e in enumerate(events) if e["event_type"] == "search")
    assert encoded[search]["price"] == 0.0  # missing numeric -> the running mean
    assert encoded[search]["event_type=search"] == ONE_HOT_VALUE
    prices = [x["price"] for x, e in zip(encoded, events, strict=True) if e["price"] is not None]
    assert max(abs(p) for p in prices) < 10  # standardised, not raw dollars
    clone = pickle.loads(pickle.dumps(pipeline))  # extractors are rebuilt from the spec
    assert clone.transform(events[0]) == pipeline.transform(events[0])


def test_classification_features_keep_nominals_and_turn_bools_into_ints() -> None:
    event = generate(TFD, 1)[0]
    x = FeaturePipeline(TFD).transform(event)
    assert x["cvv_provided"] in (0, 1) and not isinstance(x["cvv_provided"], bool)
    assert x["currency"] == event["currency"]
    assert set(x) == set(TFD.feature_names)


def test_bad_events_are_counted_and_skipped_without_stopping_learning() -> None:
    good = generate(ETA, 60, seed=2)
    bad = [
        b"{not json",
        b"",
        json.dumps(good[0] | {"weather": "Snow"}).encode(),
        json.dumps({k: v for k, v in good[0].items() if k != "driver_rating"}).encode(),
        json.dumps(good[0] | {"estimated_distance_km": "far"}).encode(),
        b"[1, 2, 3]",
    ]
    stream = (
        [json.dumps(e).encode() for e in good[:30]]
        + bad
        + [json.dumps(e).encode() for e in good[30:]]
    )
    learner = Learner(ETA)
    steps = learner.learn_many([Record(v, 1, i) for i, v in enumerate(stream)])
    assert learner.progress.bad_events == len(bad)
    assert learner.events_learned == len(good)
    assert [s.error is not None for s in steps] == [False] * 30 + [True] * 6 + [False] * 30
    assert learner.progress.offsets == {1: len(stream)}  # bad offsets are consumed too


def test_an_offset_is_never_learned_twice() -> None:
    events = generate(ETA, 20)
    learner = Learner(ETA)
    learner.learn_many(records(events))
    replay = learner.learn_many(records(events[:5]))
    assert learner.events_learned == 20
    assert all(s.error == "already learned" for s in replay)


def test_drift_monitor_flags_a_worse_error_not_an_improvement() -> None:
    import random

    rng = random.Random(1)
    worse = DriftMonitor(warmup_events=100)
    found = [
        worse.update(float(rng.random() < (0.1 if i < 1000 else 0.6)), i, "t") for i in range(1600)
    ]
    drifts = [d for d in found if d is not None]
    assert drifts and 1000 <= drifts[0].events_learned < 1200
    assert drifts[0].error_after > drifts[0].error_before
    better = DriftMonitor(warmup_events=100)
    found = [
        better.update(float(rng.random() < (0.6 if i < 1000 else 0.1)), i, "t") for i in range(1600)
    ]
    assert not any(found)


def test_live_model_predicts_the_api_fields_and_survives_pickling() -> None:
    for spec, keys in (
        (TFD, {"fraud_probability", "prediction", "decision_threshold"}),
        (ETA, {"estimated_travel_time_seconds"}),
        (ECCI, {"cluster"}),
    ):
        events = generate(spec, 120, seed=6)
        learner = Learner(spec)
        learner.learn_many(records(events))
        bundle = pickle.loads(pickle.dumps(learner.bundle))
        prediction = bundle.predict(events[0])
        assert set(prediction) == keys == set(spec.prediction_keys)
        assert prediction == learner.bundle.predict(events[0])
        assert bundle.events_learned == 120
        del bundle.prediction_key  # as a bundle pickled before specs declared the key
        assert bundle.predict(events[0]) == prediction


def test_signed_payloads_refuse_tampering_and_other_keys(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("COELHO_HOME", str(tmp_path))
    monkeypatch.delenv(signing.KEY_ENV, raising=False)
    blob = signing.dumps({"model": [1, 2, 3]})
    assert (tmp_path / signing.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert signing.loads(blob) == {"model": [1, 2, 3]}
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(signing.SignatureError, match="signature"):
        signing.loads(tampered)
    with pytest.raises(signing.SignatureError, match="not signed"):
        signing.loads(pickle.dumps({"model": 1}))
    with pytest.raises(signing.SignatureError, match="truncated"):
        signing.loads(blob[: len(signing.MAGIC) + 3])
    monkeypatch.setenv(signing.KEY_ENV, "another key")
    with pytest.raises(signing.SignatureError):
        signing.loads(blob)


@pytest.mark.parametrize("mode", ["fork", "inline"])
def test_captures_hold_a_consistent_signed_copy(mode, tmp_path) -> None:
    events = generate(TFD, 150, seed=12, fraud_rate=0.1)
    learner = Learner(TFD)
    learner.learn_many(records(events[:100]))
    capturer = Capturer(mode, tmp_path / "captures")
    capture = capturer.capture(learner.bundle, learner.progress, snapshot=True)
    expected = learner.bundle.predict(events[120])
    learner.learn_many(records(events[100:]))  # keeps learning while the copy is written
    assert capture.wait(), capture.error
    bundle = signing.loads(capture.bundle_path.read_bytes())
    progress = signing.loads(capture.progress_path.read_bytes())
    assert bundle.events_learned == progress.events_learned == capture.events_learned == 100
    assert bundle.predict(events[120]) == expected
    assert progress.offsets == {0: 100} == capture.offsets
    capture.retain()
    capture.release()
    assert not capture.directory.exists()
    capturer.close()


def test_metric_set_skips_values_outside_a_metric_domain() -> None:
    metrics = MetricSet(ETA)
    from datetime import datetime

    metrics.update_regression(100.0, -5.0, datetime(2026, 1, 1))  # log(-4) is undefined
    assert metrics.skipped == {"RMSLE": 1}
    assert metrics.values()["MAE"] == 105.0
    assert metrics.values()["RMSLE"] is None or math.isfinite(metrics.values()["RMSLE"])


def test_histogram_rocauc_equals_river_rocauc_with_updates_and_reverts() -> None:
    import random

    from river import metrics

    from coelho_pipelines.incremental.metrics import HistogramROCAUC

    rng = random.Random(3)
    ours, river = HistogramROCAUC(50, pos_val=1), metrics.ROCAUC(n_thresholds=50, pos_val=1)
    seen = []
    for i in range(2000):
        y = int(rng.random() < 0.2)
        p = min(1.0, max(0.0, rng.gauss(0.6 if y else 0.35, 0.25)))
        y_pred = {0: 1 - p, 1: p} if i % 2 else p
        for metric in (ours, river):
            metric.update(y, y_pred)
        seen.append((y, y_pred))
        if i % 7 == 0:
            old = seen.pop(0)
            for metric in (ours, river):
                metric.revert(*old)
        if i % 250 == 0:
            assert ours.get() == river.get()
    assert ours.get() == river.get() and 0.6 < ours.get() < 0.95


def test_auto_capture_forks_until_pickling_proves_cheap(tmp_path) -> None:
    learner = Learner(ECCI)
    learner.learn_many(records(generate(ECCI, 50, seed=2)))
    capturer = Capturer("auto", tmp_path / "captures")
    first = capturer.capture(learner.bundle, learner.progress, snapshot=False)
    assert first.pid is not None  # cost unknown: fork
    assert first.wait() and first.pickle_seconds is not None
    second = capturer.capture(learner.bundle, learner.progress, snapshot=False)
    assert second.pid is None and second.ok  # a tiny DBSTREAM pickles faster than a fork
    for capture in (first, second):
        capture.retain()
        capture.release()
    capturer.close()


def test_auto_capture_predicts_the_pickle_cost_from_the_model_growth(tmp_path) -> None:
    from coelho_pipelines.incremental.capture import FORK_ABOVE_SECONDS, Capture

    capturer = Capturer("auto", tmp_path / "captures")
    cheap = FORK_ABOVE_SECONDS / 4
    capturer._last = Capture(tmp_path, 100, {}, 0, False, 0.0, pickle_seconds=cheap)
    assert not capturer._use_fork("auto", 100)
    assert not capturer._use_fork("auto", 399)  # predicted just under the cost of a fork
    assert capturer._use_fork("auto", 600)  # six times the events: ~1.5 forks' worth
    assert capturer._use_fork("fork", 100) and not capturer._use_fork("inline", 600)
    capturer._last = Capture(tmp_path, 0, {}, 0, False, 0.0, pickle_seconds=cheap)
    assert capturer._use_fork("auto", 10)  # no growth to scale by: fork
    capturer.close()


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.key)
@pytest.mark.parametrize("numeric_only", [None, True, False])
def test_compiled_feature_encoding_equals_the_reference_encoding(spec, numeric_only) -> None:
    """The inlined encoder gives the reference encoder's dicts (same keys, same order, same
    floats), categoricals and scaler state, learning and not, before and after pickling."""
    events = generate(spec, 1500, seed=11)
    events[5] = {**events[5], **dict.fromkeys(spec.categorical_features)}  # missing values
    fast, reference = FeaturePipeline(spec, numeric_only), FeaturePipeline(spec, numeric_only)
    for event in events:
        raw_fast: dict = {}
        raw_reference: dict = {}
        x = fast.learn_transform(event, raw_fast)
        assert list(x.items()) == list(
            reference._encode_reference(event, True, raw_reference).items()
        )
        assert raw_fast == raw_reference
        assert list(fast.transform(event).items()) == list(
            reference._encode_reference(event, False, None).items()
        )
    assert fast.scaler == reference.scaler
    restored = pickle.loads(pickle.dumps(fast))
    for event in events[:50]:
        assert list(restored.transform(event).items()) == list(fast.transform(event).items())


def test_string_and_number_fields_are_judged_as_their_own_check_judges_them() -> None:
    """The validator's inline acceptance of valid strings and numbers in bounds gives the
    field check's verdict (and reason) for every probe."""
    from coelho_pipelines.events.validate import EventValidator, _type_check

    validator = EventValidator(ECCI)
    event = generate(ECCI, 1, seed=2)[0]
    event = json.loads(json.dumps(event, default=str))
    strings = [f for f in ECCI.fields if f.type == "string"]
    assert any(f.choices for f in strings) and any(not f.choices for f in strings)
    for field in strings:
        for value in ("", "Mobile", "purchase", "Books", "nope", 3, 2.5, True, ["x"]):
            probe = {**event, field.name: value}
            assert validator.validate(probe) == _type_check(field, field.name)(value)
    numbers = [f for f in ECCI.fields if f.type in ("int", "float") and f.maximum is not None]
    assert {f.type for f in numbers} == {"int", "float"}
    for field in numbers:
        low, high = field.minimum, field.maximum
        values = [low, high, int(low), int(high), low - 1, high + 1, (low + high) / 2]
        values += [math.nan, math.inf, -math.inf, True, "3", 2**63, float(int(low))]
        for value in values:
            probe = {**event, field.name: value}
            assert validator.validate(probe) == _type_check(field, field.name)(value)


def _nearest_center_candidates() -> list:
    """The ecci candidates the learner predicts through its one-pass nearest center (the
    others are asked through their own predict_one)."""
    from coelho_pipelines.incremental.learner import predicts_nearest_center

    found = [f for f in ECCI_CANDIDATES if predicts_nearest_center(f())]
    assert found, "no ecci candidate uses the one-pass nearest center"
    return found


@pytest.mark.parametrize("factory", _nearest_center_candidates(), ids=lambda f: f.__name__)
def test_one_pass_nearest_center_equals_the_model_and_river_distances(factory) -> None:
    from river import utils

    from coelho_pipelines.incremental.metrics import DistanceSilhouette

    features, model = feature_pipeline(ECCI), factory()
    checked = 0
    for event in generate(ECCI, 1500, seed=13):
        x = features.learn_transform(event)
        centers = model.centers
        cluster, pair = DistanceSilhouette.predict_nearest(x, centers)
        assert cluster == model.predict_one(x)
        assert pair == DistanceSilhouette.distances(x, cluster, centers)
        if pair is not None:
            river = sorted(utils.math.minkowski_distance(c, x, 2) for c in centers.values())
            assert pair == (utils.math.minkowski_distance(centers[cluster], x, 2), river[-2])
            checked += 1
        model.learn_one(x)
    assert checked >= 1200  # every event after the k-means warm-up (200)
