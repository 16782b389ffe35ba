"""Use-case specs: registry, public names, leakage guard, best-model rule, schemas."""

from __future__ import annotations

from datetime import UTC

import pytest
from pydantic import ValidationError

from coelho_pipelines.use_cases import all_specs, get_spec, use_case_keys
from coelho_pipelines.use_cases.eta.vocabulary import GENERATING_FACTORS
from coelho_pipelines.use_cases.spec import MetricRule

EXPECTED = {
    "tfd": ("Transaction Fraud Detection", "transaction_fraud_detection", "classification"),
    "eta": ("Estimated Time of Arrival", "estimated_time_of_arrival", "regression"),
    "ecci": ("E-Commerce Customer Interactions", "e_commerce_customer_interactions", "clustering"),
}


def test_registry_holds_the_three_use_cases_with_their_public_names() -> None:
    assert set(EXPECTED) <= set(use_case_keys())
    for key, (experiment, topic, task) in EXPECTED.items():
        spec = get_spec(key)
        assert (spec.experiment, spec.topic, spec.task) == (experiment, topic, task)
        assert spec.registered_model == f"coelho-{key}-batch"


def test_every_use_case_is_the_package_named_by_its_key() -> None:
    import importlib
    import pkgutil

    from coelho_pipelines import use_cases

    packages = sorted(m.name for m in pkgutil.iter_modules(use_cases.__path__) if m.ispkg)
    assert use_case_keys() == packages
    for spec in all_specs():
        assert importlib.import_module(f"coelho_pipelines.use_cases.{spec.key}").SPEC is spec


def test_the_public_prediction_keys_stay() -> None:
    assert get_spec("tfd").prediction_keys == (
        "fraud_probability",
        "prediction",
        "decision_threshold",
    )
    assert get_spec("eta").prediction_keys == ("estimated_travel_time_seconds",)
    assert get_spec("ecci").prediction_keys == ("cluster",)


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.key)
def test_typed_sections_agree_with_the_schema(spec) -> None:
    """The geo box bounds every lat/lon field; the text field is a field; raw check limits
    are sane; segments (the generator's latent groups) are never features."""
    names = {f.name for f in spec.fields}
    if spec.geo is not None:
        points = [f for f in spec.fields if {c.name for c in f.children} == {"lat", "lon"}]
        assert points
        for point in points:
            bounds = {c.name: (c.minimum, c.maximum) for c in point.children}
            assert bounds == {"lat": spec.geo.lat, "lon": spec.geo.lon}, point.name
    if spec.text_field is not None:
        assert spec.text_field in names and spec.text_field in spec.never_features
        assert "text" in spec.plot_tabs
    if spec.segments is not None:
        assert spec.task == "clustering" and len(set(spec.segments.names)) > 1
    assert spec.raw_checks.freshness_seconds > 0
    assert 0 < spec.raw_checks.max_dead_letter_ratio < 1


def test_unknown_use_case_error_lists_valid_keys() -> None:
    with pytest.raises(ValueError, match="valid: .*tfd"):
        get_spec("nope")


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.key)
def test_no_feature_is_an_id_label_or_generating_factor(spec) -> None:
    forbidden = set(spec.never_features) | set(GENERATING_FACTORS)
    forbidden |= {spec.id_field, spec.key_field}
    if spec.label_field:
        forbidden.add(spec.label_field)
    assert forbidden.isdisjoint(spec.feature_names)
    assert len(set(spec.feature_names)) == len(spec.feature_names)


def test_eta_generating_factors_are_not_event_fields() -> None:
    fields = {f.name for f in get_spec("eta").fields}
    assert fields.isdisjoint(GENERATING_FACTORS)


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.key)
def test_feature_sql_and_python_extractors_agree_on_generated_events(spec) -> None:
    """The batch (DuckDB SQL) and incremental (dict) feature paths compute the same values."""
    import itertools

    import duckdb

    from coelho_pipelines.lakehouse.tables import events_to_arrow

    events = list(itertools.islice(spec.generator(seed=7), 300))
    data = events_to_arrow(spec, events)  # noqa: F841 - read by DuckDB below
    select = ", ".join(f'{f.sql} AS "{f.name}"' for f in spec.features)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute(f"SELECT {select} FROM data ORDER BY kafka_offset").fetchall()
    for event, row in zip(events, rows, strict=True):
        from_python = spec.extract_features(event)
        for feature, sql_value in zip(spec.features, row, strict=True):
            python_value = from_python[feature.name]
            if isinstance(python_value, float):
                assert sql_value == pytest.approx(python_value), feature.name
            else:
                assert sql_value == python_value, (feature.name, sql_value, python_value)


