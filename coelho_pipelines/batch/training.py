"""One batch training: fit on the train split, early-stop (or pick k) on validation, and log
the run to MLflow (params, split sizes, the pyfunc model, encoders, k search)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coelho_pipelines import naming
from coelho_pipelines.batch import registry
from coelho_pipelines.use_cases.spec import UseCaseSpec

K_SEARCH_ARTIFACT = "k_search.json"
ENCODERS_ARTIFACT = "encoders.json"


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    run_url: str
    experiment_id: str
    model_uri: str
    params: dict[str, Any]
    info: dict[str, Any]
    importance: list[dict[str, Any]] | None
    fit_seconds: float
    model: Any  # the in-memory CoelhoBatchModel


def run_tags(spec: UseCaseSpec, dagster_run_id: str | None) -> dict[str, str]:
    tags = {
        naming.MLFLOW_PARADIGM_TAG: "batch",
        naming.MLFLOW_USE_CASE_TAG: spec.key,
        "coelho.model": spec.batch_model_name,
    }
    if dagster_run_id:
        tags[naming.MLFLOW_DAGSTER_RUN_TAG] = dagster_run_id
    return tags


def _importance(trained: Any) -> list[dict[str, Any]] | None:
    """CatBoost's built-in importance (prediction values change), most important first."""
    if trained.model.task == "clustering":
        return None
    estimator = trained.model.estimator
    pairs = zip(estimator.layout.order, estimator.feature_importances_, strict=True)
    ranked = sorted(pairs, key=lambda pair: -pair[1])
    return [{"feature": name, "importance": float(value)} for name, value in ranked]


def train_and_log(
    spec: UseCaseSpec,
    splits: dict[str, Any],
    params: dict[str, Any],
    mlflow_resource: Any,
    dagster_run_id: str | None,
    training_set_version: int,
    training_set_uri: str = "",
) -> LoggedModel:
    """Train the spec's batch model and log one MLflow run named `spec.batch_model_name`."""
    import mlflow

    from coelho_pipelines.models import batch_model
    from coelho_pipelines.models.encoding import FeatureLayout

    layout = FeatureLayout.of(spec.model_features)
    trained = batch_model.train(
        spec.task, spec.key, layout, splits["train"], splits["validation"], spec.label_field,
        params, spec.batch_model,
    )  # fmt: skip
    experiment_id = mlflow_resource.activate(spec.experiment)
    time_field = spec.time_field
    split_params = {f"n_{name}": len(frame) for name, frame in splits.items()}
    for name, frame in splits.items():
        if len(frame):
            split_params[f"{name}_from"] = str(frame[time_field].min())
            split_params[f"{name}_to"] = str(frame[time_field].max())
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=spec.batch_model_name,
        tags=run_tags(spec, dagster_run_id),
    ) as run:
        mlflow.log_params(
            {
                **trained.params,
                **split_params,
                "training_set_version": training_set_version,
                "training_set_uri": training_set_uri,
                "features": ",".join(layout.order),
                "categorical_features": ",".join(layout.categorical),
            }  # fmt: skip
        )
        mlflow.log_params({k: v for k, v in trained.info.items() if not isinstance(v, dict)})
        mlflow.log_metric("fit_seconds", trained.fit_seconds)
        for trial in trained.k_trials:
            mlflow.log_metric("k_search_silhouette", trial.silhouette, step=trial.k)
            mlflow.log_metric("k_search_inertia", trial.inertia, step=trial.k)
        if trained.k_trials:
            mlflow.log_dict([vars(t) for t in trained.k_trials], K_SEARCH_ARTIFACT)
        mlflow.log_dict(
            batch_model.encoders_description(trained, splits["train"]), ENCODERS_ARTIFACT
        )
        model_uri = batch_model.log_model(trained, splits["train"])
        mlflow.set_tag(registry.MODEL_URI_TAG, model_uri)
        mlflow.set_tag(registry.TRAINING_SET_TAG, str(training_set_version))
        run_id = run.info.run_id
    return LoggedModel(
        run_id=run_id,
        run_url=mlflow_resource.run_url(experiment_id, run_id),
        experiment_id=experiment_id,
        model_uri=model_uri,
        params=dict(trained.params),
        info=dict(trained.info),
        importance=_importance(trained),
        fit_seconds=trained.fit_seconds,
        model=trained.model,
    )
