"""How one learner run behaves: the single declaration of its settings and their defaults.

`LearnerRun` takes a `LearnerSettings`; the Dagster run config of the learner op
(`job.IncrementalLearningConfig`) is generated from these fields, so a setting is added,
renamed or given a new default here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from coelho_pipelines.incremental import live_store
from coelho_pipelines.incremental.capture import CaptureMode
from coelho_pipelines.incremental.drift import DEFAULT_WARMUP_EVENTS


@dataclass(frozen=True)
class LearnerSettings:
    """How one learner run behaves (the Dagster op config is generated from these fields)."""

    max_duration_seconds: float = 86_400.0  # a learner run lives for hours
    idle_timeout_seconds: float = 0.0  # 0: a quiet stream never ends the run
    snapshot_every: int = 1000
    snapshot_interval_seconds: float = 30.0
    publish_every: int = 100
    publish_interval_seconds: float = 1.0
    metrics_every: int = 100
    until_events: int = 0  # stop once this many events are learned in total (0: no limit)
    publish_budget: float = 0.1  # share of the time publish captures may cost
    drift_warmup_events: int = DEFAULT_WARMUP_EVENTS
    capture_mode: CaptureMode | None = None  # default: "auto" where fork exists
    topic: str | None = None  # default: the spec's topic
    experiment: str | None = None  # default: the spec's experiment
    redis_namespace: str = live_store.NAMESPACE
    consumer_group: str | None = None  # default: coelho-<uc>-incremental
    final_flush_seconds: float = 120.0
