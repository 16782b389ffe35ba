"""The drift monitor: an alarm means the served model got worse than its own recent past.

Unit tests of the pure monitor logic feed it seeded synthetic error streams; the stream tests
feed it the real learner's error stream on the generators' default streams, with and
without their `drift_at` schedule (bench/drift.py gives the 50,000-event figures).
"""

from __future__ import annotations

import pickle
import random

import pytest
from incremental_helpers import generate, records

from coelho_pipelines.incremental.drift import DEFAULT_WARMUP_EVENTS, DriftMonitor
from coelho_pipelines.incremental.learner import Learner
from coelho_pipelines.use_cases import get_spec


def _bernoulli(rng: random.Random, rate: float) -> float:
    return float(rng.random() < rate)


def _alarms(monitor: DriftMonitor, errors, groups=None) -> list:
    groups = groups or [None] * len(errors)
    found = [
        monitor.update(e, i, "t", g) for i, (e, g) in enumerate(zip(errors, groups, strict=True))
    ]
    return [d for d in found if d is not None]


def test_a_falling_error_never_alarms() -> None:
    rng = random.Random(3)
    errors = [_bernoulli(rng, max(0.1, 0.6 - i / 40_000)) for i in range(40_000)]
    assert _alarms(DriftMonitor(warmup_events=1000), errors) == []


def test_a_lasting_rise_is_flagged_soon_after_it_starts() -> None:
    rng = random.Random(4)
    errors = [_bernoulli(rng, 0.1 if i < 15_000 else 0.3) for i in range(20_000)]
    drifts = _alarms(DriftMonitor(), errors)
    assert drifts, "a rise from 10% to 30% error went unnoticed"
    assert 15_000 <= drifts[0].events_learned < 16_000
    assert drifts[0].error_before == pytest.approx(0.1, abs=0.03)
    assert drifts[0].error_after > drifts[0].error_before
    assert drifts[0].to_dict()["detector"]


def test_the_warm_up_is_learning_not_drift() -> None:
    rng = random.Random(5)
    # A young model whose error first rises (it learns the rare class) then settles.
    rates = [0.05 if i < 3000 else 0.4 if i < 6000 else 0.3 for i in range(30_000)]
    errors = [_bernoulli(rng, rate) for rate in rates]
    assert _alarms(DriftMonitor(warmup_events=8000), errors) == []
    assert _alarms(DriftMonitor(warmup_events=1000), errors)  # the same rise after warm-up


def test_a_rare_group_is_watched_on_its_own() -> None:
    rng = random.Random(6)
    groups = [int(rng.random() < 0.02) for _ in range(60_000)]
    errors = [
        _bernoulli(rng, 0.25 if g == 0 else (0.1 if i < 40_000 else 0.7))
        for i, g in enumerate(groups)
    ]
    drifts = _alarms(DriftMonitor(), errors, groups)
    assert drifts and {d.group for d in drifts} == {1}
    assert 40_000 <= drifts[0].events_learned < 45_000
    # Without groups the same misses drown in the common group's errors.
    assert _alarms(DriftMonitor(), errors) == []


def test_rare_huge_errors_are_not_a_drift() -> None:
    rng = random.Random(7)
    errors = [
        rng.expovariate(1 / 200) + (rng.uniform(300, 1800) if rng.random() < 0.02 else 0.0)
        for _ in range(40_000)
    ]
    assert _alarms(DriftMonitor(warmup_events=1000), errors) == []
    shifted = errors[:20_000] + [2.5 * e for e in errors[20_000:]]  # beyond the tolerance
    drifts = _alarms(DriftMonitor(warmup_events=1000), shifted)
    assert drifts and 20_000 <= drifts[0].events_learned < 21_000


def test_a_snapshot_of_the_former_adwin_monitor_resumes() -> None:
    old = DriftMonitor.__new__(DriftMonitor)
    old.__dict__.update({"detector": object(), "warmup_events": 1000, "n_drifts": 2})
    state = old.__dict__.copy()
    resumed = DriftMonitor.__new__(DriftMonitor)
    resumed.__setstate__(state)
    assert resumed.n_drifts == 2 and resumed.warmup_events == DEFAULT_WARMUP_EVENTS
    assert resumed.update(0.5, 5, "t") is None
    assert pickle.loads(pickle.dumps(resumed)).groups.keys() == resumed.groups.keys()


# --- the learner's own error stream on the generators' streams ----------------------------


def _learner_alarms(key: str, n: int, warmup: int, **options) -> list:
    spec = get_spec(key)
    learner = Learner(spec, drift_warmup_events=warmup)
    events = generate(
        spec, n, seed=42, start="2026-03-02T06:00:00+00:00", events_per_second=10.0, **options
    )
    return [s.drift for s in learner.learn_many(records(events)) if s.drift is not None]


def test_the_ecci_default_stream_gives_no_alarm() -> None:
    """ecci's customer-profile model adapts to its `--drift-at` change without a rise of its
    error (a drift alarm would be false there too): the clean stream must stay silent."""
    assert _learner_alarms("ecci", 30_000, DEFAULT_WARMUP_EVENTS) == []


@pytest.mark.parametrize(("key", "events", "drift_at"), [("tfd", 30_000, 25_000)])
def test_the_default_stream_alarms_only_after_its_drift(
    key: str, events: int, drift_at: int
) -> None:
    assert _learner_alarms(key, events, DEFAULT_WARMUP_EVENTS) == []
    drifts = _learner_alarms(key, events, DEFAULT_WARMUP_EVENTS, drift_at=drift_at)
    assert drifts, f"{key}: the drift at {drift_at} went unnoticed"
    assert drifts[0].events_learned > drift_at
    assert drifts[0].error_after > drifts[0].error_before
