"""Drift monitor benchmark: false alarms on stationary streams, detection delay with drift.

    .venv/bin/python bench/drift.py [--events 50000] [--drift-at 25000] [--use-cases tfd,eta,ecci]
        [--seeds 42] [--cache DIR]

For each use case, the default stream (seeded generator at the producer's default 10 events/s
of event time) is learned prequentially by the platform's `Learner` (the served model's
predict-then-learn loop, River model and features as `coelho up` runs them), once without
and once with `drift_at`. The learner's error stream (what it hands its `DriftMonitor`) is
recorded, then replayed through a fresh `DriftMonitor` (a pure function of that stream, so
the replay gives exactly the alarms the learner would raise). Printed per use case and seed:
alarms without drift (target 0) and, with drift, whether it was detected and the delay in
events from `drift_at` to the first alarm after it (alarms before `drift_at` are false).

`--cache DIR` keeps the recorded error streams (`.npy`), so a rerun only replays.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coelho_pipelines.incremental.drift import DriftMonitor  # noqa: E402
from coelho_pipelines.incremental.learner import Learner, Record  # noqa: E402
from coelho_pipelines.use_cases import get_spec  # noqa: E402

START = "2026-03-02T06:00:00+00:00"  # a Monday morning (UTC)
EVENTS_PER_SECOND = 10.0  # the producer's default rate


class ErrorRecorder:
    """Stands in for the learner's DriftMonitor to record the error stream it is fed."""

    def __init__(self) -> None:
        self.errors: list[tuple[int, float, float]] = []  # (events learned, error, group)
        self.n_drifts = 0

    def update(self, error: float, events_learned: int, event_time: str, group=None) -> None:
        """Record; a missing group is stored as NaN."""
        self.errors.append((events_learned, error, float("nan") if group is None else group))


def record_errors(
    key: str, events: int, drift_at: int | None, seed: int
) -> list[tuple[int, float, float]]:
    """The error stream of the use case's learner over `events` generated events."""
    spec = get_spec(key)
    options: dict[str, Any] = {"drift_at": drift_at} if drift_at is not None else {}
    generator = spec.generator(
        seed=seed, start=START, events_per_second=EVENTS_PER_SECOND, **options
    )
    learner = Learner(spec)
    recorder = ErrorRecorder()
    learner.progress.drift = recorder  # type: ignore[assignment]
    for offset in range(events):
        learner.learn(Record(next(generator), 0, offset))
    return recorder.errors


def cached_errors(
    key: str, events: int, drift_at: int | None, seed: int, cache: Path | None
) -> list[tuple[int, float, float]]:
    import numpy as np

    path = None
    if cache is not None:
        path = cache / f"{key}-{events}-{drift_at}-{seed}.npy"
        if path.exists():
            return [(int(n), e, g) for n, e, g in np.load(path).tolist()]
    started = time.perf_counter()
    errors = record_errors(key, events, drift_at, seed)
    print(
        f"  recorded {key} seed={seed} drift_at={drift_at}: {len(errors)} errors in "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.asarray(errors, dtype=float))
    return errors


def replay(key: str, errors: list[tuple[int, float, float]]) -> list[int]:
    """Event counts (events learned) at which the use case's fresh DriftMonitor (as the
    learner builds it) raises an alarm."""
    monitor = DriftMonitor.for_spec(get_spec(key))
    alarms = []
    for events_learned, error, group in errors:
        drift = monitor.update(error, events_learned, "", None if group != group else group)
        if drift is not None:
            alarms.append(drift.events_learned)
    return alarms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--drift-at", type=int, default=25_000)
    parser.add_argument("--use-cases", default="tfd,eta,ecci")
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for key in args.use_cases.split(","):
        for seed in seeds:
            stationary = replay(key, cached_errors(key, args.events, None, seed, args.cache))
            drifted = replay(key, cached_errors(key, args.events, args.drift_at, seed, args.cache))
            false = [a for a in drifted if a < args.drift_at]
            after = [a for a in drifted if a >= args.drift_at]
            delay = str(after[0] - args.drift_at) if after else "not detected"
            rows.append((key, seed, len(stationary), len(false), delay, stationary[:3]))
    print(f"\n{args.events} events per stream, drift at {args.drift_at}, "
          f"{EVENTS_PER_SECOND:g} events/s of event time from {START}")  # fmt: skip
    header = ("use case", "seed", "alarms, no drift", "alarms before drift", "delay (events)")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for key, seed, n_stationary, n_false, delay, first in rows:
        where = f" (at {', '.join(map(str, first))})" if first else ""
        print(f"| {key} | {seed} | {n_stationary}{where} | {n_false} | {delay} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
