"""Shared geography: the Houston area that eta's trips and ecci's shoppers live in."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from coelho_pipelines.use_cases.spec import GeoBox

HOUSTON = GeoBox(lat=(29.5, 30.1), lon=(-95.8, -95.0), timezone="America/Chicago")
HOUSTON_ZONE = ZoneInfo(HOUSTON.timezone)  # local time of day for both streams
