"""ecci's running customer profiles and their clustering: pure logic, no services."""

from __future__ import annotations

import json
import math
import pickle

import pytest
from incremental_helpers import generate, records

from coelho_pipelines.incremental.features import RunningScaler
from coelho_pipelines.incremental.learner import Learner, LiveModel, feature_pipeline
from coelho_pipelines.incremental.profiles import (
    Z_CLIP,
    CustomerState,
    ProfilePipeline,
    ProfileStore,
)
from coelho_pipelines.river_models.online_kmeans import OnlineKMeans
from coelho_pipelines.use_cases import get_spec
from coelho_pipelines.use_cases.ecci.spec import ECCI_CANDIDATES
from coelho_pipelines.use_cases.spec import CustomerProfile, Feature

ECCI = get_spec("ecci")


def _toy_profile(**options) -> CustomerProfile:
    """One value read from the event's `v` (None: not observed)."""
    value = Feature("v", "numeric", "v", lambda e: e.get("v"))
    return CustomerProfile(key_field="who", features=(value,), **options)


def test_profile_is_the_decayed_mean_of_observed_values() -> None:
    profile = _toy_profile(half_life_events=1.0)  # decay 0.5: each new event halves the rest
    store = ProfileStore(profile)
    for v in (4.0, None, 10.0):
        store.update("a", [v])
    state = store.get("a")
    assert state.events == 3
    # weights, newest first: 10.0 -> 1, None -> (not observed), 4.0 -> 0.25
    assert state.values() == [pytest.approx((10.0 + 0.25 * 4.0) / 1.25)]
    assert store.get("b") is None
    store.update("b", [None])
    assert store.get("b").values() == [None]  # never observed: missing, not 0


def test_each_customer_has_its_own_profile_and_peek_changes_nothing() -> None:
    store = ProfileStore(_toy_profile())
    store.update("a", [1.0])
    store.update("b", [5.0])
    peeked = store.peek("a", [3.0])
    assert peeked.events == 2 and 1.0 < peeked.values()[0] < 3.0
    assert store.get("a").values() == [1.0] and store.get("a").events == 1
    assert store.peek("new", [7.0]).values() == [7.0] and store.get("new") is None
    assert store.get("b").values() == [5.0]


def test_memory_is_bounded_by_evicting_the_least_recently_seen_customer() -> None:
    store = ProfileStore(_toy_profile(max_customers=2))
    store.update("a", [1.0])
    store.update("b", [1.0])
    store.update("a", [2.0])  # a is now the most recent
    store.update("c", [1.0])
    assert set(store.customers) == {"a", "c"} and store.evicted == 1
    assert store.get("a").events == 2


def test_pipeline_learns_per_customer_and_transform_does_not_mutate() -> None:
    events = generate(ECCI, 400, seed=21)
    pipeline = ProfilePipeline(ECCI)
    for event in events:
        pipeline.learn_transform(event)
    counts: dict[str, int] = {}
    for event in events:
        counts[event["customer_id"]] = counts.get(event["customer_id"], 0) + 1
    assert {c: s.events for c, s in pipeline.store.customers.items()} == counts
    busiest = max(counts, key=counts.get)
    before = pickle.dumps(pipeline)
    probe = {**events[-1], "customer_id": busiest}
    x = pipeline.transform(probe)
    assert pickle.dumps(pipeline) == before  # serving never changes the served state
    assert list(x) == ECCI.profile.feature_names == pipeline.output_names
    assert x != pipeline.profile_of(busiest)  # the event is applied to the profile
    twin = pickle.loads(before)
    twin.learn_transform(probe)  # learning it gives the profile transform answered
    expected = pipeline.store.peek(busiest, pipeline.event_values(probe)).values()
    assert twin.store.get(busiest).values() == expected


def test_scaling_equals_running_scaler_over_the_profiles_clipped() -> None:
    pipeline = ProfilePipeline(ECCI)
    reference = RunningScaler()
    clipped = 0
    for event in generate(ECCI, 300, seed=4):
        x = pipeline.learn_transform(event)
        values = pipeline.store.get(event["customer_id"]).values()
        for name, value in zip(ECCI.profile.feature_names, values, strict=True):
            if value is None:
                assert x[name] == 0.0
                continue
            reference.learn(name, value)
            z = reference.transform(name, value)
            clipped += abs(z) > Z_CLIP
            assert x[name] == min(Z_CLIP, max(-Z_CLIP, z))
    assert pipeline.scaler == reference
    assert clipped, "no value was far enough out to be clipped: the clip is untested"


