"""One `coelho up`/`down` at a time per state directory.

Two concurrent `up`s on one `COELHO_HOME` would both find a service stopped and both start it
(the second then fails on its port, or worse, overwrites the first one's pid record). An
exclusive `flock` on `$COELHO_HOME/run/platform.lock` serialises them; the holder's pid is
written into the file so a waiting command can say who it waits for. The lock is re-entrant
within a process (`up` may call itself through `start`), and the OS releases it when the
holder dies, so a killed `coelho up` never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from coelho.platform.process import PlatformError

LOCK_FILE = "platform.lock"
DEFAULT_WAIT_SECONDS = 600.0
_POLL_SECONDS = 0.2
_held: dict[Path, int] = {}
_held_lock = threading.Lock()


def lock_path(home: Path) -> Path:
    return Path(home) / "run" / LOCK_FILE


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return "another process"
    return f"pid {pid}" if pid else "another process"


@contextlib.contextmanager
def exclusive(
    home: Path,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    report: Callable[[str], None] = lambda _line: None,
) -> Iterator[None]:
    """Hold the state directory's lock; wait up to `wait_seconds` for another holder, then
    raise PlatformError naming it."""
    path = lock_path(home)
    with _held_lock:
        if _held.get(path):
            _held[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_lock:
                _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, wait_seconds, report)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        with _held_lock:
            _held[path] = 1
        try:
            yield
        finally:
            with _held_lock:
                _held.pop(path, None)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, wait_seconds: float, report: Callable[[str], None]) -> None:
    deadline = time.monotonic() + wait_seconds
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = _holder(path)
            if time.monotonic() >= deadline:
                raise PlatformError(
                    f"another `coelho up`/`down` ({holder}) holds {path}; "
                    "wait for it to finish or stop it"
                ) from None
            if not told:
                report(f"waiting for another `coelho up`/`down` on this state dir ({holder}) ...")
                told = True
            time.sleep(_POLL_SECONDS)