@pytest.mark.parametrize(
    "moment",
    [
        "1969-12-31T23:59:59.500000+00:00",
        "1965-03-01T05:00:00+00:00",
        "2026-11-22T23:30:00-05:00",  # 04:30 UTC on Monday the 23rd
        "2026-11-23T00:00:00+00:00",
        "2024-02-29T12:00:00+14:00",
    ],
)
def test_time_features_are_utc_in_sql_and_python(moment: str) -> None:
    """Hour and weekday by epoch arithmetic equal DuckDB's own hour()/isodow() in UTC and the
    Python extractor, across midnight, before 1970 and for non-UTC offsets."""
    from datetime import datetime

    import duckdb

    from coelho_pipelines.use_cases.spec import time_feature

    hour = time_feature("h", "hour", "t")
    weekday = time_feature("d", "dayofweek", "t")
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        row = con.execute(
            f"SELECT {hour.sql}, {weekday.sql}, hour(t), isodow(t) - 1 "
            "FROM (SELECT CAST($m AS TIMESTAMPTZ) AS t)",
            {"m": moment},
        ).fetchone()
    expected = datetime.fromisoformat(moment).astimezone(UTC)
    assert row == (expected.hour, expected.weekday(), expected.hour, expected.weekday())
    assert hour.extract({"t": moment}) == expected.hour
    assert weekday.extract({"t": moment}) == expected.weekday()


def test_tfd_features_exclude_minute_second_year() -> None:
    names = get_spec("tfd").feature_names
    assert not any(word in name for name in names for word in ("minute", "second", "year"))


@pytest.mark.parametrize(
    ("direction", "candidate", "incumbent", "expected"),
    [
        ("max", 0.8, 0.7, True),
        ("max", 0.7, 0.7, False),
        ("min", 10.0, 12.0, True),
        ("min", 12.0, 10.0, False),
        ("max", 0.1, None, True),
    ],
)
def test_metric_rule_prefers_the_better_value(direction, candidate, incumbent, expected) -> None:
    assert MetricRule("m", direction).better(candidate, incumbent) is expected


def test_metric_rule_sorts_best_first_and_missing_last() -> None:
    rule = MetricRule("mae", "min")
    values = [5.0, None, 2.0, 9.0]
    assert sorted(values, key=rule.best_first_key) == [2.0, 5.0, 9.0, None]


def test_primary_metrics_match_the_contract() -> None:
    rules = {s.key: (s.river_primary, s.batch_primary) for s in all_specs()}
    assert rules["tfd"] == (MetricRule("FBeta", "max"), MetricRule("fbeta", "max"))
    assert rules["eta"] == (MetricRule("MAE", "min"), MetricRule("mae", "min"))
    assert rules["ecci"] == (MetricRule("Silhouette", "min"), MetricRule("silhouette", "max"))


def test_river_primary_direction_agrees_with_river() -> None:
    for spec in all_specs():
        metric = spec.river_metrics()[spec.river_primary.name]
        assert metric.bigger_is_better == (spec.river_primary.direction == "max"), spec.key


def test_event_model_rejects_bad_enum_range_and_extra_fields() -> None:
    model = get_spec("eta").event_model
    good = {
        "trip_id": "t1",
        "driver_id": "driver_1000",
        "vehicle_id": "v1",
        "timestamp": "2026-01-05T12:00:00+00:00",
        "origin": {"lat": 29.7, "lon": -95.4},
        "destination": {"lat": 29.8, "lon": -95.3},
        "estimated_distance_km": 12.5,
        "weather": "Rain",
        "temperature_celsius": 21.0,
        "day_of_week": 0,
        "hour_of_day": 6,
        "driver_rating": 4.6,
        "vehicle_type": "SUV",
        "initial_estimated_travel_time_seconds": 1125.0,
        "simulated_actual_travel_time_seconds": 1500.0,
    }
    assert model.model_validate(good).weather == "Rain"
    for field, value in [("weather", "Snow"), ("driver_rating", 6.0), ("extra", 1)]:
        with pytest.raises(ValidationError, match=field):
            model.model_validate(good | {field: value})
    with pytest.raises(ValidationError, match="lat"):
        model.model_validate(good | {"origin": {"lat": 40.0, "lon": -95.4}})


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.key)
def test_arrow_schema_types_timestamps_and_structs(spec) -> None:
    import pyarrow as pa

    schema = spec.arrow_schema
    assert pa.types.is_timestamp(schema.field(spec.time_field).type)
    assert schema.field(spec.time_field).type.tz == "UTC"
    structs = [f for f in spec.fields if f.type == "struct"]
    assert structs and all(pa.types.is_struct(schema.field(f.name).type) for f in structs)
