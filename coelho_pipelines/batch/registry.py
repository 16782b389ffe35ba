"""Batch models in MLflow: the best-model rule, the champion, loading and predicting.

Importable without Dagster (the API uses it). Every batch training is one MLflow run in the
use case's experiment, tagged `coelho.paradigm=batch`; its model is a pyfunc
(`CoelhoBatchModel`) that applies the saved feature encoding itself. The registered model
`coelho-<uc>-batch` carries the alias `champion` on the best version by `spec.batch_primary`.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coelho_pipelines.naming import MLFLOW_PARADIGM_TAG, mlflow_dagster_run_id
from coelho_pipelines.use_cases.spec import UseCaseSpec

CHAMPION_ALIAS = "champion"
MODEL_URI_TAG = "coelho.model_uri"
TRAINING_SET_TAG = "coelho.training_set_version"
_CACHE_SIZE = 8
_cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class ChampionModel:
    """The loaded champion with where it came from."""

    model: Any  # CoelhoBatchModel
    version: str
    run_id: str
    model_uri: str


def client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def champion_version(mlflow_client: Any, spec: UseCaseSpec) -> Any | None:
    """The registry's champion `ModelVersion` of the use case, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(spec.registered_model, CHAMPION_ALIAS)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def load_model(tracking_uri: str, model_uri: str) -> Any:
    """The `CoelhoBatchModel` at `model_uri` (immutable URIs are cached in-process)."""
    import mlflow

    cacheable = not model_uri.endswith(f"@{CHAMPION_ALIAS}")
    key = (tracking_uri, model_uri)
    with _cache_lock:
        if cacheable and key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    if cacheable:
        with _cache_lock:
            _cache[key] = model
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return model


def load_champion(tracking_uri: str, spec: UseCaseSpec) -> ChampionModel | None:
    """The champion model of the use case, or None when none is registered yet."""
    version = champion_version(client(tracking_uri), spec)
    if version is None:
        return None
    uri = f"models:/{spec.registered_model}/{version.version}"
    return ChampionModel(load_model(tracking_uri, uri), str(version.version), version.run_id, uri)


def run_model_uri(tracking_uri: str, run_id: str) -> str:
    """The model URI logged by a batch run (KeyError naming the run when it has none)."""
    from mlflow.exceptions import MlflowException

    try:
        run = client(tracking_uri).get_run(run_id)
    except MlflowException as error:
        raise KeyError(f"unknown run {run_id!r}") from error
    uri = run.data.tags.get(MODEL_URI_TAG)
    if not uri:
        raise KeyError(f"run {run_id!r} has no batch model")
    return uri


def load_run_model(tracking_uri: str, run_id: str) -> Any:
    """The model of a given batch run (`?run_id=` in the API)."""
    return load_model(tracking_uri, run_model_uri(tracking_uri, run_id))


def primary_value(spec: UseCaseSpec, metrics: Mapping[str, float]) -> float | None:
    value = metrics.get(spec.batch_primary.name)
    return None if value is None or value != value else float(value)


def is_better(spec: UseCaseSpec, candidate: float | None, incumbent: float | None) -> bool:
    """The one best-model rule: the candidate strictly beats the incumbent (or there is none)."""
    if candidate is None:
        return False
    return spec.batch_primary.better(candidate, incumbent)


def _run_summary(run: Any, champion_run_id: str | None) -> dict[str, Any]:
    info, data = run.info, run.data
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "status": info.status,
        "start_time": datetime.fromtimestamp(info.start_time / 1000, UTC).isoformat(),
        "metrics": dict(data.metrics),
        "params": dict(data.params),
        "model_uri": data.tags.get(MODEL_URI_TAG),
        "dagster_run_id": mlflow_dagster_run_id(data.tags),
        "champion": info.run_id == champion_run_id,
    }


def list_runs_best_first(
    tracking_uri: str, spec: UseCaseSpec, max_results: int = 100
) -> list[dict[str, Any]]:
    """The use case's batch runs with their metrics, best first by `spec.batch_primary`
    (runs without the metric last), the champion's run marked `champion: True`."""
    mlflow_client = client(tracking_uri)
    experiment = mlflow_client.get_experiment_by_name(spec.experiment)
    if experiment is None:
        return []
    runs = mlflow_client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{MLFLOW_PARADIGM_TAG}` = 'batch'",
        max_results=max_results,
        order_by=["attributes.start_time DESC"],
    )
    champion = champion_version(mlflow_client, spec)
    champion_run = champion.run_id if champion is not None else None
    summaries = [_run_summary(run, champion_run) for run in runs]
    return sorted(
        summaries,
        key=lambda s: spec.batch_primary.best_first_key(primary_value(spec, s["metrics"])),
    )


def feature_frame(spec: UseCaseSpec, events: Sequence[Mapping[str, Any]]) -> Any:
    """The model input (pandas) of decoded events through the spec's python `extract`."""
    from coelho_pipelines.models.encoding import FeatureLayout

    layout = FeatureLayout.of(spec.features)
    return layout.frame_from_rows([spec.extract_features(event) for event in events])


def predict_frame(model: Any, spec: UseCaseSpec, events: Sequence[Mapping[str, Any]]) -> Any:
    """Predictions (pandas: `prediction`, plus `probability` for classification) for events,
    with exactly the training encoding. The frame is built once, in the estimator's column
    order, so the model's own encoding step finds it already normalized."""
    rows = [spec.extract_features(event) for event in events]
    return model.predict_frame(model.input_layout.frame_from_rows(rows))


def register_champion(
    tracking_uri: str, spec: UseCaseSpec, run_id: str, model_uri: str, tags: Mapping[str, str]
) -> str:
    """Register the run's model as a new version and point the `champion` alias at it."""
    mlflow_client = client(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.create_registered_model(
            spec.registered_model,
            description=f"{spec.title}: batch {spec.batch_model_name}, champion by "
            f"{spec.batch_primary.name} ({spec.batch_primary.direction}).",
        )
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    version = mlflow.register_model(model_uri, spec.registered_model, tags=dict(tags))
    mlflow_client.set_registered_model_alias(spec.registered_model, CHAMPION_ALIAS, version.version)
    mlflow_client.set_tag(run_id, "coelho.champion_version", str(version.version))
    return str(version.version)