def test_shares_and_means_follow_the_events() -> None:
    pipeline = ProfilePipeline(ECCI)
    event = generate(ECCI, 1, seed=2)[0]
    first = {**event, "event_type": "search", "price": None, "device_info": {
        **event["device_info"], "device_type": "Mobile"}}  # fmt: skip
    second = {**event, "event_type": "purchase", "price": 99.0, "device_info": {
        **event["device_info"], "device_type": "Desktop"}}  # fmt: skip
    pipeline.learn_transform(first)
    pipeline.learn_transform(second)
    values = dict(zip(ECCI.profile.feature_names,
                      pipeline.store.get(event["customer_id"]).values(), strict=True))  # fmt: skip
    decay = ECCI.profile.decay
    assert values["log_price"] == pytest.approx(math.log1p(99.0))  # search: no price seen
    assert values["event_type=purchase"] == pytest.approx(1 / (1 + decay))
    assert values["device_type=Mobile"] == pytest.approx(decay / (1 + decay))
    assert values["event_type=leave_review"] == 0.0


def test_latent_segment_is_never_a_profile_input() -> None:
    """The generator's segment (evaluation only) is not read by any feature or profile
    value: an event carrying it gives the same profile."""
    assert "segment" in ECCI.never_features
    names = {f.name for f in (*ECCI.features, *ECCI.profile.features)}
    assert not names & set(ECCI.never_features)
    assert not any("segment" in f.sql for f in (*ECCI.features, *ECCI.profile.features))
    plain, marked = ProfilePipeline(ECCI), ProfilePipeline(ECCI)
    for i, event in enumerate(generate(ECCI, 200, seed=5)):
        segment = ("bargain_hunter", "researcher")[i % 2]
        assert plain.learn_transform(event) == marked.learn_transform({**event, "segment": segment})


def test_learner_clusters_customers_and_keeps_the_analytics() -> None:
    events = generate(ECCI, 1200, seed=8)
    learner = Learner(ECCI)
    assert isinstance(learner.bundle.features, ProfilePipeline)
    assert isinstance(learner.model, OnlineKMeans)
    steps = learner.learn_many(records(events))
    assert all(s.error is None for s in steps)
    values = learner.metric_values()
    assert values["n_clusters"] == 5 and values["Silhouette"] is not None
    analytics = json.loads(json.dumps(learner.progress.analytics.to_dict()))
    assert sum(analytics["samples_per_cluster"].values()) == 1200
    assert set(analytics["features"]) == set(ECCI.categorical_features)
    # The served answer: the customer's cluster after the event, from the pickled bundle.
    bundle: LiveModel = pickle.loads(pickle.dumps(learner.bundle))
    event = events[-1]
    x = learner.bundle.features.transform(event)
    assert bundle.predict(event) == {"cluster": learner.model.predict_one(x)}
    assert pickle.dumps(bundle.features) == pickle.dumps(learner.bundle.features)


def test_a_customer_is_one_point_whose_cluster_follows_its_profile() -> None:
    """Two customers with opposite behaviour end in different clusters; a customer's cluster
    is the same whichever of its events is scored last (it is the profile's)."""
    learner = Learner(ECCI)
    learner.learn_many(records(generate(ECCI, 3000, seed=12)))
    features, model = learner.bundle.features, learner.model
    clusters = {c: model.predict_one(features.profile_of(c)) for c in features.store.customers}
    assert len(set(clusters.values())) >= 3


@pytest.mark.parametrize("factory", ECCI_CANDIDATES, ids=lambda f: f.__name__)
def test_every_candidate_learns_the_profile_stream(factory) -> None:
    learner = Learner(ECCI, LiveModel(ECCI, factory(), feature_pipeline(ECCI)))
    steps = learner.learn_many(records(generate(ECCI, 800, seed=3)))
    assert all(s.error is None for s in steps)
    assert learner.metric_values()["n_clusters"] >= 1
    probe = generate(ECCI, 1, seed=9)[0]
    answer = learner.bundle.predict(probe)
    assert isinstance(answer["cluster"], int)
    assert pickle.loads(pickle.dumps(learner.bundle)).predict(probe) == answer  # snapshots


def test_online_kmeans_seeds_from_the_warmup_and_replaces_centers() -> None:
    model = OnlineKMeans(n_clusters=2, warmup=4, seed=1)
    points = [{"a": 0.0}, {"a": 0.1}, {"a": 10.0}, {"a": 10.1}]
    for p in points[:3]:
        model.learn_one(p)
    assert model.centers == {} and model.predict_one({"a": 9.0}) == 0
    model.learn_one(points[3])
    low, high = sorted(model.centers.values(), key=lambda c: c["a"])
    assert low["a"] == pytest.approx(0.05) and high["a"] == pytest.approx(10.05)
    before = model.centers
    snapshot = {i: dict(c) for i, c in before.items()}
    model.learn_one({"a": 0.0})
    assert before == snapshot and model.centers is not before  # never edited in place
    near = model.predict_one({"a": 0.2})
    assert model.centers[near]["a"] < 1.0 and model.counts[near] == 3


def test_customer_state_pickles_compactly() -> None:
    state = CustomerState(3)
    state.apply([1.0, None, 2.0], 0.5)
    clone = pickle.loads(pickle.dumps(state))
    assert (clone.events, clone.sums, clone.weights) == (1, [1.0, 0.0, 2.0], [1.0, 0.0, 1.0])
    assert len(pickle.dumps(state)) < 150  # packed doubles, not a list of floats
