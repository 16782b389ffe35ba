"""Helpers of the incremental learner tests: unique topics and namespaces, producing events."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterable
from typing import Any

from coelho_pipelines.incremental.learner import Record
from coelho_pipelines.incremental.runner import Endpoints, LearnerSettings
from coelho_pipelines.kafka_produce import produce_retrying
from coelho_pipelines.use_cases.spec import UseCaseSpec


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def generate(spec: UseCaseSpec, n: int, seed: int = 7, **options: Any) -> list[dict[str, Any]]:
    return list(itertools.islice(spec.generator(seed=seed, **options), n))


def produce(bootstrap: str, topic: str, values: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Produce (key, value) pairs in order, synchronously; returns the count delivered."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    failures: list[str] = []

    def report(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    count = 0
    for key, value in values:
        produce_retrying(producer, topic, value, key, on_delivery=report)
        count += 1
        producer.poll(0)
    assert producer.flush(60) == 0, "events not delivered"
    assert not failures, failures[:3]
    return count


def produce_events(bootstrap: str, topic: str, spec: UseCaseSpec, events: list[dict]) -> int:
    pairs = [(str(e[spec.key_field]).encode(), json.dumps(e).encode()) for e in events]
    return produce(bootstrap, topic, pairs)


def make_topic(bootstrap_servers: str, partitions: int = 3) -> str:
    from coelho.platform.kafka import ensure_topics

    topic = unique("learner")
    ensure_topics(bootstrap_servers, [topic], partitions)
    return topic


def settings(topic: str, **overrides: Any) -> LearnerSettings:
    """Settings isolated per test: own topic, consumer group, MLflow experiment, Redis keys."""
    name = unique("t")
    values: dict[str, Any] = {
        "topic": topic,
        "experiment": f"test {name}",
        "redis_namespace": f"test-{name}",
        "consumer_group": f"test-{name}",
        "idle_timeout_seconds": 2.0,
        "max_duration_seconds": 240.0,
        "publish_interval_seconds": 0.5,
        "snapshot_every": 300,
        "snapshot_interval_seconds": 0.0,  # snapshots by event count alone: tests are fast
        "drift_warmup_events": 200,
    }
    values.update(overrides)
    return LearnerSettings(**values)


def endpoints(kafka_service, redis_service, mlflow_service) -> Endpoints:
    return Endpoints(
        bootstrap_servers=kafka_service.bootstrap_servers,
        redis_url=redis_service.url,
        mlflow_tracking_uri=mlflow_service.tracking_uri,
    )


def records(events: list[dict]) -> list[Record]:
    return [Record(json.dumps(e).encode(), 0, i) for i, e in enumerate(events)]


def thresholded(classifier: Any, every: int | None = None) -> Any:
    """A River classifier whose `predict_one` is the learner's online-threshold decision:
    the threshold in force before the event, then the event's (probability, label) recorded
    at `learn_one` (before the classifier learns it). Reference for progressive_val_score."""
    from river import base

    from coelho_pipelines.incremental.threshold import ThresholdTuner

    class Thresholded(base.Classifier):
        def __init__(self) -> None:
            self.classifier = classifier
            self.tuner = (
                ThresholdTuner(beta=2.0) if every is None else ThresholdTuner(2.0, every=every)
            )

        def predict_proba_one(self, x: dict) -> dict:
            return self.classifier.predict_proba_one(x)

        def predict_one(self, x: dict) -> Any:
            proba = self.classifier.predict_proba_one(x)
            return self.tuner.decide(proba.get(1, 0.0)) if proba else None

        def learn_one(self, x: dict, y: Any) -> None:
            proba = self.classifier.predict_proba_one(x)
            if proba:
                self.tuner.record(proba.get(1, 0.0), y == 1)
            self.classifier.learn_one(x, y)

    return Thresholded()
