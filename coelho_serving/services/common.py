"""What every area service shares: error mapping, dependency errors, small helpers."""

from __future__ import annotations

import logging
import math
import re
from typing import Any, TypeVar

from fastapi import HTTPException

from coelho_pipelines.use_cases.spec import UseCaseSpec

log = logging.getLogger(__name__)
T = TypeVar("T")
NO_MODEL = "no model trained yet"
PLOT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MODEL_ERRORS = (ArithmeticError, KeyError, TypeError, ValueError)


def require_finite(fields: dict[str, Any]) -> dict[str, Any]:
    """The model's answer, or a 422 when a number in it is not finite (inputs far outside
    anything the model learned from can overflow a regression to inf or NaN)."""
    bad = [k for k, v in fields.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise HTTPException(
            422,
            f"the model gave no finite {', '.join(bad)} for this event: "
            "its inputs are far outside the range it learned from",
        )
    return fields


def redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, OSError)


def unavailable(dependency: str, error: BaseException) -> HTTPException:
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return HTTPException(503, f"{dependency} is unavailable: {first_line}")


def mlflow_unavailable(error: BaseException) -> bool:
    """Whether an exception from the MLflow client means the server could not be reached."""
    import requests

    if isinstance(error, requests.exceptions.RequestException | ConnectionError | TimeoutError):
        return True
    text = str(error)
    return "Max retries exceeded" in text or "Connection refused" in text


def spec_feature(spec: UseCaseSpec, feature: str) -> str:
    if feature not in spec.categorical_features:
        raise HTTPException(
            404,
            f"unknown categorical feature {feature!r} for {spec.key}; "
            f"valid: {', '.join(spec.categorical_features)}",
        )
    return feature


def cluster_body(spec: UseCaseSpec, analytics: dict[str, Any], feature: str | None) -> dict:
    """`{samples_per_cluster}` or `{feature, clusters: {cluster: {value: count}}}`."""
    if feature is None:
        return {"use_case": spec.key, "samples_per_cluster": analytics["samples_per_cluster"]}
    feature = spec_feature(spec, feature)
    return {
        "use_case": spec.key,
        "feature": feature,
        "clusters": analytics.get("features", {}).get(feature, {}),
    }
