"""Consistent copies of the learner state, pickled without blocking learning.

Pickling an ARF forest costs ~0.1 s per MB and holds the GIL, so a background *thread*
would still stall learning; `copy.deepcopy` is slower than pickling. A forked child gets a
copy-on-write image of the state at one event boundary for the price of a fork: it pickles
and signs the bundle (and the progress, for snapshots) into files and exits, while the
parent keeps learning. `mode="inline"` pickles in the calling thread (no fork available,
shutdown, benchmarks); `mode="auto"` (the default) pickles inline while that costs less
than a fork (~10-30 ms), i.e. for small models, and forks from then on. The cost is predicted
from the last capture's, scaled by how many more events the model has learned since.

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

CaptureMode = Literal["auto", "fork", "inline"]
# "auto": fork while pickling costs more than this (a fork costs ~10-30 ms of the learning
# thread), pickle inline below it (small models: DBSTREAM, young forests). Every capture
# measures its pickling time, so the choice follows the model as it grows.
FORK_ABOVE_SECONDS = 0.02
TIMING_FILE = "pickle_seconds"


def default_mode() -> CaptureMode:
    return "auto" if hasattr(os, "fork") else "inline"


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
    pickle_seconds: float | None = None  # pickling + signing + writing, however done
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

    def poll(self) -> bool:
        """Whether the capture is finished (never blocks)."""
        if self.pid is None or self.finished is not None:
            return True
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return False
        self._reaped(status)
        return True

    def wait(self) -> bool:
        """Block until the child finished (no-op for inline captures); True if it succeeded."""
        if self.pid is not None and self.finished is None:
            _, status = os.waitpid(self.pid, 0)
            self._reaped(status)
        return self.ok

    def _reaped(self, status: int) -> None:
        self.ok = os.waitstatus_to_exitcode(status) == 0 and self.bundle_path.exists()
        if not self.ok:
            self.error = f"capture child exited with status {status}"
        else:
            timing = self.directory / TIMING_FILE
            self.pickle_seconds = float(timing.read_text()) if timing.exists() else None
        self.finished = time.monotonic()


class Capturer:
    """Takes captures of (bundle, progress) into a private temp directory."""

    def __init__(self, mode: CaptureMode | None = None, workdir: Path | None = None) -> None:
        self.mode = mode or default_mode()
        if self.mode != "inline" and not hasattr(os, "fork"):
            self.mode = "inline"
        self._last: Capture | None = None
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
        if self._use_fork(mode or self.mode, capture.events_learned):
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
            capture.pickle_seconds = capture.finished - start
        capture.blocking_seconds = time.monotonic() - start
        self._last = capture
        return capture

    def _use_fork(self, mode: CaptureMode, events_learned: int) -> bool:
        if mode != "auto":
            return mode == "fork"
        last = self._last
        if last is None or last.pickle_seconds is None or last.events_learned <= 0:
            return True  # unknown cost (first capture, e.g. of a big resumed forest)
        # A forest's pickle grows with the events it learned: a young eta forest that took
        # 5 ms at 100 events takes ~50 ms 600 events later. Scale the last cost by that growth.
        growth = max(1.0, events_learned / last.events_learned)
        return last.pickle_seconds * growth > FORK_ABOVE_SECONDS

    def _fork(self, directory: Path, bundle: Any, progress: Any | None) -> int:
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:  # the child: pickle, write, exit; never return into the caller
            gc.disable()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            start = time.monotonic()
            write_state_files(
                directory,
                _blob(bundle, self.key),
                None if progress is None else _blob(progress, self.key),
            )
            (directory / TIMING_FILE).write_text(repr(time.monotonic() - start))
            code = 0
        finally:
            os._exit(code)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
