"""Online challengers: the leaderboard's promotion rule, the online decision threshold, and
the learner running every candidate (no services: events from the generators, in memory)."""

from __future__ import annotations

import dataclasses
import pickle
import random

import pytest
from incremental_helpers import generate, records

from coelho_pipelines.incremental.leaderboard import Leaderboard
from coelho_pipelines.incremental.learner import Learner
from coelho_pipelines.incremental.threshold import ThresholdTuner, fbeta
from coelho_pipelines.use_cases import get_spec
from coelho_pipelines.use_cases.spec import MetricRule, PromotionPolicy

TFD, ETA, ECCI = get_spec("tfd"), get_spec("eta"), get_spec("ecci")
QUICK = PromotionPolicy(
    margin=0.0, min_gap=0.02, sustain_events=200, check_every=50, min_events=200
)


# -- leaderboard (pure) ---------------------------------------------------------------------


def _board(policy: PromotionPolicy, direction: str = "max") -> Leaderboard:
    return Leaderboard(["a", "b", "c"], MetricRule("m", direction), policy, served="a")  # type: ignore[arg-type]


def test_a_challenger_is_promoted_only_after_leading_by_the_margin_for_the_whole_window() -> None:
    policy = PromotionPolicy(margin=0.0, min_gap=0.05, sustain_events=300, check_every=100)
    board = _board(dataclasses.replace(policy, min_events=0))
    assert board.observe(100, {"a": 0.5, "b": 0.6, "c": 0.1}) is None  # b leads from 100
    assert board.challenger == "b" and board.led_since == 100
    assert board.observe(200, {"a": 0.5, "b": 0.6, "c": 0.1}) is None
    assert board.observe(300, {"a": 0.5, "b": 0.52, "c": 0.1}) is None  # within the margin
    assert board.challenger is None
    for events in (400, 500, 600):
        assert board.observe(events, {"a": 0.5, "b": 0.6, "c": 0.1}) is None
    assert board.ranking() == ["b", "a", "c"] and board.served == "a"
    promotion = board.observe(700, {"a": 0.5, "b": 0.6, "c": 0.1})
    assert promotion is not None and board.served == "b"
    assert (promotion.previous, promotion.served, promotion.led_since) == ("a", "b", 400)
    assert promotion.events_learned == 700 and promotion.values == {"a": 0.5, "b": 0.6, "c": 0.1}
    assert board.observe(800, {"a": 0.54, "b": 0.5, "c": 0.1}) is None  # a must lead b now
    assert [p.served for p in board.promotions] == ["b"]
    # a better challenger taking over the lead restarts the window
    assert board.observe(900, {"a": 0.7, "b": 0.5, "c": 0.1}) is None
    assert board.observe(1000, {"a": 0.7, "b": 0.5, "c": 0.8}) is None
    assert (board.challenger, board.led_since) == ("c", 1000)


def test_no_promotion_before_min_events_and_lower_is_better_for_min_metrics() -> None:
    policy = PromotionPolicy(margin=0.1, min_gap=0.0, sustain_events=100, check_every=50)
    board = _board(dataclasses.replace(policy, min_events=1000), direction="min")
    values = {"a": 100.0, "b": 85.0, "c": 95.0}  # b beats a by more than 10%, c does not
    promotions = [board.observe(events, values) for events in range(50, 1001, 50)]
    assert [p for p in promotions[:-1] if p] == []
    assert promotions[-1] is not None and promotions[-1].served == "b"
    assert promotions[-1].led_since == 50
    fresh = _board(dataclasses.replace(policy, min_events=0), direction="min")
    assert all(
        fresh.observe(e, {"a": 100.0, "b": 95.0, "c": None}) is None for e in range(50, 500, 50)
    )
    # an undefined served value is beaten by any defined one
    assert _board(policy).leads(0.0, None) and not _board(policy).leads(None, 1.0)
    with pytest.raises(ValueError, match="served"):
        Leaderboard(["a"], MetricRule("m", "max"), policy, served="z")


