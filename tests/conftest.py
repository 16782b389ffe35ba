"""Shared fixtures: real Kafka, Redis and MLflow for the whole session, started lazily.

Each service is started by the same code as `coelho up` (`coelho.platform.Platform`)
on free ports with its data under a pytest temp dir, and stopped at the end of the session.
A service that cannot start FAILS the tests that need it, with the reason (never a skip).

- `kafka_service.bootstrap_servers`: broker with the topic of every use case already created
  (3 partitions, 7-day retention). Topic auto-creation is off, as in production: create other
  topics with `coelho.platform.kafka.ensure_topics(bootstrap, [name])`.
- `redis_service.url` / `.port`; `.stop()` and `.start()` simulate an outage (same port, same
  data).
- `mlflow_service.tracking_uri`.
- `platform_env` (function scope): the environment variables pointing at the three services,
  plus a fresh COELHO_HOME and COELHO_LAKEHOUSE_URI, so `Resource.from_env()` just works.

The Kafka broker jars are resolved once into `COELHO_KAFKA_LIB`, `$COELHO_HOME/lib/kafka` or
the checkout's `.coelho/lib/kafka` (what `make up` uses), shared between sessions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coelho.platform import Platform, PlatformError
from coelho.platform.ephemeral import free_port_platform, shared_kafka_lib

REPO_ROOT = Path(__file__).resolve().parents[1]


# Read once at import, before any test changes COELHO_HOME.
KAFKA_LIB = shared_kafka_lib(REPO_ROOT)


@pytest.fixture(scope="session")
def kafka_lib_dir() -> Path:
    """The shared Kafka broker jar directory, resolved with Maven if needed."""
    from coelho.platform.kafka import resolve_jars

    try:
        return resolve_jars(KAFKA_LIB)
    except PlatformError as error:
        pytest.fail(f"Kafka jars unavailable: {error}", pytrace=False)


@dataclass
class SessionPlatform:
    """One `Platform` for the session, with free ports; services start on first request."""

    platform: Platform
    started: list[str] = field(default_factory=list)

    def ensure(self, name: str) -> None:
        try:
            self.platform.start(name)
        except PlatformError as error:
            pytest.fail(f"{name} could not start: {error}", pytrace=False)
        if name not in self.started:
            self.started.append(name)

    def port(self, key: str) -> int:
        return self.platform.ports[key]


@pytest.fixture(scope="session")
def session_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionPlatform]:
    home = tmp_path_factory.mktemp("coelho-platform")
    platform = free_port_platform(home, kafka_lib=KAFKA_LIB, project_dir=REPO_ROOT)
    session = SessionPlatform(platform)
    yield session
    platform.down(report=lambda _line: None)


@dataclass
class KafkaService:
    bootstrap_servers: str


@dataclass
class RedisService:
    session: SessionPlatform
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Stop the server (SIGTERM; the append-only file keeps the data)."""
        self.session.platform.stop("redis")

    def start(self) -> None:
        """Start it again on the same port with the same data; waits until it answers."""
        self.session.ensure("redis")


@dataclass
class MlflowService:
    tracking_uri: str


@pytest.fixture(scope="session")
def kafka_service(session_platform: SessionPlatform) -> KafkaService:
    session_platform.ensure("kafka")
    return KafkaService(bootstrap_servers=f"127.0.0.1:{session_platform.port('kafka')}")


@pytest.fixture(scope="session")
def redis_service(session_platform: SessionPlatform) -> Iterator[RedisService]:
    session_platform.ensure("redis")
    service = RedisService(session_platform, session_platform.port("redis"))
    yield service


@pytest.fixture
def redis_up(redis_service: RedisService) -> RedisService:
    """The session Redis, restarted first if an earlier test left it stopped."""
    redis_service.start()
    return redis_service


@pytest.fixture(scope="session")
def mlflow_service(session_platform: SessionPlatform) -> MlflowService:
    session_platform.ensure("mlflow")
    return MlflowService(tracking_uri=f"http://127.0.0.1:{session_platform.port('mlflow')}")


@pytest.fixture
def platform_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    kafka_service: KafkaService,
    redis_service: RedisService,
    mlflow_service: MlflowService,
) -> Iterator[dict[str, str]]:
    """Environment variables for `Settings.from_env()` / `Resource.from_env()` on the session
    services, with a fresh COELHO_HOME and lakehouse under `tmp_path`. Yields the values."""
    redis_service.start()
    values = {
        "COELHO_HOME": str(tmp_path / "coelho"),
        "COELHO_LAKEHOUSE_URI": str(tmp_path / "lakehouse"),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_service.bootstrap_servers,
        "REDIS_URL": redis_service.url,
        "MLFLOW_TRACKING_URI": mlflow_service.tracking_uri,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    with contextlib.suppress(FileExistsError):
        (tmp_path / "coelho").mkdir(parents=True)
    yield values
