"""The capture policy as pure logic: when a learner run snapshots and publishes its model.

No services, no threads, no clock: counts and monotonic times are passed in."""

from __future__ import annotations

import itertools

import pytest

from coelho_pipelines.incremental.capture_policy import PUBLISH, SNAPSHOT, CapturePolicy
from coelho_pipelines.incremental.settings import LearnerSettings

SETTINGS = LearnerSettings(
    snapshot_every=1000,
    snapshot_interval_seconds=30.0,
    publish_every=100,
    publish_interval_seconds=1.0,
    publish_budget=0.1,
)
QUIET = {"at_head": False, "snapshot_pending": False, "model_pending": False}


def fresh(events: int = 0, settings: LearnerSettings = SETTINGS) -> CapturePolicy:
    return CapturePolicy.resuming_at(settings, events)


def published(policy: CapturePolicy, at: float, events: int, cost: float = 0.0) -> None:
    policy.started(PUBLISH, at, events, cost)
    policy.settled(PUBLISH, ok=True)


def test_nothing_is_due_before_anything_was_learned() -> None:
    assert fresh().decide(0, 100.0, **QUIET) is None
    assert fresh().decide(0, 100.0, **(QUIET | {"at_head": True})) is None


def test_a_publish_every_publish_every_events() -> None:
    policy = fresh()
    assert policy.decide(99, 100.0, **QUIET) is None
    assert policy.decide(100, 100.0, **QUIET) == PUBLISH


def test_at_the_head_of_the_stream_any_new_event_is_published() -> None:
    policy = fresh()
    assert policy.decide(3, 100.0, **(QUIET | {"at_head": True})) == PUBLISH


def test_publishes_are_at_least_the_interval_apart() -> None:
    policy = fresh()
    published(policy, at=100.0, events=100)
    assert policy.decide(500, 100.9, **QUIET) is None
    assert policy.decide(500, 101.0, **QUIET) == PUBLISH


def test_publish_captures_stay_within_the_budget() -> None:
    policy = fresh()
    published(policy, at=100.0, events=100, cost=0.5)  # 0.5 s at a 10% budget: 5 s apart
    assert policy.publish_gap() == pytest.approx(5.0)
    assert policy.decide(900, 104.9, **QUIET) is None
    assert policy.decide(900, 105.0, **QUIET) == PUBLISH


def test_a_forked_childs_pickling_counts_against_the_budget() -> None:
    policy = fresh()
    policy.started(PUBLISH, 100.0, 100, blocking_seconds=0.02)
    assert policy.publish_gap() == pytest.approx(1.0)  # the fork alone: 0.2 s < the interval
    policy.settled(PUBLISH, ok=True, total_cost=0.02 + 0.48)
    assert policy.publish_gap() == pytest.approx(5.0)


def test_a_snapshots_cost_does_not_count_against_the_publish_budget() -> None:
    policy = fresh()
    policy.started(SNAPSHOT, 100.0, 1000, blocking_seconds=3.0)
    policy.settled(SNAPSHOT, ok=True, total_cost=9.0)
    assert policy.publish_gap() == pytest.approx(1.0)


def test_no_publish_while_redis_has_not_taken_the_last_model() -> None:
    policy = fresh()
    assert policy.decide(100, 100.0, **(QUIET | {"model_pending": True})) is None


def test_a_snapshot_every_n_events_or_t_seconds_whichever_later() -> None:
    policy = fresh()
    policy.started(SNAPSHOT, 0.0, 0, 0.0)
    policy.settled(SNAPSHOT, ok=True)
    assert policy.decide(5000, 29.0, **QUIET) == PUBLISH  # enough events, too early
    policy = fresh()
    policy.started(SNAPSHOT, 0.0, 0, 0.0)
    policy.settled(SNAPSHOT, ok=True)
    assert policy.decide(999, 60.0, **QUIET) == PUBLISH  # enough time, too few events
    assert policy.decide(1000, 30.0, **QUIET) == SNAPSHOT


def test_a_due_snapshot_wins_over_a_publish() -> None:
    assert fresh().decide(1000, 100.0, **(QUIET | {"at_head": True})) == SNAPSHOT


def test_no_snapshot_while_mlflow_writes_the_last_one_but_the_model_is_published() -> None:
    policy = fresh()
    assert policy.decide(1000, 100.0, **(QUIET | {"snapshot_pending": True})) == PUBLISH


def test_one_capture_at_a_time() -> None:
    policy = fresh()
    policy.started(PUBLISH, 100.0, 100, 0.0)
    assert policy.in_flight == PUBLISH
    assert policy.decide(5000, 1000.0, **QUIET) is None
    policy.settled(PUBLISH, ok=True)
    assert policy.decide(5000, 1000.0, **QUIET) == SNAPSHOT


def test_a_failed_snapshot_is_retried_at_the_next_chance() -> None:
    policy = fresh()
    policy.started(SNAPSHOT, 100.0, 1000, 0.0)
    policy.settled(SNAPSHOT, ok=False)
    assert policy.in_flight is None
    assert policy.decide(1001, 101.0, **QUIET) == SNAPSHOT


def test_a_failed_publish_waits_for_its_interval() -> None:
    policy = fresh()
    policy.started(PUBLISH, 100.0, 100, 0.0)
    policy.settled(PUBLISH, ok=False)
    assert policy.decide(300, 100.5, **QUIET) is None
    assert policy.decide(300, 101.0, **QUIET) == PUBLISH


def test_a_resumed_run_counts_from_its_snapshot() -> None:
    policy = fresh(events=50_000)
    assert policy.decide(50_000, 100.0, **(QUIET | {"at_head": True})) is None
    assert policy.decide(50_999, 100.0, **QUIET) == PUBLISH
    assert policy.decide(51_000, 100.0, **QUIET) == SNAPSHOT


def test_zero_interval_snapshots_by_event_count_alone() -> None:
    policy = fresh(settings=LearnerSettings(snapshot_every=300, snapshot_interval_seconds=0.0))
    policy.started(SNAPSHOT, 5.0, 0, 0.0)
    policy.settled(SNAPSHOT, ok=True)
    assert policy.decide(300, 5.0, **QUIET) == SNAPSHOT


def test_the_cheap_precheck_never_hides_a_due_capture() -> None:
    """`could_be_due` runs for every event; whenever `decide` would capture it must say so."""
    policy = fresh()
    published(policy, at=100.0, events=100, cost=0.2)
    for events, now, head, snap, model in itertools.product(
        (100, 101, 199, 200, 1099, 1100, 5000),
        (100.0, 100.5, 101.0, 102.0, 130.0, 200.0),
        (False, True),
        (False, True),
        (False, True),
    ):
        kind = policy.decide(events, now, at_head=head, snapshot_pending=snap, model_pending=model)
        if kind is not None:
            assert policy.could_be_due(events, now), (events, now, head, snap, model)
