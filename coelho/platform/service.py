"""What a local service is, as data: adding a service is one `ServiceDef` in the registry."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from coelho_pipelines import settings


@dataclass(frozen=True)
class Context:
    """Where the platform keeps its state and which ports it uses.

    `ports` overrides `COELHO_<SERVICE>_PORT` (tests pass free ports); `client_env` is the
    environment handed to our own processes (Dagster, API, producers) so they reach the
    services this platform runs.
    """

    home: Path
    kafka_lib: Path
    project_dir: Path
    ports: Mapping[str, int] = field(default_factory=dict)
    client_env: Mapping[str, str] = field(default_factory=dict)
    tie_to_parent: bool = False

    def port(self, key: str) -> int:
        return self.ports[key] if key in self.ports else settings.port(key)

    def data_dir(self, name: str) -> Path:
        path = self.home / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def _nothing(_ctx: Context) -> None:
    return None


def _no_env(_ctx: Context) -> dict[str, str]:
    return {}


def _always_available() -> str | None:
    return None


def _nothing_before_stop(_url: str) -> str | None:
    return None


@dataclass(frozen=True)
class ServiceDef:
    """One local service: how to prepare, start and health-check it.

    - `command(ctx)`: the argv of the long-running process (its stdout goes to the log file);
    - `prepare(ctx)`: checks prerequisites and creates config/storage (raises PlatformError);
    - `after_start(ctx)`: runs once the service is healthy (e.g. create Kafka topics);
    - `healthy(port)`: a quick probe of a running instance;
    - `unavailable()`: a reason the service cannot run in this install, or None;
    - `before_stop(url)`: winds work down through the running service before its process is
      stopped (returns a line to report, or None);
    - `depends_on`: services started (when requested) and healthy before this one.
    """

    name: str
    description: str
    port_key: str
    url: Callable[[int], str]
    command: Callable[[Context], list[str]]
    healthy: Callable[[int], bool]
    prepare: Callable[[Context], None] = _nothing
    after_start: Callable[[Context], None] = _nothing
    env: Callable[[Context], dict[str, str]] = _no_env
    unavailable: Callable[[], str | None] = _always_available
    before_stop: Callable[[str], str | None] = _nothing_before_stop
    depends_on: tuple[str, ...] = ()
    extra_port_keys: tuple[str, ...] = ()
    cwd: Callable[[Context], Path] | None = None
    start_timeout: float = 90.0
    stop_timeout: float = 20.0

    def port_keys(self) -> tuple[str, ...]:
        return (self.port_key, *self.extra_port_keys)


def http_ok(url: str, timeout: float = 2.0, accept: Callable[[int], bool] | None = None) -> bool:
    """Whether `url` answers over HTTP (2xx, or whatever `accept` allows)."""
    accept = accept or (lambda status: 200 <= status < 300)
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=False, trust_env=False)
    except httpx.HTTPError:
        return False
    return accept(response.status_code)


def env_flag(name: str, default: str) -> str:
    return os.environ.get(name, default)