# -- decision threshold (pure) --------------------------------------------------------------


def _best_threshold(pairs: list[tuple[float, bool]], bins: int, beta: float) -> float:
    """Brute force: the first k / bins maximising F-beta over `pairs`."""
    best_k, best = 1, -1.0
    for k in range(1, bins):
        tp = sum(1 for p, y in pairs if y and p >= k / bins)
        fp = sum(1 for p, y in pairs if not y and p >= k / bins)
        fn = sum(1 for p, y in pairs if y and p < k / bins)
        score = fbeta(tp, fp, fn, beta)
        if score > best:
            best_k, best = k, score
    return best_k / bins


def test_threshold_maximises_fbeta_over_the_recent_window_only() -> None:
    rng = random.Random(5)
    tuner = ThresholdTuner(beta=2.0, window=300, bins=20, every=50, min_positives=5)
    pairs: list[tuple[float, bool]] = []
    assert tuner.value == 0.5
    for i in range(1000):
        positive = rng.random() < 0.1
        # probabilities drift: positives score lower in the second half
        p = min(
            0.999,
            max(0.0, rng.gauss(0.6 if i < 500 else 0.3, 0.15) if positive else rng.random() * 0.4),
        )
        p = round(p, 3) + 0.0005  # off the bin edges: rounding cannot decide a bin
        assert tuner.decide(p) == int(p >= tuner.value)
        tuner.record(p, positive)
        pairs.append((p, positive))
        if (i + 1) % 50 == 0:
            assert tuner.value == _best_threshold(pairs[-300:], 20, 2.0), i
    assert tuner.pairs == 300 and tuner.recomputed == 20
    early = _best_threshold(pairs[:300], 20, 2.0)
    assert tuner.value != early  # it follows the window, not all of history


def test_threshold_never_uses_the_label_of_the_event_it_scores() -> None:
    """A stream whose label flips one event after the prediction: everything the learner
    served up to and including that event is the same; the flip only shows afterwards."""
    events = generate(TFD, 260, seed=8, fraud_rate=0.2)

    def run(flip: int | None) -> tuple[list, list]:
        stream = [dict(e) for e in events]
        if flip is not None:
            stream[flip]["is_fraud"] = 1 - stream[flip]["is_fraud"]
        learner = Learner(TFD, threshold_every=1)  # a new threshold after every event
        thresholds, served = [], []
        for record in records(stream):
            thresholds.append(learner.bundle.decision_threshold)  # in force for this event
            step = learner.learn(record)
            served.append((step.prediction, step.decision))
        return thresholds, served

    base_thresholds, base_served = run(None)
    assert len(set(base_thresholds)) > 3  # the threshold really moves
    changed_later = 0
    for flip in (60, 130, 200, 250):
        thresholds, served = run(flip)
        assert thresholds[: flip + 1] == base_thresholds[: flip + 1], flip
        assert served[: flip + 1] == base_served[: flip + 1], flip
        changed_later += thresholds[flip + 1 :] != base_thresholds[flip + 1 :]
    assert changed_later  # the label is used, but only for later events


# -- the learner with every candidate -------------------------------------------------------


