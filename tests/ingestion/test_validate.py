"""Event validation: specific reasons, and the columnar path agreeing with the per-event one."""

from __future__ import annotations

import copy
import random

import orjson
import pyarrow as pa
import pytest
from fake_events import fake_events

from coelho_pipelines.events.validate import BatchDecoder, EventValidator
from coelho_pipelines.lakehouse.tables import raw_schema
from coelho_pipelines.use_cases import all_specs, get_spec

SPECS = {spec.key: spec for spec in all_specs()}


@pytest.mark.parametrize("key", sorted(SPECS))
def test_valid_events_pass_both_paths(key: str) -> None:
    spec = SPECS[key]
    events = fake_events(spec, 500)
    values = [orjson.dumps(e) for e in events]
    validator = EventValidator(spec)
    assert [validator.decode(v)[1] for v in values] == [None] * 500
    decoded = BatchDecoder(spec).decode(values)
    assert decoded.rejects == []
    assert decoded.indices == list(range(500))
    assert decoded.events.schema == spec.arrow_schema
    assert decoded.events.column(spec.id_field).to_pylist() == [e[spec.id_field] for e in events]


def _tfd_event() -> dict:
    return fake_events(get_spec("tfd"), 1, seed=3)[0]


def _with(**changes: object) -> bytes:
    event = _tfd_event()
    for path, value in changes.items():
        target = event
        parts = path.split("__")
        for part in parts[:-1]:
            target = target[part]
        if value is _DROP:
            del target[parts[-1]]
        else:
            target[parts[-1]] = value
    return orjson.dumps(event)


_DROP = object()

POISON = [
    (b"not json at all", "invalid JSON"),
    (b'{"transaction_id": "x", ', "invalid JSON"),
    (b"\xff\xfe{}", "invalid UTF-8"),
    (b"[1, 2, 3]", "expected object, got array"),
    (b"null", "expected object, got null"),
    (b"", "empty message"),
    (None, "empty message"),
    (_with(amount="12.5"), "field amount: expected float, got string"),
    (_with(amount=True), "field amount: expected float, got bool"),
    (_with(amount=-1.0), "field amount: -1.0 below minimum 0.0"),
    (_with(account_age_days=12.5), "field account_age_days: expected int, got float"),
    (_with(account_age_days=5000), "field account_age_days: 5000 above maximum 1825"),
    (
        _with(account_age_days=7).replace(
            b'"account_age_days":7', b'"account_age_days":2' + b"0" * 25
        ),
        "field account_age_days: expected int",
    ),
    (_with(is_fraud="1"), "field is_fraud: expected int, got string"),
    (_with(cvv_provided=1), "field cvv_provided: expected bool, got int"),
    (_with(currency="XYZ"), "field currency: 'XYZ' not one of USD"),
    (_with(transaction_id=_DROP), "field transaction_id: missing"),
    (_with(user_id=None), "field user_id: null not allowed"),
    (_with(location=None), "field location: null not allowed"),
    (_with(location="here"), "field location: expected object, got string"),
    (_with(location__lat=91.0), "field location.lat: 91.0 above maximum 90"),
    (_with(location__lon=_DROP), "field location.lon: missing"),
    (_with(device_info__extra="x"), "field device_info: unexpected field device_info.extra"),
    (_with(surprise=1), "unexpected field surprise"),
    (_with(timestamp="2025-03-01T10:00:00"), "not an ISO-8601 timestamp with UTC offset"),
    (_with(timestamp="yesterday"), "not an ISO-8601 timestamp with UTC offset"),
    (_with(timestamp="2025-13-01T10:00:00+00:00"), "not a valid timestamp"),
    (_with(timestamp=1740823200), "expected ISO-8601 timestamp string, got int"),
    (orjson.dumps({**_tfd_event(), "user_agent": "x" * 300_000}), "payload too large"),
    (_with(amount=5.0).replace(b'"amount":5.0', b'"amount":NaN'), "invalid JSON"),
]


@pytest.mark.parametrize(("raw", "reason"), POISON, ids=[r for _, r in POISON])
def test_poison_is_rejected_with_a_specific_reason(raw: bytes | None, reason: str) -> None:
    spec = get_spec("tfd")
    event, why = EventValidator(spec).decode(raw)
    assert event is None
    assert why is not None and reason in why
    good = [orjson.dumps(e) for e in fake_events(spec, 4, seed=11)]
    batch = [good[0], good[1], raw, good[2], good[3]]
    decoded = BatchDecoder(spec).decode(batch)
    assert decoded.indices == [0, 1, 3, 4]
    assert decoded.rejects == [(2, why)]
    assert decoded.events.num_rows == 4


