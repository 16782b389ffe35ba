"""eta generator: target formula, Houston local-time rush hours, no leaking factors."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from coelho_pipelines.use_cases.eta import SPEC
from coelho_pipelines.use_cases.eta.generator import (
    INCIDENT_RANGE,
    NOISE_SECONDS,
    RUSH_HOURS,
    TRAFFIC_RANGES,
    WEATHER_PROBABILITIES,
    WEATHER_RANGES,
    base_travel_seconds,
    driver_factor,
    haversine_km,
    traffic_regime,
)
from coelho_pipelines.use_cases.eta.vocabulary import GENERATING_FACTORS, WEATHER

HOUSTON = ZoneInfo("America/Chicago")


def _ratio(event: dict) -> float:
    """Actual travel time over the 40 km/h base time."""
    return event["simulated_actual_travel_time_seconds"] / base_travel_seconds(
        event["estimated_distance_km"]
    )


def _bounds(event: dict) -> tuple[float, float, float]:
    """(lowest, highest without incident, highest) target the formula allows."""
    base = base_travel_seconds(event["estimated_distance_km"])
    t_low, t_high = TRAFFIC_RANGES[traffic_regime(event["hour_of_day"], event["day_of_week"])]
    w_low, w_high = WEATHER_RANGES[event["weather"]]
    driver = driver_factor(event["driver_rating"])
    low = max(60.0, base * t_low * w_low * driver - NOISE_SECONDS)
    high = base * t_high * w_high * driver + NOISE_SECONDS
    return low, high, high + INCIDENT_RANGE[1]


def test_target_follows_the_formula_bounds(eta_events):
    above_no_incident = 0
    for event in eta_events:
        low, high, highest = _bounds(event)
        target = event["simulated_actual_travel_time_seconds"]
        assert low - 0.1 <= target <= highest + 0.1
        assert target >= 60.0
        above_no_incident += target > high + 0.1
    # Only incidents (2%) push a trip above the incident-free bound.
    assert above_no_incident / len(eta_events) < 0.025
    assert above_no_incident / len(eta_events) > 0.005


def test_hour_and_day_fields_are_houston_local_time(eta_events):
    for event in eta_events[:5000]:
        local = datetime.fromisoformat(event["timestamp"]).astimezone(HOUSTON)
        assert event["hour_of_day"] == local.hour
        assert event["day_of_week"] == local.weekday()


def test_rush_hour_uses_houston_local_time(eta_events):
    clear = [e for e in eta_events if e["weather"] in ("Clear", "Clouds")]
    weekday = [e for e in clear if e["day_of_week"] < 5]
    rush = [_ratio(e) for e in weekday if e["hour_of_day"] in RUSH_HOURS]
    calm = [_ratio(e) for e in weekday if e["hour_of_day"] not in RUSH_HOURS]
    weekend = [_ratio(e) for e in clear if e["day_of_week"] >= 5]
    assert statistics.median(rush) > 1.5 > 1.25 > statistics.median(calm)
    assert statistics.median(weekend) < 1.1
    # Hours that are rush hours in UTC but not in Houston carry no rush-hour penalty.
    utc_only = [
        _ratio(e)
        for e in weekday
        if datetime.fromisoformat(e["timestamp"]).hour in RUSH_HOURS
        and e["hour_of_day"] not in RUSH_HOURS
    ]
    assert len(utc_only) > 1000
    assert statistics.median(utc_only) < 1.25


def test_trip_volume_peaks_in_local_commute_hours(eta_events):
    hours = Counter(e["hour_of_day"] for e in eta_events)
    assert hours[8] > 3 * hours[3]
    assert hours[17] > 3 * hours[2]


def test_no_generating_factor_is_a_field_or_feature(eta_events):
    fields = set(eta_events[0]) | {f.name for f in SPEC.fields}
    assert not fields & set(GENERATING_FACTORS)
    assert not set(SPEC.feature_names) & {*GENERATING_FACTORS, "trip_id"}
    assert set(GENERATING_FACTORS) <= set(SPEC.never_features)


def test_distance_is_haversine_and_initial_estimate_is_40kmh_within_10_percent(eta_events):
    for event in eta_events[:10_000]:
        o, d = event["origin"], event["destination"]
        distance = haversine_km(o["lat"], o["lon"], d["lat"], d["lon"])
        assert event["estimated_distance_km"] == pytest.approx(distance, abs=0.001)
        base = base_travel_seconds(event["estimated_distance_km"])
        initial = event["initial_estimated_travel_time_seconds"]
        assert 0.9 * base - 0.1 <= initial <= 1.1 * base + 0.1


def test_weather_follows_the_given_probabilities(eta_events):
    counts = Counter(e["weather"] for e in eta_events)
    for name, probability in zip(WEATHER, WEATHER_PROBABILITIES, strict=True):
        assert counts[name] / len(eta_events) == pytest.approx(probability, abs=0.012)


def test_bad_weather_slows_trips(eta_events):
    weekday_calm = [
        e for e in eta_events if e["day_of_week"] < 5 and e["hour_of_day"] not in RUSH_HOURS
    ]
    clear = statistics.median(_ratio(e) for e in weekday_calm if e["weather"] == "Clear")
    storm = statistics.median(_ratio(e) for e in weekday_calm if e["weather"] == "Thunderstorm")
    assert storm > 1.4 * clear


def test_drivers_return_with_stable_rating_and_vehicle(eta_events):
    by_driver = defaultdict(set)
    for event in eta_events:
        number = int(event["driver_id"].removeprefix("driver_"))
        assert 1000 <= number <= 5000
        by_driver[event["driver_id"]].add(
            (event["vehicle_id"], event["vehicle_type"], event["driver_rating"])
        )
    assert len(by_driver) > 3000
    assert all(len(profiles) == 1 for profiles in by_driver.values())
    assert sum(1 for e in eta_events if e["driver_id"] in by_driver) == len(eta_events)
    trips_per_driver = Counter(e["driver_id"] for e in eta_events)
    assert trips_per_driver.most_common(1)[0][1] >= 10


def test_trips_have_plausible_lengths_and_temperatures(eta_events):
    distances = [e["estimated_distance_km"] for e in eta_events]
    assert min(distances) >= 0.5
    assert 5 < statistics.median(distances) < 20
    temperatures = [e["temperature_celsius"] for e in eta_events]
    assert 5 < statistics.mean(temperatures) < 30  # March in Houston


def test_drift_slows_every_trip_from_drift_at_on():
    from coelho_pipelines.use_cases.eta.generator import (
        DRIFT_SLOWDOWN,
        MIN_TRAVEL_SECONDS,
        TripGenerator,
    )

    plain = TripGenerator(seed=5, start="2025-03-03T00:00:00+00:00").take(3000)
    generator = TripGenerator(seed=5, start="2025-03-03T00:00:00+00:00", drift_at=1000)
    drifted = generator.take(3000)
    assert generator.drifted and not TripGenerator(seed=5, drift_at=1).drifted
    assert drifted[:1000] == plain[:1000]
    target = "simulated_actual_travel_time_seconds"
    for before, after in zip(plain[1000:], drifted[1000:], strict=True):
        assert {k: v for k, v in before.items() if k != target} == {
            k: v for k, v in after.items() if k != target
        }
        if before[target] > 2 * MIN_TRAVEL_SECONDS:  # away from the floor and the rounding
            assert after[target] / before[target] == pytest.approx(DRIFT_SLOWDOWN, rel=0.01)
