"""Environment switching in one place: every setting the platform reads, with local defaults.

The variables are parsed by pydantic-settings (`Ports`, `Environment`); a bad value raises
`SettingsError` naming the variable. An empty variable counts as unset. The Dagster code
location puts no set value in resource config: `coelho_pipelines.resources.build_resources`
turns each set variable into a `dg.EnvVar`, read when a run launches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

# The public variable names, one home each.
HOME_ENV = "COELHO_HOME"
LAKEHOUSE_URI_ENV = "COELHO_LAKEHOUSE_URI"
KAFKA_BOOTSTRAP_SERVERS_ENV = "KAFKA_BOOTSTRAP_SERVERS"
REDIS_URL_ENV = "REDIS_URL"
MLFLOW_TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
API_KEY_ENV = "COELHO_API_KEY"
STORAGE_PREFIX = "COELHO_STORAGE_"

DEFAULT_PORTS: dict[str, int] = {
    "kafka": 9092,
    "kafka_controller": 9093,
    "redis": 6379,
    "mlflow": 5000,
    "dagster": 3000,
    "api": 8000,
    "producers": 9100,
}


class SettingsError(ValueError):
    """An environment variable holds a value the platform cannot use."""


def port_env(service: str) -> str:
    """The variable that overrides the port of `service`: `COELHO_<SERVICE>_PORT`."""
    return f"COELHO_{service.upper()}_PORT"


def _port(service: str) -> Any:
    return Field(DEFAULT_PORTS[service], ge=0, le=65535, validation_alias=port_env(service))


# How every settings class reads the environment: exact names, empty = unset, frozen.
FROM_ENVIRONMENT = SettingsConfigDict(
    case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True
)


class Ports(BaseSettings):
    """Local service ports, `COELHO_<SERVICE>_PORT` (0..65535)."""

    model_config = FROM_ENVIRONMENT

    kafka: int = _port("kafka")
    kafka_controller: int = _port("kafka_controller")
    redis: int = _port("redis")
    mlflow: int = _port("mlflow")
    dagster: int = _port("dagster")
    api: int = _port("api")
    producers: int = _port("producers")


class Environment(BaseSettings):
    """The platform's variables as set; `None` where unset (`Settings` fills the defaults)."""

    model_config = FROM_ENVIRONMENT

    home: Path = Field(Path(".coelho"), validation_alias=HOME_ENV)
    lakehouse_uri: str | None = Field(None, validation_alias=LAKEHOUSE_URI_ENV)
    kafka_bootstrap_servers: str | None = Field(None, validation_alias=KAFKA_BOOTSTRAP_SERVERS_ENV)
    redis_url: str | None = Field(None, validation_alias=REDIS_URL_ENV)
    mlflow_tracking_uri: str | None = Field(None, validation_alias=MLFLOW_TRACKING_URI_ENV)
    api_key: str | None = Field(None, validation_alias=API_KEY_ENV)


class RunOptions(BaseSettings):
    """Options of the platform's runs and processes, each with a local default."""

    model_config = FROM_ENVIRONMENT

    learner_metrics_port: int = Field(
        0, ge=0, le=65535, validation_alias="COELHO_LEARNER_METRICS_PORT"
    )  # a learner run's Prometheus port; 0: none
    ingestion_metrics_port: int = Field(
        0, ge=0, le=65535, validation_alias="COELHO_INGESTION_METRICS_PORT"
    )  # a continuous ingestion run's Prometheus port; 0: none
    batch_start_date: date = Field(
        date(2026, 1, 1), validation_alias="COELHO_BATCH_START_DATE"
    )  # the first daily partition of every use case
    produce_rate: float = Field(
        10.0, gt=0, validation_alias="COELHO_PRODUCE_RATE"
    )  # events per second per use case from `coelho up`'s producers


_Loaded = TypeVar("_Loaded", bound=BaseSettings)


def load(settings_class: type[_Loaded]) -> _Loaded:
    """`settings_class` read from the environment; a bad value raises `SettingsError`, which
    quotes it (so a secret belongs in a plain `str` field, which cannot fail)."""
    try:
        return settings_class()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}={problem['input']!r}: "
            f"{problem['msg']}"
            for problem in error.errors()
        )
        raise SettingsError(f"bad environment variable: {problems}") from None


def port(service: str) -> int:
    """The port of a local service: `COELHO_<SERVICE>_PORT` or its default."""
    if service not in DEFAULT_PORTS:
        raise KeyError(service)
    return getattr(load(Ports), service)


def coelho_home() -> Path:
    """The state directory (`COELHO_HOME`, default `.coelho`), absolute."""
    return load(Environment).home.expanduser().resolve()


@dataclass(frozen=True)
class Settings:
    """A snapshot of the environment as the platform sees it, defaults filled in."""

    home: Path
    lakehouse_uri: str
    kafka_bootstrap_servers: str
    redis_url: str
    mlflow_tracking_uri: str
    api_key: str | None

    @classmethod
    def from_env(cls) -> Settings:
        env, ports = load(Environment), load(Ports)
        home = env.home.expanduser().resolve()
        return cls(
            home=home,
            lakehouse_uri=env.lakehouse_uri or str(home / "lakehouse"),
            kafka_bootstrap_servers=env.kafka_bootstrap_servers or f"127.0.0.1:{ports.kafka}",
            redis_url=env.redis_url or f"redis://127.0.0.1:{ports.redis}/0",
            mlflow_tracking_uri=env.mlflow_tracking_uri or f"http://127.0.0.1:{ports.mlflow}",
            api_key=env.api_key,
        )


def storage_option_variables() -> dict[str, str]:
    """delta-rs storage option -> the `COELHO_STORAGE_<OPTION>` variable that sets it."""
    return {
        name.removeprefix(STORAGE_PREFIX).lower(): name
        for name in os.environ
        if name.startswith(STORAGE_PREFIX)
    }


def storage_options_from_env() -> dict[str, str]:
    """delta-rs storage options of the lakehouse: `COELHO_STORAGE_<OPTION>` variables."""
    return {option: os.environ[name] for option, name in storage_option_variables().items()}
