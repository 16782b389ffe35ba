"""The batch assets of one use case, built from its spec.

`<uc>/features` (daily partitions, single-run backfills) -> `<uc>/training_set` ->
`<uc>/batch_model` -> `<uc>/batch_evaluation` -> `<uc>/champion_model`, with
`<uc>/batch_visualizations` beside the evaluation. Heavy libraries are imported in bodies.
"""

import base64
import warnings
from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from coelho_pipelines import naming
from coelho_pipelines.batch import features as feature_sql
from coelho_pipelines.batch import training_set as ts
from coelho_pipelines.batch.automation import features_condition
from coelho_pipelines.batch.lineage import (
    BATCH_EVALUATION,
    BATCH_MODEL,
    BATCH_VISUALIZATIONS,
    CHAMPION_MODEL,
    FEATURES,
    TRAINING_SET,
    asset_key,
    daily_partitions,
    upstream_metadata,
)
from coelho_pipelines.ingestion.keys import raw_events_key
from coelho_pipelines.resources import LakehouseResource, MlflowResource
from coelho_pipelines.use_cases.spec import UseCaseSpec

KEY_PLOTS = {
    "classification": [("classification", "confusion_matrix"), ("classification", "roc_curve"),
                       ("classification", "precision_recall_curve"),
                       ("features", "feature_importances")],
    "regression": [("regression", "prediction_error"), ("regression", "residuals"),
                   ("features", "feature_importances")],
    "clustering": [("clustering", "k_elbow"), ("clustering", "silhouette"),
                   ("features", "pca_projection"), ("features", "feature_importances")],
}  # fmt: skip


# --- configs ----------------------------------------------------------------------------------


class TrainingSetConfig(dg.Config):
    """Which feature rows train the model: a date window, then a sample by percentage and/or
    a cap on rows (the newest), split by time into train / validation / test."""

    start_date: str | None = Field(None, description="First event date (YYYY-MM-DD).")
    end_date: str | None = Field(None, description="Last event date (YYYY-MM-DD).")
    max_rows: int | None = Field(1_000_000, description="Keep at most the newest N rows.")
    percentage: float | None = Field(None, description="Keep this % of events (hash sample).")
    validation_fraction: float = Field(0.15, description="Share for early stopping only.")
    test_fraction: float = Field(0.15, description="Share for the reported metrics.")
    seed: int = 42

    def selection(self) -> ts.Selection:
        return ts.Selection(
            start=date.fromisoformat(self.start_date) if self.start_date else None,
            end=date.fromisoformat(self.end_date) if self.end_date else None,
            max_rows=self.max_rows,
            percentage=self.percentage,
            validation_fraction=self.validation_fraction,
            test_fraction=self.test_fraction,
            seed=self.seed,
        )


def model_config_class(spec: UseCaseSpec) -> type[dg.Config]:
    """The batch model's Config for the spec's task, defaults from `spec.batch_model_params`."""
    defaults = dict(spec.batch_model_params)
    if spec.task == "clustering":

        class KMeansConfig(dg.Config):
            """KMeans: k searched in k_min..k_max by silhouette on a sample."""

            k_min: int = int(defaults.get("k_min", 2))
            k_max: int = int(defaults.get("k_max", 10))
            n_init: int = int(defaults.get("n_init", 10))
            seed: int = int(defaults.get("random_state", 42))
            silhouette_sample_size: int = int(defaults.get("silhouette_sample_size", 5000))

            def params(self) -> dict[str, Any]:
                return {"k_min": self.k_min, "k_max": self.k_max,
                        "init": defaults.get("init", "k-means++"), "n_init": self.n_init,
                        "random_state": self.seed,
                        "silhouette_sample_size": self.silhouette_sample_size}  # fmt: skip

        return KMeansConfig

    class CatBoostConfig(dg.Config):
        """CatBoost: categoricals native, early stopping on the validation split."""

        iterations: int = int(defaults.get("iterations", 1000))
        learning_rate: float = float(defaults.get("learning_rate", 0.05))
        depth: int = int(defaults.get("depth", 6))
        l2_leaf_reg: float = float(defaults.get("l2_leaf_reg", 3.0))
        early_stopping_rounds: int = int(defaults.get("early_stopping_rounds", 50))
        seed: int = int(defaults.get("random_seed", 42))
        thread_count: int = Field(-1, description="CatBoost threads (-1: all cores).")

        def params(self) -> dict[str, Any]:
            return {"iterations": self.iterations, "learning_rate": self.learning_rate,
                    "depth": self.depth, "l2_leaf_reg": self.l2_leaf_reg,
                    "early_stopping_rounds": self.early_stopping_rounds,
                    "random_seed": self.seed, "thread_count": self.thread_count}  # fmt: skip

    return CatBoostConfig


