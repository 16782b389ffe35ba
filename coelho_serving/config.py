"""Serving configuration: the platform settings plus the API's own knobs, from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from coelho_pipelines.settings import Settings

DEPENDENCIES = ("kafka", "redis", "mlflow", "lakehouse")
# The API serves batch models, snapshots and SQL without Kafka or Redis (Redis has a fallback).
DEFAULT_REQUIRED = ("mlflow", "lakehouse")


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    seconds = float(value)
    if seconds < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return seconds


@dataclass(frozen=True)
class ServingConfig:
    """What the API reads at start-up.

    - `cors_origins`: `COELHO_CORS_ORIGINS`, comma separated; `*` allows any origin without
      credentials, explicit origins allow credentials; empty disables CORS.
    - `required`: `COELHO_HEALTH_REQUIRED`, the dependencies whose outage makes /health 503.
    - `live_check_seconds` / `mlflow_check_seconds`: how long a cached model is trusted before
      its version (Redis counter, MLflow snapshot, champion alias) is checked again.
    - `redis_retry_seconds`: after a Redis failure, predictions skip Redis (and use the
      snapshot) for this long instead of waiting on connection timeouts.
    """

    settings: Settings
    cors_origins: tuple[str, ...] = ()
    required: tuple[str, ...] = DEFAULT_REQUIRED
    live_check_seconds: float = 0.5
    mlflow_check_seconds: float = 10.0
    redis_retry_seconds: float = 1.0
    dependency_timeout_seconds: float = 2.0

    @classmethod
    def from_env(cls) -> ServingConfig:
        required = _csv(os.environ.get("COELHO_HEALTH_REQUIRED")) or DEFAULT_REQUIRED
        unknown = sorted(set(required) - set(DEPENDENCIES))
        if unknown:
            raise ValueError(
                f"COELHO_HEALTH_REQUIRED: unknown {', '.join(unknown)}; "
                f"valid: {', '.join(DEPENDENCIES)}"
            )
        return cls(
            settings=Settings.from_env(),
            cors_origins=_csv(os.environ.get("COELHO_CORS_ORIGINS")),
            required=required,
            live_check_seconds=_seconds("COELHO_LIVE_CHECK_SECONDS", 0.5),
            mlflow_check_seconds=_seconds("COELHO_MLFLOW_CHECK_SECONDS", 10.0),
            redis_retry_seconds=_seconds("COELHO_REDIS_RETRY_SECONDS", 1.0),
            dependency_timeout_seconds=_seconds("COELHO_DEPENDENCY_TIMEOUT_SECONDS", 2.0),
        )

    @property
    def api_key(self) -> str | None:
        return self.settings.api_key
