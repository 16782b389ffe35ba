"""The local platform: start, stop and report the registered services under one `COELHO_HOME`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from coelho.platform import apps, dagster, kafka, mlflow, redis, state_lock
from coelho.platform.process import (
    PlatformError,
    ProcessRecord,
    RunDir,
    last_log_line,
    live_process,
    port_in_use,
    process_env,
    spawn,
    terminate,
    tree_rss,
    wait_until,
)
from coelho.platform.service import Context, ServiceDef
from coelho_pipelines import settings

# The registry, in start order (`down` stops in reverse). A new service is one entry here.
SERVICES: tuple[ServiceDef, ...] = (
    kafka.SERVICE,
    redis.SERVICE,
    mlflow.SERVICE,
    dagster.SERVICE,
    apps.API,
    apps.PRODUCERS,
)

# How our own processes reach each service: (service, variable, address format).
CLIENT_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("kafka", "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:{}"),
    ("redis", "REDIS_URL", "redis://127.0.0.1:{}/0"),
    ("mlflow", "MLFLOW_TRACKING_URI", "http://127.0.0.1:{}"),
)

Reporter = Callable[[str], None]


def service_names() -> list[str]:
    return [service.name for service in SERVICES]


def get_service(name: str) -> ServiceDef:
    for service in SERVICES:
        if service.name == name:
            return service
    raise PlatformError(f"unknown service {name!r}; valid: {', '.join(service_names())}")


def parse_services(text: str | None) -> list[str]:
    """`kafka,redis` -> ['kafka', 'redis'] in registry order; None or empty means all."""
    if not text:
        return service_names()
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    for name in wanted:
        get_service(name)
    return [name for name in service_names() if name in wanted]


def default_project_dir() -> Path:
    """`COELHO_PROJECT_DIR`, else the checkout this package lives in, else the cwd."""
    override = os.environ.get("COELHO_PROJECT_DIR")
    if override:
        return Path(override).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "workspace.yaml").exists():
        return checkout
    return Path.cwd()


@dataclass(frozen=True)
class ServiceStatus:
    """One row of `coelho status`."""

    name: str
    state: str  # healthy | unhealthy | stopped | unavailable
    url: str
    pid: int | None
    rss_bytes: int | None
    log: Path
    detail: str = ""


class Platform:
    """The services of one state directory. `coelho up/down/status` and the test fixtures."""

    lock_wait_seconds: float = state_lock.DEFAULT_WAIT_SECONDS

    def __init__(
        self,
        home: Path,
        *,
        ports: Mapping[str, int] | None = None,
        kafka_lib: Path | None = None,
        project_dir: Path | None = None,
        tie_to_parent: bool = False,
    ) -> None:
        self.home = Path(home).resolve()
        self.ports = dict(ports or {})
        self.kafka_lib = kafka_lib or kafka.default_lib_dir(self.home)
        self.project_dir = project_dir or default_project_dir()
        self.tie_to_parent = tie_to_parent
        self.run_dir = RunDir(self.home)

    @classmethod
    def from_env(cls) -> Platform:
        return cls(settings.coelho_home())

    # -- context -----------------------------------------------------------------------------
    def context(self, requested: Iterable[str] = ()) -> Context:
        base = Context(self.home, self.kafka_lib, self.project_dir, self.ports)
        return Context(
            self.home,
            self.kafka_lib,
            self.project_dir,
            self.ports,
            client_env=self._client_env(base, set(requested)),
            tie_to_parent=self.tie_to_parent,
        )

    def _client_env(self, ctx: Context, requested: set[str]) -> dict[str, str]:
        """Addresses for our processes: services this platform runs win over the environment."""
        env = {
            "COELHO_HOME": str(self.home),
            "COELHO_LAKEHOUSE_URI": os.environ.get(
                "COELHO_LAKEHOUSE_URI", str(self.home / "lakehouse")
            ),
        }
        for name, variable, address in CLIENT_VARIABLES:
            record = self.record(name)
            if record is not None:
                env[variable] = address.format(record.port)
            elif name in requested or variable not in os.environ:
                env[variable] = address.format(ctx.port(name))
            else:
                env[variable] = os.environ[variable]
        for service in SERVICES:
            for key in service.port_keys():
                env[f"COELHO_{key.upper()}_PORT"] = str(ctx.port(key))
        return env

    def record(self, name: str) -> ProcessRecord | None:
        """The record of `name` if its process still runs (stale records are removed)."""
        record = self.run_dir.read(name)
        if record is not None and live_process(record) is None:
            self.run_dir.forget(name)
            return None
        return record

    def url(self, name: str) -> str:
        record = self.record(name)
        service = get_service(name)
        return record.url if record else service.url(self.context().port(service.port_key))

    # -- up ----------------------------------------------------------------------------------
    def up(self, names: Iterable[str] | None = None, report: Reporter = print) -> list[str]:
        """Start the services (and their after-start steps) not running yet, in dependency
        waves. Returns one line per failure; unavailable services are reported, not failures.
        One `up`/`down` at a time per state directory (`state_lock`)."""
        with state_lock.exclusive(self.home, self.lock_wait_seconds, report):
            return self._up(names, report)

    def _up(self, names: Iterable[str] | None, report: Reporter) -> list[str]:
        requested = list(names) if names is not None else service_names()
        ctx = self.context(requested)
        failures: list[str] = []
        failed: set[str] = set()
        remaining = []
        for name in requested:
            reason = get_service(name).unavailable()
            if reason:
                report(f"{name}: unavailable ({reason})")
            else:
                remaining.append(name)
        while remaining:
            wave = [
                name
                for name in remaining
                if not any(dep in remaining for dep in get_service(name).depends_on)
            ]
            remaining = [name for name in remaining if name not in wave]
            launched = {}
            for name in wave:
                blocked = [dep for dep in get_service(name).depends_on if dep in failed]
                if blocked:
                    failed.add(name)
                    failures.append(f"{name}: not started because {', '.join(blocked)} failed")
                    continue
                try:
                    launched[name] = self._launch(ctx, name, report)
                except PlatformError as error:
                    failed.add(name)
                    failures.append(f"{name}: {error}")
            # Health checks of one wave run side by side (they mostly wait).
            with ThreadPoolExecutor(max_workers=max(1, len(launched))) as pool:
                waits = {
                    name: pool.submit(self._await, ctx, name, spawned_at, report)
                    for name, spawned_at in launched.items()
                }
                for name, future in waits.items():
                    try:
                        future.result()
                    except PlatformError as error:
                        failed.add(name)
                        failures.append(f"{name}: {error}")
        return failures

    def start(self, name: str, report: Reporter = lambda _line: None) -> ProcessRecord:
        """Start one service (no-op when running) and wait until healthy; PlatformError if not."""
        failures = self.up([name], report)
        if failures:
            raise PlatformError(failures[0])
        record = self.record(name)
        if record is None:
            raise PlatformError(f"{name} is not running after start")
        return record

    def _launch(self, ctx: Context, name: str, report: Reporter) -> float | None:
        """Spawn the service unless it already runs; the spawn time when it was spawned now."""
        service = get_service(name)
        if self.record(name) is not None:
            return None
        for key in service.port_keys():
            if port_in_use(ctx.port(key)):
                raise PlatformError(
                    f"port {ctx.port(key)} is already in use "
                    f"(set COELHO_{key.upper()}_PORT to another port)"
                )
        service.prepare(ctx)
        spawned_at = time.monotonic()
        command = service.command(ctx)
        log = self.run_dir.log_path(name)
        cwd = service.cwd(ctx) if service.cwd else self.home
        env = process_env({**service.env(ctx), "COELHO_HOME": str(self.home)})
        process = spawn(command, log, env=env, cwd=cwd, tie_to_parent=ctx.tie_to_parent)
        port = ctx.port(service.port_key)
        self.run_dir.write(
            ProcessRecord(
                name=name,
                pid=process.pid,
                create_time=psutil.Process(process.pid).create_time(),
                port=port,
                url=service.url(port),
                log=str(log),
                started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                command=command,
            )
        )
        report(f"{name}: starting (pid {process.pid}, log {log})")
        return spawned_at

    def _await(self, ctx: Context, name: str, spawned_at: float | None, report: Reporter) -> None:
        service = get_service(name)
        record = self.run_dir.read(name)
        if record is None:
            raise PlatformError("no process record after start")
        log = Path(record.log)
        fresh = spawned_at is not None

        def exited() -> str | None:
            if live_process(record) is not None:
                return None
            return f"exited during start-up: {last_log_line(log) or 'no output'} (log: {log})"

        try:
            wait_until(
                lambda: service.healthy(record.port),
                service.start_timeout,
                abort=exited,
                interval=0.3,
            )
            service.after_start(ctx)
        except PlatformError as error:
            if fresh:
                self._stop_record(service, record)
            message = str(error)
            if "log:" not in message:
                message = f"{message}; last log line: {last_log_line(log) or '-'} (log: {log})"
            raise PlatformError(message) from error
        took = time.monotonic() - (spawned_at or 0.0)
        state = f"healthy in {took:.1f}s" if fresh else "already running"
        report(f"{name}: {state} at {record.url}")

    # -- down --------------------------------------------------------------------------------
    def stop(self, name: str, report: Reporter = lambda _line: None) -> bool:
        """Stop one service if it runs; True when a process was stopped."""
        service = get_service(name)
        record = self.record(name)
        if record is None:
            return False
        began = time.monotonic()
        if live_process(record) is not None:
            note = service.before_stop(record.url)
            if note:
                report(f"{name}: {note}")
        self._stop_record(service, record)
        report(f"{name}: stopped (pid {record.pid}) in {time.monotonic() - began:.1f}s")
        return True

    def _stop_record(self, service: ServiceDef, record: ProcessRecord) -> None:
        process = live_process(record)
        if process is not None:
            terminate(process, service.stop_timeout)
        self.run_dir.forget(service.name)

    def down(self, names: Iterable[str] | None = None, report: Reporter = print) -> list[str]:
        """Stop services in reverse start order; returns the names stopped."""
        with state_lock.exclusive(self.home, self.lock_wait_seconds, report):
            return self._down(names, report)

    def _down(self, names: Iterable[str] | None, report: Reporter) -> list[str]:
        wanted = set(names) if names is not None else set(service_names())
        stopped = []
        for service in reversed(SERVICES):
            if service.name in wanted and self.stop(service.name, report):
                stopped.append(service.name)
        return stopped

    # -- status ------------------------------------------------------------------------------
    def status(self, names: Iterable[str] | None = None) -> list[ServiceStatus]:
        wanted = list(names) if names is not None else service_names()
        return [self._status(get_service(name)) for name in wanted]

    def _status(self, service: ServiceDef) -> ServiceStatus:
        log = self.run_dir.log_path(service.name)
        record = self.record(service.name)
        process = live_process(record)
        if record is None or process is None:
            reason = service.unavailable()
            return ServiceStatus(
                service.name,
                "unavailable" if reason else "stopped",
                service.url(self.context().port(service.port_key)),
                None,
                None,
                log,
                reason or "",
            )
        state = "healthy" if service.healthy(record.port) else "unhealthy"
        return ServiceStatus(
            service.name, state, record.url, record.pid, tree_rss(process), Path(record.log)
        )
