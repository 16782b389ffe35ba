"""Shared machinery of the synthetic event generators: seeded randomness and event time.

Generators are plain Python on a seeded `random.Random` (cheap scalar draws, no per-event
numpy or pydantic), so a stream of tens of thousands of events per second fits on one core.
Event time is simulated: it starts at `start` and advances by exponential gaps whose mean
rate is `events_per_second`, shaped by an hour-of-day activity profile. It is not the wall
clock, so a long stream spans days (useful for daily partitions) unless the caller sets
`events_per_second` to the real production rate.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, tzinfo
from itertools import accumulate
from math import floor
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

DEFAULT_EVENTS_PER_SECOND = 1.0
SECONDS_PER_DAY = 86_400.0


def parse_start(start: datetime | str | float | None) -> float:
    """Event-time start as epoch seconds; `None` means now (UTC) floored to the hour."""
    if start is None:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        return now.timestamp()
    if isinstance(start, int | float):
        return float(start)
    if isinstance(start, str):
        start = datetime.fromisoformat(start.replace("Z", "+00:00"))
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start.timestamp()


def picker(rng: random.Random, items: Sequence[T], weights: Sequence[float]) -> Callable[[], T]:
    """A zero-argument function drawing one of `items` with the given relative weights."""
    if len(items) != len(weights) or not items:
        raise ValueError("items and weights must be non-empty and of equal length")
    cumulative = list(accumulate(weights))
    total = cumulative[-1]
    chosen = tuple(items)
    last = len(chosen) - 1
    draw = rng.random

    def pick() -> T:
        return chosen[min(bisect(cumulative, draw() * total), last)]

    return pick


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


class Draws:
    """Fast seeded randomness: `random.Random` for scalars, numpy buffers for normals and ids.

    Everything derives from one seed, so the same seed gives the same draws.
    """

    def __init__(self, seed: int, stream: str = "") -> None:
        # `stream` separates generators sharing a seed (tfd and eta ids must not coincide).
        digest = hashlib.sha256(f"{stream}/{seed}".encode()).digest()
        self.rng = random.Random(int.from_bytes(digest[:16]))
        self.random = self.rng.random
        self._np = np.random.default_rng(int.from_bytes(digest[16:]))
        self._normals: list[float] = []
        self._hex = ""
        self._hex_at = 0

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def choice(self, items: Sequence[T]) -> T:
        return items[int(self.random() * len(items))]

    def normal(self, mean: float = 0.0, sd: float = 1.0) -> float:
        normals = self._normals
        if not normals:
            normals = self._normals = self._np.standard_normal(8192).tolist()
        return mean + sd * normals.pop()

    def uuid4(self) -> str:
        """A random version-4 UUID string."""
        at = self._hex_at
        if at >= len(self._hex):
            self._hex, at = self._np.bytes(16 * 4096).hex(), 0
        self._hex_at = at + 32
        h = self._hex[at : at + 32]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def uuid4_from(rng: random.Random) -> str:
    """A version-4 UUID string drawn from `rng` (reproducible, unlike `uuid.uuid4`)."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class IsoFormatter:
    """Epoch seconds to ISO-8601 with an explicit `+00:00` offset, millisecond precision.

    Event time only moves forward, so the formatted minute is cached between calls.
    """

    def __init__(self) -> None:
        self._minute = -1
        self._prefix = ""

    def __call__(self, ts: float) -> str:
        minute = int(ts // 60)
        if minute != self._minute:
            self._minute = minute
            self._prefix = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:")
        millis = int((ts - minute * 60) * 1000 + 0.5)
        if millis > 59_999:  # rounding up to the next minute: stay in this one (< 1 ms off)
            millis = 59_999
        return f"{self._prefix}{millis // 1000:02d}.{millis % 1000:03d}+00:00"


class LocalTime:
    """Local (hour 0-23, weekday 0=Monday, month 1-12) of epoch seconds, cached per UTC hour.

    Zone offsets change only on whole hours (true for America/Chicago), so caching on the
    UTC hour bucket is exact.
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._bucket = -1
        self._value = (0, 0, 1)

    def __call__(self, ts: float) -> tuple[int, int, int]:
        bucket = int(ts // 3600)
        if bucket != self._bucket:
            local = datetime.fromtimestamp(bucket * 3600, self.zone)
            self._bucket = bucket
            self._value = (local.hour, local.weekday(), local.month)
        return self._value


class EventClock:
    """Simulated event time: exponential gaps at `events_per_second` x hourly activity.

    `profile` holds 24 relative activity levels by hour (of `hour_of`, default UTC); it is
    normalised to mean 1 so `events_per_second` stays the long-run average rate.
    """

    def __init__(
        self,
        rng: random.Random,
        start: datetime | str | float | None = None,
        events_per_second: float = DEFAULT_EVENTS_PER_SECOND,
        profile: Sequence[float] | None = None,
        hour_of: Callable[[float], int] | None = None,
    ) -> None:
        if events_per_second <= 0:
            raise ValueError("events_per_second must be positive")
        self._random = rng.random
        self.start = parse_start(start)
        self.now = self.start
        self.events_per_second = float(events_per_second)
        profile = tuple(profile or (1.0,) * 24)
        if len(profile) != 24 or min(profile) <= 0:
            raise ValueError("profile needs 24 positive hourly weights")
        mean = sum(profile) / 24
        self._rates = tuple(events_per_second * p / mean for p in profile)
        self._hour_of = hour_of or (lambda ts: int(ts // 3600) % 24)

        self._bucket = -1
        self._rate = self._rates[0]

    def rate_at(self, ts: float) -> float:
        """Events per second at event time `ts`."""
        return self._rates[self._hour_of(ts)]

    def tick(self) -> float:
        """Advance to the next event and return its time (epoch seconds)."""
        now = self.now
        bucket = int(now // 3600)
        if bucket != self._bucket:  # the rate changes only with the hour
            self._bucket = bucket
            self._rate = self._rates[self._hour_of(now)]
        self.now = now = now - math.log(1.0 - self._random()) / self._rate
        return now


def clip(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def fround(value: float, scale: float) -> float:
    """`value` rounded to 1/`scale` (scale 100 -> 2 decimals); faster than `round`."""
    return floor(value * scale + 0.5) / scale


class BaseGenerator:
    """An endless iterator of JSON-ready event dicts; subclasses implement `__next__`."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def take(self, n: int) -> list[dict[str, Any]]:
        """The next `n` events as a list."""
        return [next(self) for _ in range(n)]