class VisualizationConfig(dg.Config):
    """Sample sizes that keep the slow plots (t-SNE, UMAP, refits) in seconds."""

    sample_size: int = 1000
    diagnostics_sample_size: int = 1500
    text_limit: int = 2000
    seed: int = 42


# --- helpers ---------------------------------------------------------------------------------


def _md_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _png_markdown(images: list[tuple[str, bytes]]) -> str:
    parts = []
    for title, png in images:
        encoded = base64.b64encode(png).decode("ascii")
        parts.append(f"**{title}**\n\n![{title}](data:image/png;base64,{encoded})")
    return "\n\n".join(parts)


def _load_splits(spec: UseCaseSpec, lakehouse: LakehouseResource, version: int) -> dict:
    uri = lakehouse.table_uri(naming.training_set_table_name(spec))
    return ts.read_splits(uri, version, lakehouse.storage_options, spec.time_field)


def _layout(spec: UseCaseSpec):
    from coelho_pipelines.models.encoding import FeatureLayout

    return FeatureLayout.of(spec.model_features)


# --- assets ----------------------------------------------------------------------------------


def build_features_asset(spec: UseCaseSpec) -> dg.AssetsDefinition:
    table_name = naming.features_table_name(spec)

    with warnings.catch_warnings():  # BackfillPolicy is marked beta; it is what we need
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _features_asset(spec, table_name)


