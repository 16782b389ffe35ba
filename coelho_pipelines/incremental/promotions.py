"""Where the online leaderboard and its promotions are recorded, besides the snapshot.

- Redis: the `leaderboard` key (with the light metrics update) and the status fields
  `served_candidate` and `decision_threshold`;
- MLflow (the learner's run): the metric `promotion` (1 at the step of each switch), the
  per-candidate metrics `candidate.<name>.<metric>` (with the other metrics), the tags
  `coelho.served_candidate` / `coelho.last_promotion`, and the artifact
  `leaderboard/leaderboard.json` (at every promotion and durable snapshot);
- Prometheus: `coelho_learner_promotions` (counter), `coelho_learner_served_candidate`,
  `coelho_learner_candidate_metric`, `coelho_learner_decision_threshold` (gauges);
- Dagster: the snapshot materialization's metadata (`served_candidate`, `leaderboard`).
"""

from __future__ import annotations

import json
from typing import Any

from coelho_pipelines import telemetry
from coelho_pipelines.incremental.leaderboard import Promotion

LEADERBOARD_ARTIFACT = "leaderboard/leaderboard.json"
SERVED_TAG = "coelho.served_candidate"
PROMOTION_TAG = "coelho.last_promotion"


def leaderboard_payload(learner: Any) -> dict[str, Any]:
    """The leaderboard as stored in Redis and MLflow (JSON-ready)."""
    return {
        "use_case": learner.spec.key,
        "events_learned": learner.events_learned,
        "decision_threshold": learner.bundle.decision_threshold,
        **learner.leaderboard.to_dict(),
    }


def status_fields(learner: Any) -> dict[str, Any]:
    """Status-hash fields saying which candidate and threshold are served."""
    threshold = learner.bundle.decision_threshold
    fields: dict[str, Any] = {"served_candidate": learner.leaderboard.served}
    if threshold is not None:
        fields["decision_threshold"] = threshold
    return fields


def update_gauges(use_case: str, learner: Any) -> None:
    """Prometheus gauges: each candidate's leaderboard metric, the served one, the threshold."""
    board = learner.leaderboard
    metric = board.rule.name
    for name, value in learner.challengers.values().items():
        telemetry.LEARNER_SERVED_CANDIDATE.labels(use_case, name).set(
            1.0 if name == board.served else 0.0
        )
        if value is not None:
            telemetry.LEARNER_CANDIDATE_METRIC.labels(use_case, name, metric).set(value)
    if learner.bundle.decision_threshold is not None:
        telemetry.LEARNER_DECISION_THRESHOLD.labels(use_case).set(learner.bundle.decision_threshold)


def record_promotion(
    use_case: str, promotion: Promotion, learner: Any, publisher: Any, recorder: Any
) -> None:
    """Count and record one switch of the served candidate (Redis, MLflow, Prometheus)."""
    telemetry.LEARNER_PROMOTIONS.labels(use_case, promotion.served).inc()
    update_gauges(use_case, learner)
    recorder.add_metrics(promotion.events_learned, {"promotion": 1.0})
    recorder.set_tag(SERVED_TAG, promotion.served)
    recorder.set_tag(PROMOTION_TAG, json.dumps(promotion.to_dict(), default=str))
    record_leaderboard(learner, recorder)
    publisher.offer_status(**status_fields(learner))


def record_leaderboard(learner: Any, recorder: Any) -> None:
    """The leaderboard as an MLflow artifact of the learner's run (the newest wins)."""
    recorder.set_text(LEADERBOARD_ARTIFACT, json.dumps(leaderboard_payload(learner), default=str))
