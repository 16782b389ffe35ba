"""Background processes of the local platform: spawn, record, measure and stop them."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil


class PlatformError(Exception):
    """A local platform problem, reported to the user as one line."""


@dataclass(frozen=True)
class ProcessRecord:
    """What `coelho up` remembers about a running service (`$COELHO_HOME/run/<name>.json`)."""

    name: str
    pid: int
    create_time: float
    port: int
    url: str
    log: str
    started_at: str
    command: list[str]


class RunDir:
    """Pid files, state records and log files of the services under one `COELHO_HOME`."""

    def __init__(self, home: Path) -> None:
        self.run = home / "run"
        self.logs = home / "logs"

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def read(self, name: str) -> ProcessRecord | None:
        path = self.run / f"{name}.json"
        try:
            return ProcessRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, record: ProcessRecord) -> None:
        self.run.mkdir(parents=True, exist_ok=True)
        (self.run / f"{record.name}.pid").write_text(f"{record.pid}\n")
        tmp = self.run / f"{record.name}.json.tmp"
        tmp.write_text(json.dumps(asdict(record), indent=2))
        tmp.replace(self.run / f"{record.name}.json")

    def forget(self, name: str) -> None:
        for suffix in (".json", ".pid"):
            (self.run / f"{name}{suffix}").unlink(missing_ok=True)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when the process that started it dies (test sessions)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(
    command: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str],
    cwd: Path,
    tie_to_parent: bool = False,
) -> subprocess.Popen:
    """Start `command` in its own session, stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n=== coelho: starting at {stamp}: {' '.join(command)}\n".encode())
        log.flush()
        try:
            return subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
                preexec_fn=_die_with_parent if tie_to_parent else None,
            )
        except OSError as error:
            raise PlatformError(f"cannot run {command[0]}: {error.strerror}") from error


def live_process(record: ProcessRecord | None) -> psutil.Process | None:
    """The recorded process if it still runs (same pid and start time, not a zombie)."""
    if record is None:
        return None
    try:
        process = psutil.Process(record.pid)
        if abs(process.create_time() - record.create_time) > 1.0:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except psutil.Error:
        return None


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for member in [process, *_descendants(process)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until the processes exit (a zombie counts as gone); returns those still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if not _gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if not _gone(p)]
    return alive


def terminate(process: psutil.Process, timeout: float) -> None:
    """SIGTERM the process, wait `timeout`, then its leftover descendants, then SIGKILL."""
    tree = [process, *_descendants(process)]
    with contextlib.suppress(psutil.Error):
        process.terminate()
    alive = _wait_gone([process], timeout)
    leftovers = [p for p in tree[1:] if not _gone(p)] + alive
    for member in leftovers:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    alive = _wait_gone(leftovers, 5)
    alive += [p for p in _session_members(process.pid) if p not in alive and not _gone(p)]
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    _wait_gone(alive, 5)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(process.pid, os.WNOHANG)  # reap it when it is our own child


def _session_members(session_id: int) -> list[psutil.Process]:
    """Processes still in the session we started (orphans re-parented to init included)."""
    members = []
    for candidate in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(candidate.pid) == session_id and candidate.is_running():
                members.append(candidate)
    return members


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    *,
    interval: float = 0.25,
    abort: Callable[[], str | None] = lambda: None,
) -> None:
    """Poll `check` until true; PlatformError on timeout or when `abort` returns a reason."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        reason = abort()
        if reason:
            raise PlatformError(reason)
        if time.monotonic() >= deadline:
            raise PlatformError(f"not healthy after {timeout:.0f}s")
        time.sleep(interval)


def last_log_line(path: Path, max_bytes: int = 8192) -> str:
    """The last non-empty line of a log file, for one-line error messages."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - max_bytes))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if line.strip() and not line.startswith("=== coelho"):
            return line.strip()[:300]
    return ""


def terminate_pid(pid: int, timeout: float) -> None:
    """`terminate` by pid, ignoring a process that is already gone."""
    with contextlib.suppress(psutil.Error):
        terminate(psutil.Process(pid), timeout)


def process_env(extra: Mapping[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}