def _features_asset(spec: UseCaseSpec, table_name: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(spec, FEATURES),
        deps=[raw_events_key(spec)],
        partitions_def=daily_partitions(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=features_condition(),
        group_name=spec.key,
        kinds={"duckdb", "delta"},
        description=f"Model features of {spec.key} per event date: the spec's feature SQL over "
        f"the raw Delta table, stored in `delta/{table_name}` (re-materializing a day "
        "replaces it). Today's and yesterday's partitions are kept fresh by declarative "
        "automation (see batch/automation.py).",
        metadata={"table": table_name, "features": ", ".join(spec.feature_names)},
    )
    def features(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource
    ) -> dg.MaterializeResult:
        window = context.partition_time_window
        start = window.start.date()
        end = (window.end - timedelta(days=1)).date()
        raw_uri = lakehouse.table_uri(naming.raw_table_name(spec))
        if not feature_sql.table_exists(raw_uri, lakehouse.storage_options):
            raise dg.Failure(
                description=f"no raw table at {raw_uri}: "
                f"run {naming.ingestion_job_name(spec)} first"
            )
        con = feature_sql.connect()
        feature_sql.register_delta(con, "raw", raw_uri, lakehouse.storage_options)
        table = feature_sql.compute_features(spec, con, start, end)
        uri = lakehouse.table_uri(table_name)
        version = feature_sql.write_features(
            spec, uri, table, start, end, lakehouse.storage_options
        )
        con.register("written", table)
        per_day = con.execute(
            "SELECT CAST(event_date AS VARCHAR) AS event_date, count(*) AS rows "
            "FROM written GROUP BY 1 ORDER BY 1"
        ).df()
        context.log.info(f"{table.num_rows} feature rows for {start}..{end} -> {uri} v{version}")
        metadata: dict[str, Any] = {
            # A ranged (backfill) run records this one result for each of its partitions.
            ("dagster/row_count" if start == end else "rows_in_run"): table.num_rows,
            "date_range": f"{start}..{end}",
            "table_uri": uri,
            "delta_version": version,
            "rows_per_day": dg.MetadataValue.md(_md_table(per_day.to_dict("records"))),
        }
        if spec.task == "classification" and table.num_rows:
            labels = table.column(spec.label_field).to_numpy()
            metadata["positive_rate"] = float(labels.mean())
        return dg.MaterializeResult(metadata=metadata)

    return features


def build_training_set_asset(spec: UseCaseSpec) -> dg.AssetsDefinition:
    table_name = naming.training_set_table_name(spec)

    @dg.asset(
        key=asset_key(spec, TRAINING_SET),
        deps=[asset_key(spec, FEATURES)],
        group_name=spec.key,
        kinds={"duckdb", "delta"},
        description="Time-ordered train / validation (early stopping) / test (metrics) split "
        + (
            "of the customers' profiles (DuckDB SQL over the raw events of the feature "
            "partitions' window; customers with at least "
            f"{spec.profile.min_events} events)"
            if spec.profile is not None
            else "of the feature partitions that exist"
        )
        + f", stored in `delta/{table_name}`.",
    )
    def training_set(
        context: dg.AssetExecutionContext, config: TrainingSetConfig, lakehouse: LakehouseResource
    ) -> dg.MaterializeResult:
        try:
            selection = config.selection()
        except ValueError as error:
            raise dg.Failure(description=f"invalid training set config: {error}") from error
        features_uri = lakehouse.table_uri(naming.features_table_name(spec))
        if not feature_sql.table_exists(features_uri, lakehouse.storage_options):
            raise dg.Failure(
                description=f"no features table at {features_uri}: materialize "
                f"{spec.key}/features partitions first"
            )
        con = feature_sql.connect()
        if spec.profile is not None:  # customers, profiled from the raw events
            raw_uri = lakehouse.table_uri(naming.raw_table_name(spec))
            feature_sql.register_delta(con, "raw", raw_uri, lakehouse.storage_options)
            table = ts.select_customer_training_set(spec, con, selection)
        else:
            feature_sql.register_delta(con, "features", features_uri, lakehouse.storage_options)
            table = ts.select_training_set(spec, con, selection)
        summary = ts.summarize(spec, table)
        _require_enough(spec, table, summary)
        uri = lakehouse.table_uri(table_name)
        version = ts.write_training_set(spec, uri, table, lakehouse.storage_options)
        rows = [{"split": split, **values} for split, values in summary.items()]
        metadata: dict[str, Any] = {
            "dagster/row_count": table.num_rows,
            "table_uri": uri,
            "delta_version": version,
            "splits": dg.MetadataValue.md(_md_table(rows)),
            "selection": dg.MetadataValue.json(
                {k: (str(v) if v is not None else None) for k, v in asdict(selection).items()}
            ),
        }
        for split, values in summary.items():
            metadata[f"{split}_rows"] = int(values["rows"])
            if "positive_rate" in values:
                metadata[f"{split}_positive_rate"] = float(values["positive_rate"])
        metadata["first_event"] = str(summary["train"].get("first", ""))
        metadata["last_event"] = str(summary["test"].get("last", ""))
        context.log.info(f"training set v{version}: {summary}")
        return dg.MaterializeResult(metadata=metadata)

    return training_set


def _require_enough(spec: UseCaseSpec, table: Any, summary: dict[str, dict[str, Any]]) -> None:
    minimum = {"train": 50, "validation": 10, "test": 10}
    short = {s: summary[s]["rows"] for s in ts.SPLITS if summary[s]["rows"] < minimum[s]}
    if short:
        raise dg.Failure(
            description=f"training set too small ({table.num_rows} rows; {short}): "
            f"materialize more {spec.key}/features partitions or widen the window"
        )
    if spec.task == "classification":
        rate = summary["train"].get("positive_rate") or 0.0
        if not 0.0 < rate < 1.0:
            raise dg.Failure(description="the train split holds a single class; widen the window")


def build_model_asset(spec: UseCaseSpec) -> dg.AssetsDefinition:
    ModelConfig = model_config_class(spec)

    @dg.asset(
        key=asset_key(spec, BATCH_MODEL),
        deps=[asset_key(spec, TRAINING_SET)],
        group_name=spec.key,
        kinds={"catboost" if spec.task != "clustering" else "scikitlearn", "mlflow"},
        description=f"{spec.batch_model_name} trained on the training set; one MLflow run in "
        f"'{spec.experiment}' with the model (pyfunc, encoding included), params and encoders.",
    )
    def batch_model(
        context: dg.AssetExecutionContext,
        config: ModelConfig,
        lakehouse: LakehouseResource,
        mlflow: MlflowResource,
    ) -> dg.MaterializeResult:
        from coelho_pipelines.batch.training import train_and_log

        upstream = upstream_metadata(context, spec, TRAINING_SET)
        version = int(upstream["delta_version"])
        splits = _load_splits(spec, lakehouse, version)
        logged = train_and_log(
            spec, splits, config.params(), mlflow, context.run.run_id, version,
            str(upstream.get("table_uri", "")),
        )  # fmt: skip
        context.log.info(f"MLflow run {logged.run_id}: {logged.model_uri}")
        metadata: dict[str, Any] = {
            "run_id": logged.run_id,
            "run_url": dg.MetadataValue.url(logged.run_url),
            "experiment_id": logged.experiment_id,
            "model_uri": logged.model_uri,
            "training_set_version": version,
            "fit_seconds": logged.fit_seconds,
            "params": dg.MetadataValue.json(logged.params),
            "features": ", ".join(f.name for f in spec.model_features),
        }
        metadata.update({k: v for k, v in logged.info.items() if isinstance(v, int | float)})
        if logged.importance is not None:
            metadata["feature_importance"] = dg.MetadataValue.md(_md_table(logged.importance))
        return dg.MaterializeResult(metadata=metadata)

    return batch_model


def build_evaluation_asset(spec: UseCaseSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(spec, BATCH_EVALUATION),
        deps=[asset_key(spec, BATCH_MODEL)],
        group_name=spec.key,
        kinds={"mlflow"},
        description=f"Every batch metric of the model on the test split (primary: "
        f"{spec.batch_primary.name}, {spec.batch_primary.direction}), logged to its MLflow run.",
    )
    def batch_evaluation(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource, mlflow: MlflowResource
    ) -> dg.MaterializeResult:
        from coelho_pipelines.batch import registry
        from coelho_pipelines.batch.evaluation import baselines, evaluate, metrics_markdown

        upstream = upstream_metadata(context, spec, BATCH_MODEL)
        version = int(upstream["training_set_version"])
        splits = _load_splits(spec, lakehouse, version)
        model = registry.load_model(mlflow.tracking_uri, str(upstream["model_uri"]))
        values = evaluate(model, splits["test"], spec.label_field)
        reference = baselines(spec, splits["train"], splits["test"])
        client = mlflow.client()
        run_id = str(upstream["run_id"])
        for name, value in values.items():
            client.log_metric(run_id, name, value)
        for name, value in reference.items():
            client.log_metric(run_id, f"baseline_{name}", value)
        primary = spec.batch_primary.name
        context.log.info(f"{primary} = {values.get(primary)} (baseline {reference})")
        metadata: dict[str, Any] = {
            "run_id": run_id,
            "model_uri": str(upstream["model_uri"]),
            "training_set_version": version,
            "primary_metric": primary,
            "test_rows": len(splits["test"]),
            "metrics": dg.MetadataValue.md(metrics_markdown(values, primary)),
            "baselines": dg.MetadataValue.md(metrics_markdown(reference)),
        }
        metadata.update({name: dg.MetadataValue.float(value) for name, value in values.items()})
        return dg.MaterializeResult(metadata=metadata)

    return batch_evaluation


def build_visualizations_asset(spec: UseCaseSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(spec, BATCH_VISUALIZATIONS),
        deps=[asset_key(spec, BATCH_MODEL)],
        group_name=spec.key,
        kinds={"matplotlib", "mlflow"},
        description="The visualization catalogue (" + ", ".join(spec.plot_tabs) + ") as PNG "
        "artifacts `visualizations/<tab>/<name>.png` of the model's MLflow run.",
    )
    def batch_visualizations(
        context: dg.AssetExecutionContext,
        config: VisualizationConfig,
        lakehouse: LakehouseResource,
        mlflow: MlflowResource,
    ) -> dg.MaterializeResult:
        from coelho_pipelines.batch.visuals import plot_data, render_and_log

        upstream = upstream_metadata(context, spec, BATCH_MODEL)
        version = int(upstream["training_set_version"])
        splits = _load_splits(spec, lakehouse, version)
        data = plot_data(spec, splits, upstream, config, lakehouse, mlflow)
        result = render_and_log(spec, data, str(upstream["run_id"]), mlflow)
        key_images = [
            (f"{tab}/{name}", result.rendered.images[(tab, name)])
            for tab, name in KEY_PLOTS[spec.task]
            if (tab, name) in result.rendered.images
        ]
        rows = [
            {"tab": tab, "plot": name, "artifact": f"visualizations/{tab}/{name}.png",
             "seconds": round(result.rendered.seconds[(tab, name)], 2)}
            for tab, name in result.rendered.images
        ]  # fmt: skip
        metadata: dict[str, Any] = {
            "run_id": str(upstream["run_id"]),
            "plots": len(result.rendered.images),
            "failed_plots": len(result.rendered.failures),
            "catalogue": dg.MetadataValue.md(_md_table(rows)),
            "key_plots": dg.MetadataValue.md(_png_markdown(key_images)),
        }
        if result.importance is not None:
            metadata["feature_importance"] = dg.MetadataValue.md(_md_table(result.importance))
        if result.rendered.failures:
            failures = "; ".join(f"{t}/{n}: {e}" for (t, n), e in result.rendered.failures.items())
            context.log.error(f"plots failed: {failures}")
            raise dg.Failure(description=f"plots failed: {failures}", metadata=metadata)
        return dg.MaterializeResult(metadata=metadata)

    return batch_visualizations


def build_champion_asset(spec: UseCaseSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(spec, CHAMPION_MODEL),
        deps=[asset_key(spec, BATCH_EVALUATION)],
        group_name=spec.key,
        kinds={"mlflow"},
        description=f"Registers the model as `{spec.registered_model}` with alias `champion` "
        f"when it beats the current champion by {spec.batch_primary.name} on the same test "
        "split (the blocking check `beats_champion` runs first).",
    )
    def champion_model(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource, mlflow: MlflowResource
    ) -> dg.MaterializeResult:
        from coelho_pipelines.batch import registry
        from coelho_pipelines.batch.champion import compare_with_champion

        evaluation = upstream_metadata(context, spec, BATCH_EVALUATION)
        splits = _load_splits(spec, lakehouse, int(evaluation["training_set_version"]))
        run_id = str(evaluation["run_id"])
        candidate = evaluation.get(spec.batch_primary.name)
        comparison = compare_with_champion(
            mlflow.tracking_uri, spec, run_id, None if candidate is None else float(candidate),
            splits["test"],
        )  # fmt: skip
        metadata: dict[str, Any] = dict(comparison.as_metadata())
        if comparison.already_champion:
            metadata["version"] = comparison.champion_version or ""
        elif not comparison.promote:
            raise dg.Failure(description=f"not promoted: {comparison.reason}", metadata=metadata)
        else:
            version = registry.register_champion(
                mlflow.tracking_uri, spec, run_id, str(evaluation["model_uri"]),
                {"dagster_run_id": context.run.run_id, spec.batch_primary.name: str(candidate)},
            )  # fmt: skip
            metadata["version"] = version
            context.log.info(f"{spec.registered_model} v{version} is the champion")
        metadata["champion_uri"] = f"models:/{spec.registered_model}@{registry.CHAMPION_ALIAS}"
        metadata["reason"] = comparison.reason
        return dg.MaterializeResult(metadata=metadata)

    return champion_model


def build_batch_assets(spec: UseCaseSpec) -> list[dg.AssetsDefinition]:
    return [
        build_features_asset(spec),
        build_training_set_asset(spec),
        build_model_asset(spec),
        build_evaluation_asset(spec),
        build_visualizations_asset(spec),
        build_champion_asset(spec),
    ]
