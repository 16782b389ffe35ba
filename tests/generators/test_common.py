"""Properties every generator shares: schema, JSON, timestamps, seeding, event-time options."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from coelho_pipelines.use_cases import all_specs, get_spec
from coelho_pipelines.use_cases.generation import Draws, EventClock, IsoFormatter, fround, picker

SPECS = {spec.key: spec for spec in all_specs()}
KEYS = sorted(SPECS)


def _names(fields) -> dict:
    return {f.name: _names(f.children) if f.type == "struct" else None for f in fields}


def _shape(event: dict) -> dict:
    return {k: _shape(v) if isinstance(v, dict) else None for k, v in event.items()}


@pytest.mark.parametrize("key", KEYS)
def test_every_event_validates_and_has_exactly_the_spec_fields(key, streams):
    spec = SPECS[key]
    expected = _names(spec.fields)
    model = spec.event_model
    for event in streams[key]:
        assert _shape(event) == expected
        model.model_validate(event)


@pytest.mark.parametrize("key", KEYS)
def test_events_are_json_ready_and_keyed(key, streams):
    spec = SPECS[key]
    for event in streams[key][:5000]:
        assert json.loads(json.dumps(event)) == event
        assert isinstance(event[spec.key_field], str) and event[spec.key_field]
        assert uuid.UUID(event[spec.id_field]).version == 4


@pytest.mark.parametrize("key", KEYS)
def test_timestamps_are_utc_iso_and_never_go_back(key, streams):
    times = [event["timestamp"] for event in streams[key]]
    assert all(t.endswith("+00:00") for t in times)
    parsed = [datetime.fromisoformat(t) for t in times]
    assert all(t.utcoffset() == timedelta(0) for t in parsed[:100])
    assert all(a <= b for a, b in zip(parsed, parsed[1:], strict=False))


@pytest.mark.parametrize("key", KEYS)
def test_ids_are_unique(key, streams):
    spec = SPECS[key]
    ids = [event[spec.id_field] for event in streams[key]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("key", KEYS)
def test_same_seed_same_stream_different_seed_different_stream(key):
    spec = get_spec(key)
    start = "2025-06-01T12:00:00+00:00"
    first = list(islice(spec.generator(seed=5, start=start), 3000))
    again = list(islice(spec.generator(seed=5, start=start), 3000))
    other = list(islice(spec.generator(seed=6, start=start), 3000))
    assert first == again
    assert first != other
    assert sum(a[spec.id_field] == b[spec.id_field] for a, b in zip(first, other, strict=True)) == 0


@pytest.mark.parametrize("key", KEYS)
def test_event_time_starts_at_start_and_follows_the_simulated_rate(key):
    spec = get_spec(key)
    start = datetime(2025, 1, 6, tzinfo=UTC)
    events = list(islice(spec.generator(seed=3, start=start, events_per_second=0.05), 20_000))
    first = datetime.fromisoformat(events[0]["timestamp"])
    last = datetime.fromisoformat(events[-1]["timestamp"])
    assert start <= first < start + timedelta(minutes=30)
    span = (last - start).total_seconds()
    # 20,000 events at ~0.05 per simulated second, over days of the hourly activity profile
    assert 0.75 * 400_000 < span < 1.33 * 400_000


@pytest.mark.parametrize("key", KEYS)
def test_long_streams_span_several_days(key, streams):
    first = datetime.fromisoformat(streams[key][0]["timestamp"])
    last = datetime.fromisoformat(streams[key][-1]["timestamp"])
    if key == "ecci":  # default rate, ~1 event per simulated second: most of a day
        assert last - first > timedelta(hours=10)
    else:
        assert last - first > timedelta(days=2)


def test_default_start_is_now_floored_to_the_hour():
    event = next(get_spec("tfd").generator(seed=1))
    now = datetime.now(UTC)
    first = datetime.fromisoformat(event["timestamp"])
    assert now - timedelta(hours=1, minutes=1) <= first <= now + timedelta(hours=1)


def test_iso_formatter_matches_datetime():
    iso = IsoFormatter()
    for ts in (1_700_000_000.0, 1_700_000_000.5, 1_700_000_059.9996, 1_700_000_060.001, 1.8e9):
        expected = datetime.fromtimestamp(ts, UTC)
        parsed = datetime.fromisoformat(iso(ts))
        assert abs((parsed - expected).total_seconds()) <= 0.0005
        assert iso(ts).endswith("+00:00")


def test_draws_make_version4_uuids_and_are_reproducible():
    a, b = Draws(9), Draws(9)
    ids = [a.uuid4() for _ in range(5000)]
    assert ids == [b.uuid4() for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)


def test_fround_matches_round():
    draws = Draws(1)
    for _ in range(10_000):
        value = draws.uniform(-200, 200)
        assert fround(value, 1e6) == round(value, 6)


def test_picker_follows_weights():
    draws = Draws(2)
    pick = picker(draws.rng, ("a", "b", "c"), (0.7, 0.2, 0.1))
    counts = {k: 0 for k in "abc"}
    for _ in range(20_000):
        counts[pick()] += 1
    assert abs(counts["a"] / 20_000 - 0.7) < 0.02
    assert abs(counts["c"] / 20_000 - 0.1) < 0.01


def test_event_clock_rejects_bad_options():
    with pytest.raises(ValueError):
        EventClock(Draws(1).rng, 0, events_per_second=0)
    with pytest.raises(ValueError):
        EventClock(Draws(1).rng, 0, profile=(1.0,) * 23)


def test_use_cases_sharing_a_seed_do_not_share_ids():
    ids = {
        key: {e[SPECS[key].id_field] for e in islice(SPECS[key].generator(seed=1, start=0), 500)}
        for key in KEYS
    }
    assert not ids["tfd"] & ids["eta"] and not ids["eta"] & ids["ecci"]
