"""Environment switching in one place: every setting the platform reads, with local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from coelho_pipelines.naming import table_uri as table_uri  # its home is naming; kept here

DEFAULT_PORTS: dict[str, int] = {
    "kafka": 9092,
    "kafka_controller": 9093,
    "redis": 6379,
    "mlflow": 5000,
    "dagster": 3000,
    "api": 8000,
    "producers": 9100,
}


def port(service: str) -> int:
    """The port of a local service: `COELHO_<SERVICE>_PORT` or its default."""
    value = os.environ.get(f"COELHO_{service.upper()}_PORT")
    return int(value) if value else DEFAULT_PORTS[service]


def coelho_home() -> Path:
    """The state directory (`COELHO_HOME`, default `.coelho`), absolute."""
    return Path(os.environ.get("COELHO_HOME", ".coelho")).expanduser().resolve()


@dataclass(frozen=True)
class Settings:
    """A snapshot of the environment as the platform sees it."""

    home: Path
    lakehouse_uri: str
    kafka_bootstrap_servers: str
    redis_url: str
    mlflow_tracking_uri: str
    api_key: str | None

    @classmethod
    def from_env(cls) -> Settings:
        home = coelho_home()
        return cls(
            home=home,
            lakehouse_uri=os.environ.get("COELHO_LAKEHOUSE_URI", str(home / "lakehouse")),
            kafka_bootstrap_servers=os.environ.get(
                "KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{port('kafka')}"
            ),
            redis_url=os.environ.get("REDIS_URL", f"redis://127.0.0.1:{port('redis')}/0"),
            mlflow_tracking_uri=os.environ.get(
                "MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port('mlflow')}"
            ),
            api_key=os.environ.get("COELHO_API_KEY") or None,
        )


def storage_options_from_env() -> dict[str, str]:
    """delta-rs storage options of the lakehouse: `COELHO_STORAGE_<OPTION>` variables."""
    prefix = "COELHO_STORAGE_"
    return {
        key.removeprefix(prefix).lower(): value
        for key, value in os.environ.items()
        if key.startswith(prefix)
    }
