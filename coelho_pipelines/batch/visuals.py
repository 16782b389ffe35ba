"""Build the plot inputs of a batch run and log the rendered catalogue to MLflow."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coelho_pipelines import naming
from coelho_pipelines.batch import features as feature_sql
from coelho_pipelines.batch import registry
from coelho_pipelines.batch.training import K_SEARCH_ARTIFACT
from coelho_pipelines.use_cases.spec import UseCaseSpec

ARTIFACT_ROOT = "visualizations"


@dataclass
class VisualsResult:
    rendered: Any  # plots.Rendered
    importance: list[dict[str, Any]] | None


def _k_trials(tracking_uri: str, run_id: str) -> list[dict[str, float]]:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    try:
        return list(mlflow.artifacts.load_dict(f"runs:/{run_id}/{K_SEARCH_ARTIFACT}"))
    except Exception:  # noqa: BLE001 - CatBoost runs have no k search
        return []


def texts_frame(
    spec: UseCaseSpec, lakehouse: Any, splits: dict[str, Any], model: Any, limit: int
) -> Any | None:
    """The newest `limit` texts (`spec.text_field`) of the training window with the
    batch cluster of their event, in time order; None when the use case has no text field."""
    text_field = spec.text_field
    if not text_field:
        return None
    if spec.profile is not None:
        return _customer_texts_frame(spec, lakehouse, splits, model, limit, text_field)
    raw_uri = lakehouse.table_uri(naming.raw_table_name(spec))
    features_uri = lakehouse.table_uri(naming.features_table_name(spec))
    con = feature_sql.connect()
    feature_sql.register_delta(con, "raw", raw_uri, lakehouse.storage_options)
    feature_sql.register_delta(con, "features", features_uri, lakehouse.storage_options)
    first = min(frame[spec.time_field].min() for frame in splits.values() if len(frame))
    last = max(frame[spec.time_field].max() for frame in splits.values() if len(frame))
    key, time = feature_sql.quote(spec.id_field), feature_sql.quote(spec.time_field)
    frame = con.execute(
        f"""SELECT * FROM (
              SELECT f.*, r.{feature_sql.quote(text_field)} AS text
              FROM features f JOIN raw r ON f.{key} = r.{key}
              WHERE r.{feature_sql.quote(text_field)} IS NOT NULL
                AND f.{time} BETWEEN $first AND $last
                AND f.event_date BETWEEN CAST($first AS DATE) AND CAST($last AS DATE)
                AND r.event_date BETWEEN CAST($first AS DATE) AND CAST($last AS DATE)
              ORDER BY f.{time} DESC LIMIT $limit)
            ORDER BY {time}""",
        {"first": first, "last": last, "limit": int(limit)},
    ).df()
    if frame.empty:
        return frame.assign(cluster=[])
    frame["cluster"] = model.predict_frame(frame)["prediction"].to_numpy()
    return frame[["text", "cluster", spec.time_field]]


def _customer_texts_frame(
    spec: UseCaseSpec,
    lakehouse: Any,
    splits: dict[str, Any],
    model: Any,
    limit: int,
    text_field: str,
) -> Any:
    """`texts_frame` when rows are customers: the newest texts of the training set's customers,
    each with its customer's batch cluster."""
    import pandas as pd

    assert spec.profile is not None
    key = spec.profile.key_field
    customers = pd.concat([f for f in splits.values() if len(f)], ignore_index=True)
    clusters = dict(zip(customers[key], model.predict_frame(customers)["prediction"],
                        strict=True))  # fmt: skip
    con = feature_sql.connect()
    feature_sql.register_delta(
        con, "raw", lakehouse.table_uri(naming.raw_table_name(spec)), lakehouse.storage_options
    )
    con.register("customers", pd.DataFrame({key: list(clusters)}))
    q = feature_sql.quote
    time = q(spec.time_field)
    frame = con.execute(
        f"""SELECT * FROM (
              SELECT r.{q(text_field)} AS text, r.{q(key)} AS _customer, r.{time}
              FROM raw r JOIN customers c ON r.{q(key)} = c.{q(key)}
              WHERE r.{q(text_field)} IS NOT NULL
              ORDER BY r.{time} DESC LIMIT $limit)
            ORDER BY {time}""",
        {"limit": int(limit)},
    ).df()
    frame["cluster"] = frame.pop("_customer").map(clusters).astype("int64")
    return frame[["text", "cluster", spec.time_field]]


def plot_data(
    spec: UseCaseSpec,
    splits: dict[str, Any],
    model_metadata: dict[str, Any],
    config: Any,
    lakehouse: Any,
    mlflow_resource: Any,
) -> Any:
    """`PlotData` for the model of `model_metadata` (the batch_model asset's metadata)."""
    from coelho_pipelines.plots import PlotData

    tracking_uri = mlflow_resource.tracking_uri
    run_id = str(model_metadata["run_id"])
    model = registry.load_model(tracking_uri, str(model_metadata["model_uri"]))
    params = dict(model_metadata.get("params") or {})
    texts = None
    if "text" in spec.plot_tabs:
        texts = texts_frame(spec, lakehouse, splits, model, config.text_limit)
    return PlotData(
        task=spec.task,
        title=spec.title,
        model=model,
        layout=model.layout,
        label=spec.label_field,
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        params=params,
        k_trials=_k_trials(tracking_uri, run_id) if spec.task == "clustering" else [],
        texts=texts,
        sample_size=config.sample_size,
        diagnostics_sample_size=config.diagnostics_sample_size,
        seed=config.seed,
    )


def render_and_log(
    spec: UseCaseSpec, data: Any, run_id: str, mlflow_resource: Any
) -> VisualsResult:
    """Render `spec.plot_tabs` and log each PNG as `visualizations/<tab>/<name>.png`."""
    from coelho_pipelines import plots
    from coelho_pipelines.plots.features import importance_table

    rendered = plots.render(data, spec.plot_tabs)
    client = mlflow_resource.client()
    importance = None
    try:
        importance = importance_table(data).to_dict("records")
    except Exception:  # noqa: BLE001 - the feature_importances plot reports the failure
        importance = None
    with tempfile.TemporaryDirectory(prefix="coelho-plots-") as tmp:
        root = Path(tmp) / ARTIFACT_ROOT
        for (tab, name), png in rendered.images.items():
            path = root / tab / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
        if rendered.images:
            client.log_artifacts(run_id, str(root), ARTIFACT_ROOT)
        if importance is not None:
            client.log_dict(run_id, importance, "feature_importance.json")
    return VisualsResult(rendered, importance)
