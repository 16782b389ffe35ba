"""Consistent copies of the learner state, pickled without blocking learning.

Pickling an ARF forest costs ~0.1 s per MB and holds the GIL, so a background *thread*
would still stall learning; `copy.deepcopy` is slower than pickling. A forked child gets a
copy-on-write image of the state at one event boundary for the price of a fork: it pickles
and signs the bundle (and the progress, for snapshots) into files and exits, while the
parent keeps learning. `mode="inline"` pickles in the calling thread (no fork available,
shutdown, benchmarks).

The child touches nothing but the objects it pickles and its output files: no logging,
no sockets, garbage collection off, and `os._exit` so no finalizer or atexit handler runs.
"""

from __future__ import annotations

import gc
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from coelho_pipelines import signing
from coelho_pipelines.incremental.snapshot import BUNDLE_FILE, PROGRESS_FILE, write_state_files

CaptureMode = Literal["fork", "inline"]


def default_mode() -> CaptureMode:
    return "fork" if hasattr(os, "fork") else "inline"


def _blob(obj: Any, key: bytes) -> bytes:
    return signing.sign(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), key)


@dataclass
class Capture:
    """One captured state: files on disk once `done`; consumers `release` it when finished."""

    directory: Path
    events_learned: int
    offsets: dict[int, int]
    model_version: int
    with_progress: bool
    started: float  # time.monotonic() at capture
    blocking_seconds: float = 0.0  # time the learning thread spent on it
    pid: int | None = None
    ok: bool = False
    error: str | None = None
    finished: float | None = None
    _refs: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def bundle_path(self) -> Path:
        return self.directory / BUNDLE_FILE

    @property
    def progress_path(self) -> Path:
        return self.directory / PROGRESS_FILE

    def retain(self, count: int = 1) -> None:
        with self._lock:
            self._refs += count

    def release(self) -> None:
        with self._lock:
            self._refs -= 1
            last = self._refs <= 0
        if last:
            shutil.rmtree(self.directory, ignore_errors=True)

    def wait(self) -> bool:
        """Block until the child finished (no-op for inline captures); True if it succeeded."""
        if self.pid is not None and self.finished is None:
            _, status = os.waitpid(self.pid, 0)
            self.ok = os.waitstatus_to_exitcode(status) == 0 and self.bundle_path.exists()
            if not self.ok:
                self.error = f"capture child exited with status {status}"
            self.finished = time.monotonic()
        return self.ok


class Capturer:
    """Takes captures of (bundle, progress) into a private temp directory."""

    def __init__(self, mode: CaptureMode | None = None, workdir: Path | None = None) -> None:
        self.mode = mode or default_mode()
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="coelho-capture-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.key = signing.signing_key()  # resolved once, before any fork
        self._seq = 0

    def capture(
        self, bundle: Any, progress: Any, snapshot: bool, mode: CaptureMode | None = None
    ) -> Capture:
        """Start a capture of the current state; the progress is pickled only for snapshots."""
        start = time.monotonic()
        self._seq += 1
        directory = self.workdir / f"capture-{self._seq}"
        directory.mkdir()
        capture = Capture(
            directory=directory,
            events_learned=progress.events_learned,
            offsets=dict(progress.offsets),
            model_version=progress.model_version,
            with_progress=snapshot,
            started=start,
        )
        progress = progress if snapshot else None
        if (mode or self.mode) == "fork":
            capture.pid = self._fork(directory, bundle, progress)
        else:
            try:
                write_state_files(
                    directory,
                    _blob(bundle, self.key),
                    None if progress is None else _blob(progress, self.key),
                )
                capture.ok = True
            except Exception as exc:  # noqa: BLE001 - reported by the caller
                capture.error = repr(exc)
            capture.finished = time.monotonic()
        capture.blocking_seconds = time.monotonic() - start
        return capture

    def _fork(self, directory: Path, bundle: Any, progress: Any | None) -> int:
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:  # the child: pickle, write, exit; never return into the caller
            gc.disable()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            write_state_files(
                directory,
                _blob(bundle, self.key),
                None if progress is None else _blob(progress, self.key),
            )
            code = 0
        finally:
            os._exit(code)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
