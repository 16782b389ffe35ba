"""Test fakes: random valid events built from a spec's FieldSpecs (no dependency on generators)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from coelho_pipelines.events.fields import FieldSpec
from coelho_pipelines.use_cases.spec import UseCaseSpec

START = datetime(2025, 3, 1, tzinfo=UTC)


def fake_value(field: FieldSpec, rng: random.Random, index: int) -> Any:
    if field.type == "struct":
        return {child.name: fake_value(child, rng, index) for child in field.children}
    if field.nullable and rng.random() < 0.2:
        return None
    if field.choices is not None:
        return rng.choice(field.choices)
    low = field.minimum if field.minimum is not None else 0.0
    high = field.maximum if field.maximum is not None else low + 1000.0
    if field.type == "float":
        return round(rng.uniform(low, high), 4)
    if field.type == "int":
        return rng.randint(int(low), int(high))
    if field.type == "bool":
        return rng.random() < 0.5
    if field.type == "timestamp":
        moment = START + timedelta(seconds=index * 7 + rng.random())
        return moment.isoformat()
    return f"{field.name}_{rng.randint(0, 10_000)}"


def fake_event(spec: UseCaseSpec, rng: random.Random, index: int = 0) -> dict[str, Any]:
    """One valid event of `spec` with a unique id."""
    event = {f.name: fake_value(f, rng, index) for f in spec.fields}
    event[spec.id_field] = str(uuid.UUID(int=rng.getrandbits(128)))
    return event


def fake_events(spec: UseCaseSpec, n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [fake_event(spec, rng, i) for i in range(n)]
