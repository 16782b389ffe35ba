"""The learner run's schedules as pure logic: snapshots and idle stop."""

from __future__ import annotations

import pytest

from coelho_pipelines.incremental.runner import LearnerSettings, snapshot_due_by_schedule


@pytest.mark.parametrize(
    ("events_since", "seconds_since", "due"),
    [
        (999, 10_000.0, False),  # enough time, too few events
        (1000, 29.9, False),  # enough events, too little time
        (1000, 30.0, True),
        (50_000, 31.0, True),
        (0, 0.0, False),
    ],
)
def test_snapshot_every_n_events_or_t_seconds_whichever_later(
    events_since: int, seconds_since: float, due: bool
) -> None:
    settings = LearnerSettings(snapshot_every=1000, snapshot_interval_seconds=30.0)
    assert snapshot_due_by_schedule(events_since, seconds_since, settings) is due


def test_defaults_keep_a_learner_run_alive_for_hours() -> None:
    defaults = LearnerSettings()
    assert defaults.max_duration_seconds >= 3600 * 12
    assert defaults.idle_timeout_seconds == 0  # a quiet stream does not end the run
    assert (defaults.snapshot_every, defaults.snapshot_interval_seconds) == (1000, 30.0)


def test_zero_interval_snapshots_by_event_count_alone() -> None:
    settings = LearnerSettings(snapshot_every=300, snapshot_interval_seconds=0.0)
    assert snapshot_due_by_schedule(300, 0.0, settings)
    assert not snapshot_due_by_schedule(299, 1e9, settings)
