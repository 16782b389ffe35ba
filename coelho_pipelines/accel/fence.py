"""The gate in front of a fast path that reads a library's private internals.

A `Fence` lets its fast path run only when
- it is not turned off (`COELHO_ACCEL=0`, read at every `open()` so a bench can compare both
  paths in one process),
- the installed library is one of the exact versions the fast path was written against (the
  versions of `requirements-dev.lock`), and
- its probe (the fast path and the public path on a small fitted model) agrees.
Otherwise the public path serves, and one log line says why. The version check and the probe
run once per process (at first use); their answer is kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from importlib import metadata

log = logging.getLogger("coelho.accel")

ENV = "COELHO_ACCEL"
_OFF = frozenset({"0", "false", "off", "no"})


def accel_enabled() -> bool:
    """False when `COELHO_ACCEL` turns every fast path off."""
    return os.environ.get(ENV, "1").strip().lower() not in _OFF


@contextlib.contextmanager
def accel_set(on: bool) -> Iterator[None]:
    """`COELHO_ACCEL` set for the block (fast paths on or off), restored after: how a bench
    measures both paths in one process."""
    before = os.environ.get(ENV)
    os.environ[ENV] = "1" if on else "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


class Fence:
    """One fast path's gate: `open()` says whether the fast path may serve."""

    def __init__(
        self,
        name: str,
        distribution: str,
        versions: frozenset[str],
        probe: Callable[[], bool] | None = None,
        version: Callable[[str], str | None] = installed_version,
    ) -> None:
        self.name = name
        self.distribution = distribution
        self.versions = versions
        self.probe = probe
        self._version = version
        self._verdict: str | None = None  # None: not checked yet; "": open; else why closed
        self._said: set[str] = set()
        self._lock = threading.Lock()  # one probe even when two models load at once

    def open(self) -> bool:
        """Whether the fast path may serve (checks the version and runs the probe once)."""
        if not accel_enabled():
            self._say(f"{ENV}=0")
            return False
        verdict = self.reason()
        if verdict:
            self._say(verdict)
        return not verdict

    def reason(self) -> str:
        """Why the fast path does not serve ("" when it does)."""
        if not accel_enabled():
            return f"{ENV}=0"
        with self._lock:
            if self._verdict is None:
                self._verdict = self._check()
            return self._verdict

    def reset(self) -> None:
        """Forget the verdict (the next `open()` checks again)."""
        self._verdict = None
        self._said.clear()

    def _check(self) -> str:
        found = self._version(self.distribution)
        if found not in self.versions:
            allowed = ", ".join(sorted(self.versions))
            return f"{self.distribution} {found} is not on the allow-list ({allowed})"
        if self.probe is None:
            return ""
        try:
            agrees = self.probe()
        except Exception as error:  # noqa: BLE001 - a probe that fails closes the fence
            return f"the agreement probe failed ({type(error).__name__}: {error})"
        return "" if agrees else "the agreement probe disagrees with the public path"

    def _say(self, why: str) -> None:
        if why not in self._said:
            self._said.add(why)
            log.warning("fast path %s off, the public path serves: %s", self.name, why)
