"""eta's vocabulary: the category lists both the spec and the trip generator use."""

from __future__ import annotations

WEATHER = ("Clear", "Clouds", "Rain", "Heavy Rain", "Fog", "Thunderstorm")
VEHICLE_TYPES = ("Sedan", "SUV", "Hatchback", "Motorcycle", "Van")
DAYS_OF_WEEK = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Generating factors: never event fields, never features (leakage guard).
GENERATING_FACTORS = ("traffic_factor", "weather_factor", "driver_factor", "incident_delay_seconds")
