"""Serving configuration: the platform settings plus the API's own knobs, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings

from coelho_pipelines.settings import FROM_ENVIRONMENT, Settings, load

DEPENDENCIES = ("kafka", "redis", "mlflow", "lakehouse")
# The API serves batch models, snapshots and SQL without Kafka or Redis (Redis has a fallback).
DEFAULT_REQUIRED = ("mlflow", "lakehouse")


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


class ServingEnvironment(BaseSettings):
    """The API's own variables (pydantic-settings; empty counts as unset)."""

    model_config = FROM_ENVIRONMENT

    cors_origins: str | None = Field(None, validation_alias="COELHO_CORS_ORIGINS")
    health_required: str | None = Field(None, validation_alias="COELHO_HEALTH_REQUIRED")
    live_check_seconds: float = Field(0.5, ge=0, validation_alias="COELHO_LIVE_CHECK_SECONDS")
    mlflow_check_seconds: float = Field(10.0, ge=0, validation_alias="COELHO_MLFLOW_CHECK_SECONDS")
    redis_retry_seconds: float = Field(1.0, ge=0, validation_alias="COELHO_REDIS_RETRY_SECONDS")
    dependency_timeout_seconds: float = Field(
        2.0, ge=0, validation_alias="COELHO_DEPENDENCY_TIMEOUT_SECONDS"
    )


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
        env = load(ServingEnvironment)
        required = _csv(env.health_required) or DEFAULT_REQUIRED
        unknown = sorted(set(required) - set(DEPENDENCIES))
        if unknown:
            raise ValueError(
                f"COELHO_HEALTH_REQUIRED: unknown {', '.join(unknown)}; "
                f"valid: {', '.join(DEPENDENCIES)}"
            )
        return cls(
            settings=Settings.from_env(),
            cors_origins=_csv(env.cors_origins),
            required=required,
            live_check_seconds=env.live_check_seconds,
            mlflow_check_seconds=env.mlflow_check_seconds,
            redis_retry_seconds=env.redis_retry_seconds,
            dependency_timeout_seconds=env.dependency_timeout_seconds,
        )

    @property
    def api_key(self) -> str | None:
        return self.settings.api_key
