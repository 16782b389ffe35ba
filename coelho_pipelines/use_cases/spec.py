"""The shape of a use case: everything specific to it, as data the generic pipeline reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal, Protocol

from coelho_pipelines.events.fields import FieldSpec, arrow_schema, pydantic_model

Task = Literal["classification", "regression", "clustering"]
Direction = Literal["max", "min"]
FeatureKind = Literal["numeric", "categorical"]


class EventGenerator(Protocol):
    """A seeded, endless stream of events (plain JSON-ready dicts)."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def __next__(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Feature:
    """One model feature, defined once for the incremental (dict) and batch (SQL) paths.

    `sql` is a DuckDB expression over a row of the raw Delta table; `extract` computes the
    same value from a decoded JSON event. Tests check the two agree.
    """

    name: str
    kind: FeatureKind
    sql: str
    extract: Callable[[Mapping[str, Any]], Any]


def walk_path(event: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a (nested) field path of an event; None when any step is missing."""
    value: Any = event
    for part in path:
        if value is None:
            return None
        value = value.get(part)
    return value


def field_feature(name: str, kind: FeatureKind, *path: str) -> Feature:
    """A feature read straight from a (possibly nested) event field."""
    path = path or (name,)
    sql = path[0] + "".join(f".{part}" for part in path[1:])
    return Feature(name, kind, sql, lambda event: walk_path(event, path))


def utc_time(value: Any) -> datetime:
    """An event time as an aware UTC datetime (naive values are taken as UTC)."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# Whole hours / days since the epoch (floored, so times before 1970 are right too). Integer
# arithmetic on the epoch is ~4x faster in DuckDB than hour()/isodow() on a TIMESTAMPTZ, which
# go through the ICU calendar; the results are the same in UTC.
_EPOCH_HOURS = "CAST(fdiv(epoch_us({t}), 3600000000) AS BIGINT)"
_EPOCH_DAYS = "CAST(fdiv(epoch_us({t}), 86400000000) AS BIGINT)"
UTC_HOUR_SQL = f"(({_EPOCH_HOURS} % 24 + 24) % 24)"
# 1970-01-01 was a Thursday: day 0 is weekday 3 (0 = Monday).
UTC_WEEKDAY_SQL = f"(({_EPOCH_DAYS} % 7 + 10) % 7)"


def time_feature(name: str, part: Literal["hour", "dayofweek"], time_field: str) -> Feature:
    """Hour of day (0-23) or ISO day of week (0=Monday) of the event time, in UTC."""
    if part == "hour":
        sql = UTC_HOUR_SQL.format(t=time_field)
        return Feature(name, "numeric", sql, lambda e: utc_time(e[time_field]).hour)
    sql = UTC_WEEKDAY_SQL.format(t=time_field)
    return Feature(name, "numeric", sql, lambda e: utc_time(e[time_field]).weekday())


@dataclass(frozen=True)
class CustomerProfile:
    """A running per-customer profile: the unit a clustering use case clusters.

    Each `Feature` here is a per-event value (`sql` over a raw row, `extract` over a decoded
    event; NULL / None when the event does not observe it). A customer's profile value is the
    exponentially decayed mean of the observed values over the customer's events, newest
    weighing most: the k-th newest event weighs `decay ** k`, so each new event of the
    customer multiplies every earlier weight by `decay`. The learner keeps it incrementally
    (`incremental/profiles.py`); the batch side computes the same values in DuckDB SQL
    (`batch/profiles.py`). A value no event observed is missing (None / NULL).
    """

    key_field: str
    features: tuple[Feature, ...]
    half_life_events: float = 50.0
    min_events: int = 3  # batch training and quality figures use customers with this many
    max_customers: int = 100_000  # the learner evicts the least recently seen beyond this

    @property
    def decay(self) -> float:
        return 0.5 ** (1.0 / self.half_life_events)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


@dataclass(frozen=True)
class MetricRule:
    """The one best-model rule of a use case: a metric name and whether higher is better."""

    name: str
    direction: Direction

    def better(self, candidate: float, incumbent: float | None) -> bool:
        """Whether `candidate` strictly beats `incumbent` (anything beats no incumbent)."""
        if incumbent is None:
            return True
        return candidate > incumbent if self.direction == "max" else candidate < incumbent

    def best_first_key(self, value: float | None) -> tuple[bool, float]:
        """Sort key that puts the best value first and missing values last."""
        if value is None:
            return (True, 0.0)
        return (False, -value if self.direction == "max" else value)


@dataclass(frozen=True)
class Candidate:
    """One River pipeline a use case's learner runs prequentially (`factory()` builds it)."""

    name: str
    factory: Callable[[], Any]
    # True: the candidate learns from native features (numbers unscaled, categoricals as
    # strings) instead of the use case's default encoding (see incremental.features).
    native_features: bool = False


@dataclass(frozen=True)
class PromotionPolicy:
    """When a challenger replaces the served candidate (see `incremental.leaderboard`).

    A challenger must lead the served candidate on the leaderboard metric by at least
    max(`margin` x |served value|, `min_gap`) at every check (every `check_every` events)
    for `sustain_events` events in a row; nothing is promoted before `min_events`.
    """

    margin: float = 0.02
    min_gap: float = 0.0
    sustain_events: int = 2000
    check_every: int = 100
    min_events: int = 1000


@dataclass(frozen=True)
class GeoBox:
    """The area a use case's events happen in: latitude and longitude ranges (degrees) and
    the local time zone (rush hours, local-time fields)."""

    lat: tuple[float, float]
    lon: tuple[float, float]
    timezone: str

    def point(self, name: str) -> FieldSpec:
        """An event field `name` {lat, lon}, bounded by the box."""
        return FieldSpec(
            name,
            "struct",
            children=(
                FieldSpec("lat", "float", minimum=self.lat[0], maximum=self.lat[1]),
                FieldSpec("lon", "float", minimum=self.lon[0], maximum=self.lon[1]),
            ),
        )


@dataclass(frozen=True)
class Segments:
    """The latent customer groups a clustering use case's generator draws from: what a good
    clustering should find (evaluation only, e.g. bench/ecci_segments.py; never a feature)."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class RawChecks:
    """Thresholds of the asset checks on `<uc>/raw_events` (ingestion/checks.py)."""

    freshness_seconds: float = 3600.0  # the newest event is at most this old (a warning)
    max_dead_letter_ratio: float = 0.01  # dead letters / (raw rows + dead letters)


# The keys of a classifier's answer besides its probability (`UseCaseSpec.prediction_key`).
CLASS_KEY = "prediction"  # the decided class, 0 or 1
THRESHOLD_KEY = "decision_threshold"  # live models: the probability threshold in force


@dataclass(frozen=True)
class UseCaseSpec:
    """Everything specific to one use case. Factories build assets, jobs and routes from it."""

    key: str
    title: str
    topic: str
    experiment: str
    task: Task
    fields: tuple[FieldSpec, ...]
    id_field: str
    key_field: str
    time_field: str
    label_field: str | None
    features: tuple[Feature, ...]
    never_features: tuple[str, ...]
    generator: Callable[..., EventGenerator]
    river_model: Callable[[], Any]
    river_metrics: Callable[[], dict[str, Any]]
    river_primary: MetricRule
    batch_model: Callable[..., Any]
    batch_model_params: Mapping[str, Any]
    batch_metrics: tuple[str, ...]
    batch_primary: MetricRule
    plot_tabs: tuple[str, ...]
    river_model_name: str
    batch_model_name: str
    # The API response key holding the prediction: the positive-class probability
    # (classification), the value (regression) or the cluster (clustering). Public: keep it.
    prediction_key: str
    # The drift monitor (incremental/drift.py): the rise of the served model's error over its
    # own recent past that is tolerated (relative), and for how many events a larger rise
    # must last before it is a drift.
    drift_tolerance: float = 0.5
    drift_persistence: int = 100
    # Clustering of customers: models see the customer's running profile, not the event.
    profile: CustomerProfile | None = None
    # Online challengers: more River pipelines run on the same events as `river_model` (the
    # candidate named `river_model_name`, served first); the leaderboard ranks them all by
    # `river_leaderboard` (default: `river_primary`) and `river_promotion` decides switches.
    river_challengers: tuple[Candidate, ...] = ()
    river_leaderboard: MetricRule | None = None
    river_promotion: PromotionPolicy = field(default_factory=PromotionPolicy)
    raw_checks: RawChecks = field(default_factory=RawChecks)
    geo: GeoBox | None = None  # where the events happen (the generator's area)
    segments: Segments | None = None  # clustering: the generator's latent groups
    text_field: str | None = None  # free text the batch `text` plot tab embeds

    @property
    def prediction_keys(self) -> tuple[str, ...]:
        """Every prediction key of the API's answer (the model source and version aside)."""
        if self.task == "classification":
            return (self.prediction_key, CLASS_KEY, THRESHOLD_KEY)
        return (self.prediction_key,)

    @property
    def river_candidates(self) -> tuple[Candidate, ...]:
        """Every online candidate, the original model (`river_model_name`) first."""
        return (Candidate(self.river_model_name, self.river_model), *self.river_challengers)

    @property
    def leaderboard_rule(self) -> MetricRule:
        """The metric the online leaderboard ranks candidates by."""
        return self.river_leaderboard or self.river_primary

    @property
    def asset_prefix(self) -> str:
        return self.key

    @property
    def registered_model(self) -> str:
        return f"coelho-{self.key}-batch"

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def model_features(self) -> tuple[Feature, ...]:
        """What the models consume: the profile's values when the spec has a profile (all
        numeric), else the event features."""
        return self.profile.features if self.profile is not None else self.features

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    @property
    def numeric_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "numeric"]

    @cached_property
    def arrow_schema(self):
        return arrow_schema(self.fields)

    @cached_property
    def event_model(self):
        return pydantic_model(f"{self.key.upper()}Event", self.fields)

    def extract_features(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The feature dict of one decoded event (the incremental path)."""
        return {f.name: f.extract(event) for f in self.features}

    def label(self, event: Mapping[str, Any]) -> Any:
        """The target of one event, or None for clustering."""
        return None if self.label_field is None else event[self.label_field]