def test_learner_promotes_after_a_sustained_lead_and_serves_the_leader() -> None:
    spec = dataclasses.replace(TFD, river_promotion=QUICK)
    learner = Learner(spec)
    checks: dict[int, dict] = {}
    promoted = []
    for record in records(generate(spec, 1500, seed=12, fraud_rate=0.1)):
        step = learner.learn(record)
        if learner.leaderboard.checked_at == learner.events_learned:
            checks[learner.events_learned] = dict(learner.leaderboard.values)
        if step.promotion is not None:
            promoted.append(step.promotion)
            assert step.promotion.events_learned == learner.events_learned
    assert promoted, "the logistic regression should overtake the forest on this stream"
    assert learner.leaderboard.promotions == promoted
    board = learner.leaderboard
    for promotion in promoted:  # led by the margin at every check of the window
        assert promotion.events_learned - promotion.led_since >= QUICK.sustain_events
        window = [e for e in checks if promotion.led_since <= e <= promotion.events_learned]
        assert len(window) == QUICK.sustain_events // QUICK.check_every + 1
        for e in window:
            served_value = checks[e][promotion.previous]
            assert board.leads(checks[e][promotion.served], served_value), e
    served = learner.challengers.served
    assert served.name == board.served == learner.bundle.candidate == promoted[-1].served
    assert learner.bundle.model is served.model
    assert learner.progress.metrics is served.metrics
    assert learner.bundle.decision_threshold == served.threshold.value
    scalars = learner.metric_scalars()
    assert scalars["FBeta"] == served.metrics.metrics["FBeta"].get()
    for name, candidate in learner.challengers.candidates.items():
        assert scalars[f"candidate.{name}.RollingFBeta"] == candidate.primary("RollingFBeta")


@pytest.mark.parametrize(
    ("spec", "options"),
    [(TFD, {"fraud_rate": 0.1}), (ETA, {}), (ECCI, {})],
    ids=["tfd", "eta", "ecci"],
)
def test_a_pickled_learner_resumes_with_the_same_leaderboard_and_served_leader(
    spec, options
) -> None:
    spec = dataclasses.replace(spec, river_promotion=QUICK)
    events = generate(spec, 1000, seed=13, **options)
    learner = Learner(spec)
    learner.learn_many(records(events[:700]))
    # bundle and progress are pickled separately, as a capture does
    bundle = pickle.loads(pickle.dumps(learner.bundle))
    progress = pickle.loads(pickle.dumps(learner.progress))
    resumed = Learner(spec, bundle, progress)
    assert resumed.bundle.model is resumed.challengers.served.model  # one object again
    assert resumed.leaderboard.to_dict() == learner.leaderboard.to_dict()
    assert resumed.bundle.candidate == learner.bundle.candidate
    a = learner.learn_many(records(events[700:]))
    b = resumed.learn_many(records(events[700:]))
    assert [s.prediction for s in a] == [s.prediction for s in b]
    assert [s.promotion for s in a] == [s.promotion for s in b]
    assert resumed.leaderboard.to_dict() == learner.leaderboard.to_dict()
    assert resumed.metric_values() == learner.metric_values()
    assert resumed.metric_scalars() == learner.metric_scalars()
    for event in events[-20:]:
        assert resumed.bundle.predict(event) == learner.bundle.predict(event)
    if spec.task == "classification":
        assert learner.leaderboard.promotions  # the restored state includes a switch


def test_a_resume_follows_a_changed_candidate_set() -> None:
    from coelho_pipelines.use_cases.spec import Candidate

    events = generate(ETA, 300, seed=14)
    learner = Learner(ETA)
    learner.learn_many(records(events[:200]))
    extra = Candidate("Second", ETA.river_candidates[-1].factory)
    grown = dataclasses.replace(ETA, river_challengers=(*ETA.river_challengers, extra))
    bundle, progress = pickle.loads(pickle.dumps((learner.bundle, learner.progress)))
    resumed = Learner(grown, bundle, progress)
    assert list(resumed.challengers.candidates) == [c.name for c in grown.river_candidates]
    fresh = resumed.challengers.candidates["Second"].metrics.values()
    assert fresh["MAE"] == 0.0 < resumed.metric_values()["MAE"]  # scored nothing yet
    resumed.learn_many(records(events[200:]))
    assert resumed.leaderboard.names == list(resumed.challengers.candidates)
    shrunk = dataclasses.replace(ETA, river_challengers=())
    bundle, progress = pickle.loads(pickle.dumps((resumed.bundle, resumed.progress)))
    alone = Learner(shrunk, bundle, progress)
    assert list(alone.challengers.candidates) == [ETA.river_model_name]
    assert alone.bundle.model is alone.challengers.served.model
