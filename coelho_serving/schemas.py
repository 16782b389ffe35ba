"""Typed requests and responses, built per use case from its spec (one factory, no copies).

A prediction request carries the event fields the spec's features read (found in the features'
SQL), with the types, enums and ranges of the event schema; other event fields are ignored, so a
whole event (e.g. one from `/sample`) is a valid request too.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from coelho_pipelines.events.fields import FieldSpec, pydantic_model
from coelho_pipelines.events.validate import Check, value_check
from coelho_pipelines.use_cases.spec import CLASS_KEY, THRESHOLD_KEY, UseCaseSpec

ModelSource = Literal["live", "mlflow"]
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def request_fields(spec: UseCaseSpec) -> tuple[FieldSpec, ...]:
    """The top-level event fields the features read, in schema order (never the label).

    A use case that clusters customers (`spec.profile`) also reads its profile values' fields
    and needs the customer (required: the answer is the customer's segment after the event)
    and, optionally, the event id (an event already in the raw table is not counted twice).
    """
    names: set[str] = set()
    for feature in (*spec.features, *spec.model_features):
        names.update(_IDENTIFIER.findall(feature.sql))
    excluded = set(spec.never_features) | {spec.label_field}
    optional: set[str] = set()
    if spec.profile is not None:
        names |= {spec.profile.key_field, spec.id_field}
        excluded -= {spec.profile.key_field, spec.id_field}
        optional.add(spec.id_field)
    return tuple(
        dataclasses.replace(f, nullable=True) if f.name in optional else f
        for f in spec.fields
        if f.name in names and f.name not in excluded
    )


class PredictionRequest(BaseModel):
    """Base of the per-use-case request models: unknown top-level fields are ignored.

    Beyond pydantic's parsing, each field's value must pass ingestion's own check of it
    (`value_checks`), so the API refuses what ingestion would dead-letter (e.g. `true` as a
    number). Two exceptions, where the API follows its OpenAPI schema: a naive timestamp is
    accepted, meaning UTC, and so is a whole number written as a float (`3.0`) for an int.
    """

    model_config = ConfigDict(extra="ignore")
    value_checks: ClassVar[tuple[tuple[str, Check], ...]] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _ingestion_rules(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        request = handler(data)
        if isinstance(data, dict):
            for name, check in cls.value_checks:
                value = data.get(name)
                reason = check(value) if value is not None else None
                if reason is not None:
                    raise _ingestion_error(cls.__name__, name, value, reason)
        return request

    def event(self) -> dict[str, Any]:
        """The request as an event dict, timestamps normalised to UTC (naive means UTC)."""
        event = self.model_dump()
        for *parents, name in datetime_paths(type(self)):
            holder: Any = event
            for parent in parents:
                holder = holder.get(parent) if isinstance(holder, dict) else None
            if isinstance(holder, dict) and name in holder:
                holder[name] = _to_utc(holder[name])
        return event


def _api_check(field: FieldSpec) -> Check:
    """Ingestion's check of `field`, except that an int may be a whole float (JSON Schema's
    `integer` allows `3.0`; pydantic has already made it 3)."""
    check = value_check(field)
    if field.type != "int":
        return check
    return lambda value: None if type(value) is float and value.is_integer() else check(value)


def _ingestion_error(title: str, name: str, value: Any, reason: str) -> ValidationError:
    """A validation error at the field ingestion names (`field device_info.os: ...`)."""
    path, _, message = reason.removeprefix("field ").partition(": ")
    loc = tuple(path.split(".")) if message else (name,)
    error = PydanticCustomError("ingestion_rule", message or reason)
    return ValidationError.from_exception_data(title, [{"type": error, "loc": loc, "input": value}])


@functools.cache
def datetime_paths(model: type[BaseModel]) -> tuple[tuple[str, ...], ...]:
    """The field paths of `model` (nested models followed) whose type can be a datetime: the
    only values `event` converts, instead of walking every value of every request."""
    paths: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        for kind in _kinds(field.annotation):
            if kind is datetime:
                paths.append((name,))
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                paths.extend((name, *inner) for inner in datetime_paths(kind))
    return tuple(dict.fromkeys(paths))


def _kinds(annotation: Any) -> tuple[Any, ...]:
    """The types an annotation can hold (`Optional[datetime]` -> datetime, NoneType)."""
    args = get_args(annotation)
    return (annotation,) if not args else tuple(k for arg in args for k in _kinds(arg))


def _to_utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dict):
        return {k: _to_utc(v) for k, v in value.items()}
    return value


_REQUEST_MODELS: dict[str, type[PredictionRequest]] = {}
_RESPONSE_MODELS: dict[str, type[BaseModel]] = {}


def request_model(spec: UseCaseSpec) -> type[PredictionRequest]:
    """`<UC>PredictRequest`: the typed prediction request of one use case (built once)."""
    if spec.key not in _REQUEST_MODELS:
        _REQUEST_MODELS[spec.key] = _build_request_model(spec)
    return _REQUEST_MODELS[spec.key]


def _build_request_model(spec: UseCaseSpec) -> type[PredictionRequest]:
    name = f"{spec.key.upper()}PredictRequest"
    strict = pydantic_model(f"{name}Fields", request_fields(spec))
    fields = {n: (f.annotation, f) for n, f in strict.model_fields.items()}
    model = create_model(name, __base__=PredictionRequest, **fields)  # type: ignore[call-overload]
    model.value_checks = tuple(
        (f.name, _api_check(f)) for f in request_fields(spec) if f.type != "timestamp"
    )
    model.__doc__ = f"The features of one {spec.title} event to score."
    model.model_config["json_schema_extra"] = {"example": example_request(spec)}
    return model


def example_request(spec: UseCaseSpec) -> dict[str, Any]:
    """A valid request for docs and forms: the first generated event, when a generator exists."""
    try:
        event = next(iter(spec.generator(seed=7)))
    except Exception:  # noqa: BLE001 - generators are optional for the docs example
        return {}
    names = {f.name for f in request_fields(spec)}
    return {k: v for k, v in event.items() if k in names}


class _PredictionBase(BaseModel):
    model_source: ModelSource = Field(description="live (Redis) or mlflow (snapshot / registry)")
    model_version: str = Field(description="Redis version, snapshot id or registry version")


def response_model(spec: UseCaseSpec) -> type[BaseModel]:
    """`<UC>Prediction`: the prediction response of one use case (built once)."""
    if spec.key not in _RESPONSE_MODELS:
        _RESPONSE_MODELS[spec.key] = _build_response_model(spec)
    return _RESPONSE_MODELS[spec.key]


def _build_response_model(spec: UseCaseSpec) -> type[BaseModel]:
    name = f"{spec.key.upper()}Prediction"
    key = spec.prediction_key
    if spec.task == "classification":
        fields: dict[str, Any] = {
            key: (float, Field(ge=0.0, le=1.0, description="probability of the positive class")),
            CLASS_KEY: (int, Field(description="the predicted class (0 or 1)")),
            THRESHOLD_KEY: (
                float | None,
                Field(
                    None,
                    description="live model: the probability threshold in force for "
                    "`prediction`, chosen online from past events (absent for batch models)",
                ),
            ),
        }
    elif spec.task == "regression":
        fields = {key: (float, Field(description="the predicted value"))}
    else:
        fields = {key: (int, Field(description="the assigned cluster"))}
    return create_model(name, __base__=_PredictionBase, **fields)  # type: ignore[call-overload]


def prediction_body(
    spec: UseCaseSpec, output: Any, source: ModelSource, version: Any
) -> dict[str, Any]:
    """The response dict for a model output: a probability (classification) or a value."""
    key = spec.prediction_key
    body: dict[str, Any] = {"model_source": source, "model_version": str(version)}
    if spec.task == "classification":
        probability = float(output)
        body[key] = probability
        body[CLASS_KEY] = int(probability >= 0.5)
    elif spec.task == "regression":
        body[key] = float(output)
    else:
        body[key] = int(output)
    return body


class LeaderboardMetric(BaseModel):
    name: str
    direction: Literal["max", "min"]


class LeaderboardCandidate(BaseModel):
    name: str
    rank: int = Field(description="1 = best on the leaderboard metric")
    value: float | None = Field(description="the leaderboard metric (null: not yet defined)")
    served: bool


class LeaderboardPromotion(BaseModel):
    events_learned: int
    previous: str
    served: str
    metric: str
    values: dict[str, float | None]
    led_since: int = Field(description="events learned when the sustained lead began")
    at: str


class Leaderboard(BaseModel):
    """The online candidates of a use case's learner, ranked, and the served one's history."""

    use_case: str
    events_learned: int
    metric: LeaderboardMetric
    served: str = Field(description="the candidate whose model the live predictions use")
    challenger: str | None = Field(None, description="a challenger leading by the margin")
    challenger_since: int | None = None
    checked_at: int
    decision_threshold: float | None = None
    candidates: list[LeaderboardCandidate]
    promotions: list[LeaderboardPromotion] = Field(description="switches, oldest first")
    policy: dict[str, float]


class SqlQuery(BaseModel):
    """One read-only SELECT over the table `data`."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=20_000, examples=["SELECT * FROM data LIMIT 10"])
    limit: int = Field(100, ge=1, le=10_000, description="maximum rows returned")


class SqlResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    execution_time_ms: float
    truncated: bool = Field(False, description="more rows matched than `limit`")


class SqlSchema(BaseModel):
    table: str
    columns: list[str]
    types: list[str]
    row_count: int


# --- online vs batch (`GET /batch/<uc>/comparison`) -------------------------------------------

Leader = Literal["live", "batch", "tie"]


class ComparisonMetric(BaseModel):
    metric: str = Field(description="a batch metric name (scikit-learn's)")
    live: float | None = Field(description="the live model's value (null when undefined)")
    batch: float | None = Field(description="the champion's value (null when undefined)")
    primary: bool = Field(description="the use case's primary batch metric")
    better: Leader | None = Field(None, description="primary metric only: which model wins")


class ComparisonWindow(BaseModel):
    rows: int = Field(description="rows both models were scored on")
    eligible_rows: int = Field(description="raw rows new to both models (before the row cap)")
    raw_rows: int = Field(description="rows in the raw table")
    first_event_time: str | None
    last_event_time: str | None
    rule: str = Field(description="how the rows were chosen (no model learned from them)")


class ComparisonLive(BaseModel):
    model: str
    source: Literal["snapshot"]
    mlflow_run_id: str
    events_learned: int
    model_version: int
    snapshot_written_at: str
    offsets: dict[str, int] = Field(description="next Kafka offset per partition it had learned")


class ComparisonBatch(BaseModel):
    model: str
    source: Literal["champion"]
    version: str = Field(description="registry version of the champion")
    mlflow_run_id: str
    trained_through: str = Field(description="last event time of its training set")


class PrimaryMetric(BaseModel):
    name: str
    direction: Literal["max", "min"]


class Comparison(BaseModel):
    """The latest online-vs-batch comparison of a use case (an MLflow run)."""

    use_case: str
    task: str
    run_id: str = Field(description="the comparison's MLflow run")
    compared_at: str
    primary_metric: PrimaryMetric
    leader: Leader | None = Field(description="better by the primary metric (null: undefined)")
    window: ComparisonWindow
    live: ComparisonLive
    batch: ComparisonBatch
    metrics: list[ComparisonMetric] = Field(description="primary metric first, then main ones")
    all_metrics: dict[str, dict[str, float | None]] = Field(
        description="every batch metric per model ('live', 'batch')"
    )
    agreement: dict[str, float | None] = Field(
        description="how much the two agree: adjusted_rand_index (clustering), "
        "decision_agreement (classification)"
    )
    plot_artifact: str = Field(description="the plot's artifact path in the run")
