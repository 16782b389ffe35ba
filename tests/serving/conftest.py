"""Fixtures of the API tests: a private MLflow, a Redis database of our own, a trained platform.

- `serving_mlflow`: a real MLflow server started by the same code as `coelho up`, private to
  these tests. The API reads canonical names (experiment "Transaction Fraud Detection",
  registered model `coelho-tfd-batch`); on the session server other areas' tests write those
  names too, so "no model yet" could not be asserted there and our champions would leak into
  theirs.
- `stack`: environment for `Settings.from_env()` on the session Kafka, Redis database 11 of the
  session Redis (flushed), the private MLflow and a fresh lakehouse; `stack.client()` is a
  TestClient on a new app.
- `trained`: the end-to-end pipeline once per session. Before anything is trained it records
  what the predict endpoints answer (the "none" state); then per use case it produces events
  to Kafka, ingests them into Delta, trains and registers the batch model from the Delta table
  and runs the real incremental learner (Kafka -> Redis live model + MLflow snapshot).
  Only `PLOTTED` renders the visualization catalogue (slow).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from coelho.platform import Platform, PlatformError, free_port
from coelho_pipelines.use_cases import all_specs
from coelho_serving.app import create_app
from coelho_serving.config import ServingConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
REDIS_DB = 11
EVENTS_PER_USE_CASE = 1500
LEARNED_EVENTS = 400
# Events of yesterday (UTC) from 06:00, one per second: one complete daily partition.
START = (datetime.now(UTC) - timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
GENERATOR_OPTIONS: dict[str, dict[str, Any]] = {"tfd": {"fraud_rate": 0.1}}


@pytest.fixture(scope="session")
def serving_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("serving-mlflow")
    mlflow_port = free_port()
    platform = Platform(
        home, ports={"mlflow": mlflow_port}, project_dir=REPO_ROOT, tie_to_parent=True
    )
    try:
        platform.start("mlflow")
    except PlatformError as error:
        pytest.fail(f"private MLflow could not start: {error}", pytrace=False)
    yield f"http://127.0.0.1:{mlflow_port}"
    platform.down(report=lambda _line: None)


@dataclass
class Stack:
    env: dict[str, str]
    redis_port: int
    specs: dict[str, Any] = field(default_factory=lambda: {s.key: s for s in all_specs()})

    @property
    def redis_url(self) -> str:
        return self.env["REDIS_URL"]

    @property
    def mlflow_uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]

    @property
    def lakehouse(self) -> str:
        return self.env["COELHO_LAKEHOUSE_URI"]

    def redis(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis_url)

    def config(self, **overrides: Any) -> ServingConfig:
        config = ServingConfig.from_env()
        return ServingConfig(**{**config.__dict__, **overrides})

    def client(self, **overrides: Any) -> TestClient:
        """A TestClient on a fresh app (own model cache); raises server errors in the test."""
        return TestClient(create_app(self.config(**overrides)))


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_service: Any,
    redis_service: Any,
    serving_mlflow: str,
) -> Iterator[Stack]:
    import redis

    redis_service.start()
    home = tmp_path_factory.mktemp("serving-home")
    env = {
        "COELHO_HOME": str(home),
        "COELHO_LAKEHOUSE_URI": str(home / "lakehouse"),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_service.bootstrap_servers,
        "REDIS_URL": f"redis://127.0.0.1:{redis_service.port}/{REDIS_DB}",
        "MLFLOW_TRACKING_URI": serving_mlflow,
        "COELHO_MODEL_SIGNING_KEY": "serving-tests-signing-key",
        "COELHO_LIVE_CHECK_SECONDS": "0",
        "COELHO_MLFLOW_CHECK_SECONDS": "0",
        "COELHO_REDIS_RETRY_SECONDS": "0",
        "COELHO_HEALTH_REQUIRED": "mlflow",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    }
    (home / "lakehouse").mkdir(parents=True)
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    patch.delenv("COELHO_API_KEY", raising=False)
    patch.delenv("COELHO_CORS_ORIGINS", raising=False)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    yield Stack(env, redis_service.port)
    patch.undo()


def generate(spec: Any, n: int, seed: int) -> list[dict[str, Any]]:
    options = {"start": START, **GENERATOR_OPTIONS.get(spec.key, {})}
    return list(itertools.islice(spec.generator(seed=seed, **options), n))


def produce(bootstrap_servers: str, topic: str, spec: Any, events: list[dict]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True})
    errors: list[str] = []
    for event in events:
        producer.produce(
            topic,
            key=str(event[spec.key_field]).encode(),
            value=json.dumps(event).encode(),
            on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
        )
        producer.poll(0)
    assert producer.flush(60) == 0, "events not delivered"
    assert not errors, errors[:3]


def predict_all(client: TestClient, stack: Stack, events: dict[str, dict]) -> dict[str, Any]:
    """What both predict endpoints answer for each use case: (status, body)."""
    answers = {}
    for key, event in events.items():
        for area in ("incremental", "batch"):
            response = client.post(f"/api/v1/{area}/{key}/predict", json=event)
            answers[(area, key)] = (response.status_code, response.json())
    return answers


@dataclass
class Trained:
    before: dict[Any, Any]
    events: dict[str, list[dict[str, Any]]]
    topics: dict[str, str]
    ingested: dict[str, int]
    batch_runs: dict[str, str]
    champion_versions: dict[str, str]
    learner_runs: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="session")
def trained(stack: Stack, kafka_service: Any) -> Trained:
    """The end-to-end pipeline per use case (see the module docstring)."""
    from serving_pipeline import PLOTTED, ingest_all, learn, train_batch

    events = {
        key: generate(spec, EVENTS_PER_USE_CASE, seed=11) for key, spec in stack.specs.items()
    }
    first = {key: evs[0] for key, evs in events.items()}
    with stack.client() as client:
        before = predict_all(client, stack, first)
    topics, ingested, batch_runs, versions, learner_runs = {}, {}, {}, {}, {}
    seconds: dict[str, float] = {}

    def timed(name: str, step: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return step(*args)
        finally:
            seconds[name] = round(time.perf_counter() - started, 1)

    for key, spec in stack.specs.items():
        topics[key] = spec.topic
        timed(f"{key} produce", produce, kafka_service.bootstrap_servers, spec.topic, spec,
              events[key])  # fmt: skip
        ingested[key] = timed(f"{key} ingest", ingest_all, stack, spec, len(events[key]))
        plots = key == PLOTTED
        batch_runs[key], versions[key] = timed(f"{key} batch", train_batch, stack, spec, plots)
        learner_runs[key] = timed(f"{key} learn", learn, stack, spec, LEARNED_EVENTS)
    print(f"pipeline seconds: {seconds}")
    return Trained(before, events, topics, ingested, batch_runs, versions, learner_runs, seconds)
