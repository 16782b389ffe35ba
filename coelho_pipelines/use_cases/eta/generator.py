"""eta: ride-hailing trips in Houston with a simulated actual travel time (the target).

Drivers `driver_1000`..`driver_5000` keep their rating, vehicle and type. Trips start near
city hotspots or anywhere in the Houston box and mostly stay in the neighbourhood (median
~8 km), sometimes crossing town; the distance is the haversine distance. Trip volume
follows Houston local hours (commute peaks). Weather is drawn per trip with the spec's
probabilities; temperature follows the Houston season, time of day and weather. Target:

    max(60, base x traffic x weather x driver + incident + noise)

with base = distance at 40 km/h, traffic from Houston local time (weekday rush hours
6-9 and 16-19 -> 1.3..2.0, weekend 0.8..1.2, otherwise 0.9..1.4), weather (Rain 1.1..1.4,
Heavy Rain 1.3..1.8, Fog 1.2..1.6, Thunderstorm 1.4..2.0, else 1), driver factor
1 - (rating - 4.5) x 0.05, a 2% chance of a 300..1800 s incident and +-60 s noise.
The generating factors are never emitted.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from coelho_pipelines.use_cases.eta.vocabulary import VEHICLE_TYPES, WEATHER
from coelho_pipelines.use_cases.generation import (
    BaseGenerator,
    Draws,
    EventClock,
    IsoFormatter,
    LocalTime,
    clip,
    fround,
    picker,
)
from coelho_pipelines.use_cases.geography import HOUSTON, HOUSTON_ZONE

DRIVER_IDS = range(1000, 5001)
BASE_SPEED_KMH = 40.0
WEATHER_PROBABILITIES = (0.6, 0.15, 0.1, 0.05, 0.05, 0.05)
RUSH_HOURS = frozenset((6, 7, 8, 9, 16, 17, 18, 19))  # Houston local time, weekdays
TRAFFIC_RANGES = {"rush": (1.3, 2.0), "weekend": (0.8, 1.2), "normal": (0.9, 1.4)}
WEATHER_RANGES = {
    "Clear": (1.0, 1.0),
    "Clouds": (1.0, 1.0),
    "Rain": (1.1, 1.4),
    "Heavy Rain": (1.3, 1.8),
    "Fog": (1.2, 1.6),
    "Thunderstorm": (1.4, 2.0),
}
INCIDENT_PROBABILITY = 0.02
INCIDENT_RANGE = (300.0, 1800.0)
NOISE_SECONDS = 60.0
MIN_TRAVEL_SECONDS = 60.0
DRIFT_SLOWDOWN = 1.4  # after `drift_at`: every trip takes 40% longer (a lasting road closure)
KM_PER_DEGREE = 111.2
LOCAL_TRIP_LOG_KM = math.log(8.0)  # median length of an in-neighbourhood trip
VEHICLE_WEIGHTS = (45, 25, 15, 5, 10)
# Monthly mean temperature in Houston (deg C), January first.
MONTHLY_TEMPERATURE = (12.0, 14.0, 18.0, 21.0, 25.0, 28.0, 29.0, 29.0, 27.0, 22.0, 17.0, 13.0)
WEATHER_TEMPERATURE = {"Rain": -2.0, "Heavy Rain": -3.0, "Thunderstorm": -3.0, "Fog": -1.0}
HOTSPOTS = (
    (29.7604, -95.3698),  # Downtown
    (29.7390, -95.4640),  # Galleria / Uptown
    (29.7070, -95.4010),  # Texas Medical Center
    (29.9902, -95.3368),  # George Bush Intercontinental
    (29.6454, -95.2789),  # Hobby Airport
    (29.7830, -95.6160),  # Energy Corridor
    (29.6197, -95.6349),  # Sugar Land
    (29.6847, -95.4107),  # NRG Park
    (29.7499, -95.3584),  # EaDo / Midtown
    (29.9490, -95.5500),  # Willowbrook
)
# Trips by Houston local hour: commute peaks, a lunch bump, quiet nights.
_ACTIVITY = (
    2, 1.5, 1, 1, 1, 2, 5, 9, 10, 8, 6, 6, 7, 6, 6, 7, 9, 11, 10, 8, 6, 5, 4, 3,
)  # fmt: skip


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def traffic_regime(local_hour: int, local_weekday: int) -> str:
    """`rush`, `weekend` or `normal` for a Houston local hour and weekday (0 = Monday)."""
    if local_weekday >= 5:
        return "weekend"
    return "rush" if local_hour in RUSH_HOURS else "normal"


def base_travel_seconds(distance_km: float) -> float:
    """Travel time at the base speed of 40 km/h."""
    return distance_km / BASE_SPEED_KMH * 3600.0


def driver_factor(rating: float) -> float:
    return 1.0 - (rating - 4.5) * 0.05


class TripGenerator(BaseGenerator):
    """Seeded stream of eta trip events (JSON-ready dicts).

    Options: `start` (event-time start, default now floored to the hour),
    `events_per_second` (simulated event-time rate, default 1.0) and `drift_at` (event index
    from which every trip takes `DRIFT_SLOWDOWN` times longer, or None).
    """

    def __init__(
        self,
        seed: int = 42,
        *,
        start: datetime | str | float | None = None,
        events_per_second: float = 1.0,
        drift_at: int | None = None,
    ) -> None:
        self.drift_at = drift_at
        self.draws = Draws(seed, "eta")
        self.rng = rng = self.draws.rng
        self._local = LocalTime(HOUSTON_ZONE)
        self.clock = EventClock(
            rng, start, events_per_second, _ACTIVITY, lambda ts: self._local(ts)[0]
        )
        self.emitted = 0
        self._iso = IsoFormatter()
        self._pick_weather = picker(rng, WEATHER, WEATHER_PROBABILITIES)
        self._pick_vehicle = picker(rng, VEHICLE_TYPES, VEHICLE_WEIGHTS)
        self.drivers = [self._new_driver(n) for n in DRIVER_IDS]
        activity = [rng.uniform(0.2, 3.0) for _ in self.drivers]  # part- and full-timers
        self._pick_driver = picker(rng, self.drivers, activity)
        self._drift_hour = -1
        self._temperature_offset = 0.0

    @property
    def drifted(self) -> bool:
        """Whether the next event is slowed down by the drift."""
        return self.drift_at is not None and self.emitted >= self.drift_at

    def _new_driver(self, number: int) -> tuple[str, str, str, float]:
        rng = self.rng
        rating = fround(clip(self.draws.normal(4.5, 0.3), 3.5, 5.0), 1e2)
        return (f"driver_{number}", f"vehicle_{rng.randrange(100_000, 1_000_000)}",
                self._pick_vehicle(), rating)  # fmt: skip

    def _point(self) -> tuple[float, float]:
        d = self.draws
        if d.random() < 0.6:
            lat, lon = d.choice(HOTSPOTS)
            lat, lon = lat + d.normal(0, 0.03), lon + d.normal(0, 0.03)
        else:
            lat, lon = d.uniform(*HOUSTON.lat), d.uniform(*HOUSTON.lon)
        return (fround(clip(lat, *HOUSTON.lat), 1e6), fround(clip(lon, *HOUSTON.lon), 1e6))

    def _destination(self, lat: float, lon: float) -> tuple[float, float]:
        d = self.draws
        if d.random() < 0.3:  # across town: another hotspot or anywhere
            return self._point()
        km = math.exp(d.normal(LOCAL_TRIP_LOG_KM, 0.6))
        bearing = d.random() * 2 * math.pi
        lat2 = lat + km * math.cos(bearing) / KM_PER_DEGREE
        lon2 = lon + km * math.sin(bearing) / (KM_PER_DEGREE * math.cos(math.radians(lat)))
        return (fround(clip(lat2, *HOUSTON.lat), 1e6), fround(clip(lon2, *HOUSTON.lon), 1e6))

    def _temperature_drift(self, now: float) -> float:
        hour = int(now // 3600)
        if hour != self._drift_hour:  # a slowly varying departure from the normal
            self._drift_hour = hour
            self._temperature_offset = 0.7 * self._temperature_offset + self.draws.normal(0, 1.0)
        return self._temperature_offset

    def _temperature(self, now: float, month: int, local_hour: int, weather: str) -> float:
        value = (MONTHLY_TEMPERATURE[month - 1] + _DIURNAL[local_hour]
                 + WEATHER_TEMPERATURE.get(weather, 0.0) + self._temperature_drift(now)
                 + self.draws.normal(0, 0.8))  # fmt: skip
        return fround(clip(value, -20.0, 50.0), 1e1)

    def __next__(self) -> dict[str, Any]:
        d = self.draws
        r = d.random
        now = self.clock.tick()
        hour, weekday, month = self._local(now)
        driver_id, vehicle_id, vehicle_type, rating = self._pick_driver()
        origin = self._point()
        destination = self._destination(*origin)
        distance = haversine_km(*origin, *destination)
        while distance < 0.5:  # not a trip: pick another destination
            destination = self._point()
            distance = haversine_km(*origin, *destination)
        distance = fround(distance, 1e3)
        weather = self._pick_weather()
        base = base_travel_seconds(distance)
        traffic = d.uniform(*TRAFFIC_RANGES[traffic_regime(hour, weekday)])
        weather_factor = d.uniform(*WEATHER_RANGES[weather])
        incident = d.uniform(*INCIDENT_RANGE) if r() < INCIDENT_PROBABILITY else 0.0
        noise = d.uniform(-NOISE_SECONDS, NOISE_SECONDS)
        actual = base * traffic * weather_factor * driver_factor(rating) + incident + noise
        if self.drifted:
            actual *= DRIFT_SLOWDOWN
        self.emitted += 1
        return {
            "trip_id": d.uuid4(),
            "driver_id": driver_id,
            "vehicle_id": vehicle_id,
            "timestamp": self._iso(now),
            "origin": {"lat": origin[0], "lon": origin[1]},
            "destination": {"lat": destination[0], "lon": destination[1]},
            "estimated_distance_km": distance,
            "weather": weather,
            "temperature_celsius": self._temperature(now, month, hour, weather),
            "day_of_week": weekday,
            "hour_of_day": hour,
            "driver_rating": rating,
            "vehicle_type": vehicle_type,
            "initial_estimated_travel_time_seconds": fround(base * d.uniform(0.9, 1.1), 1e1),
            "simulated_actual_travel_time_seconds": fround(max(MIN_TRAVEL_SECONDS, actual), 1e1),
        }


# Daily temperature swing by local hour: coolest around 3-6h, warmest around 15h.
_DIURNAL = tuple(-4.5 * math.cos((hour - 3) / 24 * 2 * math.pi) for hour in range(24))