def test_timestamps_with_offsets_are_normalised_to_utc() -> None:
    spec = get_spec("tfd")
    values = [
        _with(timestamp="2025-03-01T23:30:00-02:00"),
        _with(timestamp="2025-03-01T10:00:00Z"),
        _with(timestamp="2025-03-01 10:00:00.5+0100"),
    ]
    decoded = BatchDecoder(spec).decode(values)
    assert decoded.rejects == []
    stamps = [t.isoformat() for t in decoded.events.column("timestamp").to_pylist()]
    assert stamps == [
        "2025-03-02T01:30:00+00:00",
        "2025-03-01T10:00:00+00:00",
        "2025-03-01T09:00:00.500000+00:00",
    ]


def test_odd_but_valid_layouts_take_the_per_event_path() -> None:
    spec = get_spec("tfd")
    event = _tfd_event()
    pretty = orjson.dumps(event, option=orjson.OPT_INDENT_2)
    padded = b"  " + orjson.dumps(event) + b"\n"
    decoded = BatchDecoder(spec).decode([pretty, padded])
    assert decoded.rejects == []
    assert decoded.indices == [0, 1]


def test_two_objects_in_one_message_are_rejected() -> None:
    spec = get_spec("tfd")
    one = orjson.dumps(_tfd_event())
    decoded = BatchDecoder(spec).decode([one + one, one])
    assert decoded.indices == [1]
    assert decoded.rejects[0][0] == 0
    assert "invalid JSON" in decoded.rejects[0][1]


def _mutate(event: dict, rng: random.Random, spec_fields) -> dict:
    """One random corruption of one (possibly nested) field."""
    event = copy.deepcopy(event)
    target, fields = event, spec_fields
    field = rng.choice(fields)
    while field.type == "struct" and rng.random() < 0.6:
        target, fields = target[field.name], field.children
        field = rng.choice(fields)
    choice = rng.randrange(9)
    if choice == 0:
        target.pop(field.name, None)
    elif choice == 1:
        target[field.name] = None
    elif choice == 2:
        target[field.name] = "text"
    elif choice == 3:
        target[field.name] = 10**7
    elif choice == 4:
        target[field.name] = -(10**7) + 0.5
    elif choice == 5:
        target[field.name] = True
    elif choice == 6:
        target[field.name] = {"nested": 1}
    elif choice == 7:
        target["unknown_" + field.name] = 1
    else:
        target[field.name] = "2025-01-01T00:00:00"
    return event


@pytest.mark.parametrize("key", sorted(SPECS))
def test_columnar_and_per_event_paths_agree_on_corrupted_events(key: str) -> None:
    spec = SPECS[key]
    rng = random.Random(5)
    events = fake_events(spec, 600, seed=9)
    values = [
        orjson.dumps(_mutate(e, rng, spec.fields) if i % 3 == 0 else e)
        for i, e in enumerate(events)
    ]
    validator = EventValidator(spec)
    expected = {i: validator.decode(v)[1] for i, v in enumerate(values)}
    decoded = BatchDecoder(spec).decode(values)
    assert dict(decoded.rejects) == {i: r for i, r in expected.items() if r is not None}
    assert decoded.indices == [i for i, r in expected.items() if r is None]
    assert len(decoded.rejects) > 100  # the corruptions did reject events


def test_only_range_and_choice_errors_stay_on_the_columnar_path() -> None:
    spec = get_spec("tfd")
    values = [orjson.dumps(e) for e in fake_events(spec, 50)]
    values[7] = _with(amount=-5.0)
    values[9] = _with(currency="XXX")
    decoded = BatchDecoder(spec).decode(values)
    assert not decoded.fallback
    assert [i for i, _ in decoded.rejects] == [7, 9]
    values[11] = _with(amount="x")
    assert BatchDecoder(spec).decode(values).fallback


def test_raw_schema_has_event_fields_then_ingestion_columns() -> None:
    spec = get_spec("eta")
    schema = raw_schema(spec)
    assert schema.names[: len(spec.fields)] == [f.name for f in spec.fields]
    assert schema.field("event_date").type == pa.date32()
    assert schema.field("origin").type == pa.struct(
        [pa.field("lat", pa.float64(), False), pa.field("lon", pa.float64(), False)]
    )


def test_a_blank_and_a_double_message_cannot_shift_rows() -> None:
    spec = get_spec("tfd")
    first, last = (orjson.dumps(e) for e in fake_events(spec, 2, seed=12))
    double = orjson.dumps(_tfd_event()) + orjson.dumps(_tfd_event())
    decoded = BatchDecoder(spec).decode([first, b"   ", double, last])
    assert decoded.indices == [0, 3]
    assert [i for i, _ in decoded.rejects] == [1, 2]
    ids = decoded.events.column("transaction_id").to_pylist()
    assert ids == [orjson.loads(first)["transaction_id"], orjson.loads(last)["transaction_id"]]


@pytest.mark.parametrize("key", sorted(SPECS))
def test_generated_events_are_valid(key: str) -> None:
    spec = SPECS[key]
    generator = spec.generator(seed=3)
    values = [orjson.dumps(next(generator)) for _ in range(1_000)]
    decoded = BatchDecoder(spec).decode(values)
    assert decoded.rejects == [] and not decoded.fallback
    assert decoded.events.num_rows == 1_000
