"""A model cache that loads once per version, off the event loop, one loader per key at a time.

A cached model (or the fact that there is none) is trusted for `max_age` seconds; after that the
next request probes its version (cheap: a Redis counter, an MLflow alias) and reloads only if
the version changed. Probing and
loading run in worker threads; a per-key lock makes concurrent requests share one load, and
requests that arrive while a fresh check is under way keep using the model they have.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from coelho_pipelines import telemetry

V = TypeVar("V", bound=Hashable)


@dataclass
class CachedModel(Generic[V]):
    """A loaded model and what it is: its version and where it came from."""

    model: Any
    version: V
    source: str
    loaded_at: float = field(default_factory=time.monotonic)
    checked_at: float = field(default_factory=time.monotonic)


class ModelCache:
    """Models by key (e.g. `("tfd", "live")`), bounded to `max_entries` (least recently used)."""

    def __init__(self, max_entries: int = 32) -> None:
        self._entries: OrderedDict[Hashable, CachedModel] = OrderedDict()
        self._absent: dict[Hashable, float] = {}  # key -> when a probe last found no model
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._max_entries = max_entries
        self.loads = 0

    def peek(self, key: Hashable) -> CachedModel | None:
        return self._entries.get(key)

    def evict(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def _lock(self, key: Hashable) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _store(self, key: Hashable, entry: CachedModel) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            old_key, _ = self._entries.popitem(last=False)
            self._locks.pop(old_key, None)

    async def get(
        self,
        key: Hashable,
        *,
        use_case: str,
        source: str,
        max_age: float,
        probe: Callable[[], V | None],
        load: Callable[[V], Any],
    ) -> CachedModel | None:
        """The model for `key`, loading or reloading it if its version changed.

        `probe()` returns the current version (None when there is no model); `load(version)`
        returns the model. Both are blocking and run in a thread. Errors propagate.
        """
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry.checked_at < max_age:
            return self._hit(key, entry, use_case, source)
        absent_since = self._absent.get(key)
        if absent_since is not None and time.monotonic() - absent_since < max_age:
            return None  # known to be missing: no probe until max_age passes
        lock = self._lock(key)
        if entry is not None and lock.locked():
            return self._hit(key, entry, use_case, source)
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and time.monotonic() - entry.checked_at < max_age:
                return self._hit(key, entry, use_case, source)
            version = await asyncio.to_thread(probe)
            if version is None:
                self._entries.pop(key, None)
                self._absent[key] = time.monotonic()
                return None
            self._absent.pop(key, None)
            if entry is not None and entry.version == version:
                entry.checked_at = time.monotonic()
                return self._hit(key, entry, use_case, source)
            started = time.perf_counter()
            model = await asyncio.to_thread(load, version)
            telemetry.API_MODEL_LOAD.labels(use_case, source).observe(time.perf_counter() - started)
            self.loads += 1
            entry = CachedModel(model=model, version=version, source=source)
            self._store(key, entry)
            return entry

    def _hit(self, key: Hashable, entry: CachedModel, use_case: str, source: str) -> CachedModel:
        self._entries.move_to_end(key)
        telemetry.API_CACHE_HITS.labels(use_case, source).inc()
        return entry

    async def get_immutable(
        self, key: Hashable, *, use_case: str, source: str, load: Callable[[], Any]
    ) -> CachedModel:
        """A model that never changes once it exists (e.g. a given MLflow run): load once."""
        return await self.get(
            key,
            use_case=use_case,
            source=source,
            max_age=float("inf"),
            probe=lambda: key,
            load=lambda _version: load(),
        )
