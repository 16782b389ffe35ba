"""Seeded 50,000-event streams, generated once per session and shared by the generator tests."""

from __future__ import annotations

import pytest

from coelho_pipelines.use_cases.ecci.generator import InteractionGenerator
from coelho_pipelines.use_cases.eta.generator import TripGenerator
from coelho_pipelines.use_cases.tfd.generator import TransactionGenerator

N_EVENTS = 50_000
START = "2025-03-03T00:00:00+00:00"  # a Monday


@pytest.fixture(scope="session")
def tfd_events() -> list[dict]:
    return TransactionGenerator(seed=11, start=START, events_per_second=0.2).take(N_EVENTS)


@pytest.fixture(scope="session")
def eta_events() -> list[dict]:
    # ~0.05 trips per simulated second: the stream spans about 11 days (weekdays and weekends).
    return TripGenerator(seed=12, start=START, events_per_second=0.05).take(N_EVENTS)


@pytest.fixture(scope="session")
def ecci_stream() -> tuple[InteractionGenerator, list[dict], list[dict]]:
    """The generator, its events and their ground truth (segment, session)."""
    generator = InteractionGenerator(seed=13, start=START)
    pairs = generator.iter_with_truth()
    events, truth = [], []
    for _ in range(N_EVENTS):
        event, labels = next(pairs)
        events.append(event)
        truth.append(labels)
    return generator, events, truth


@pytest.fixture(scope="session")
def streams(tfd_events, eta_events, ecci_stream) -> dict[str, list[dict]]:
    return {"tfd": tfd_events, "eta": eta_events, "ecci": ecci_stream[1]}
