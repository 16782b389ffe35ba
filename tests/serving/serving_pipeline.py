"""The platform's real pipeline steps, driven for the API tests: ingest, batch-train, learn.

Each step is the code the platform runs (the ingestion pass, the Dagster batch assets, the
incremental learner run) with small settings so a use case takes seconds.
"""

from __future__ import annotations

import uuid
from typing import Any

# Plots take 40-120 s per use case; the API only serves them, so one use case renders them.
PLOTTED = "eta"
# Small but real: CatBoost with 50 iterations, a short k search, small plot samples.
MODEL_CONFIG = {
    "catboost": {"iterations": 50, "early_stopping_rounds": 20, "thread_count": 1},
    "kmeans": {"k_min": 2, "k_max": 4, "n_init": 2, "silhouette_sample_size": 500},
}
BATCH_RUN_CONFIG = {
    "batch_visualizations": {
        "sample_size": 150,
        "diagnostics_sample_size": 200,
        "text_limit": 200,
    },
}


def ingest_all(stack: Any, spec: Any, at_least: int) -> int:
    """One ingestion pass of the use case's topic into the stack's lakehouse; rows committed."""
    from coelho_pipelines.ingestion.pipeline import ingest
    from coelho_pipelines.resources import KafkaResource, LakehouseResource

    kafka = KafkaResource(bootstrap_servers=stack.env["KAFKA_BOOTSTRAP_SERVERS"])
    lakehouse = LakehouseResource(uri=stack.lakehouse)
    result = ingest(spec, kafka, lakehouse)
    assert result.events >= at_least, result
    return result.events


def _partition_range(stack: Any, spec: Any) -> tuple[str, str]:
    import duckdb

    from coelho_pipelines import naming
    from coelho_pipelines.sql_engine import delta_extension_path

    con = duckdb.connect()
    con.execute(f"LOAD '{delta_extension_path()}'")
    first, last = con.execute(
        f"SELECT CAST(min(CAST({spec.time_field} AS DATE)) AS VARCHAR), "
        f"CAST(max(CAST({spec.time_field} AS DATE)) AS VARCHAR) "
        f"FROM delta_scan('{naming.raw_table_uri(stack.lakehouse, spec)}')"
    ).fetchone()
    return first, last


def train_batch(stack: Any, spec: Any, visualizations: bool = True) -> tuple[str, str]:
    """Materialize the batch assets (features -> ... -> champion); (run id, champion version)."""
    import dagster as dg

    from coelho_pipelines.batch.assets import build_batch_assets
    from coelho_pipelines.resources import LakehouseResource, MlflowResource

    assets = {a.key.path[-1]: a for a in build_batch_assets(spec)}
    resources = {
        "lakehouse": LakehouseResource(uri=stack.lakehouse),
        "mlflow": MlflowResource(tracking_uri=stack.mlflow_uri),
    }
    instance = dg.DagsterInstance.ephemeral()
    first, last = _partition_range(stack, spec)
    features = dg.materialize(
        [assets["features"]],
        resources=resources,
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
    )
    assert features.success
    names = ["training_set", "batch_model", "batch_evaluation", "champion_model"]
    if visualizations:
        names.append("batch_visualizations")
    config = {"ops": {}}
    run_config = {**BATCH_RUN_CONFIG, "batch_model": model_config(spec)}
    for name in names:
        op = assets[name].op.name
        if name in run_config:
            config["ops"][op] = {"config": run_config[name]}
    result = dg.materialize(
        [assets[name] for name in names],
        resources=resources,
        instance=instance,
        run_config=config,
    )
    assert result.success
    model = result.asset_materializations_for_node(assets["batch_model"].op.name)[0]
    champion = result.asset_materializations_for_node(assets["champion_model"].op.name)[0]
    return model.metadata["run_id"].value, str(champion.metadata["version"].value)


def model_config(spec: Any) -> dict[str, Any]:
    return MODEL_CONFIG["kmeans" if spec.task == "clustering" else "catboost"]


def learn(stack: Any, spec: Any, events: int) -> str:
    """A real learner run over the use case's topic until `events` are learned; its run id."""
    from coelho_pipelines.incremental.runner import Endpoints, LearnerRun, LearnerSettings

    settings = LearnerSettings(
        until_events=events,
        idle_timeout_seconds=5.0,
        max_duration_seconds=180.0,
        snapshot_every=200,
        snapshot_interval_seconds=0.0,
        publish_every=100,
        publish_interval_seconds=0.2,
        metrics_every=100,
        consumer_group=f"serving-tests-{uuid.uuid4().hex[:8]}",
    )
    endpoints = Endpoints(
        bootstrap_servers=stack.env["KAFKA_BOOTSTRAP_SERVERS"],
        redis_url=stack.redis_url,
        mlflow_tracking_uri=stack.mlflow_uri,
    )
    summary = LearnerRun(spec, endpoints, settings).run()
    assert summary.events_learned >= events, summary
    assert summary.snapshot is not None, summary
    return summary.mlflow_run_id


def train_extra_run(stack: Any, spec: Any, iterations: int) -> str:
    """Another batch run on the same training set (logged and evaluated, not registered)."""
    from coelho_pipelines import naming
    from coelho_pipelines.batch import training_set as ts
    from coelho_pipelines.batch.evaluation import evaluate
    from coelho_pipelines.batch.training import train_and_log
    from coelho_pipelines.resources import LakehouseResource, MlflowResource

    lakehouse = LakehouseResource(uri=stack.lakehouse)
    mlflow = MlflowResource(tracking_uri=stack.mlflow_uri)
    uri = lakehouse.table_uri(naming.training_set_table_name(spec))
    splits = ts.read_splits(uri, None, {}, spec.time_field)
    params = {**model_config(spec), "iterations": iterations}
    logged = train_and_log(spec, splits, params, mlflow, None, 0, uri)
    client = mlflow.client()
    for name, value in evaluate(logged.model, splits["test"], spec.label_field).items():
        client.log_metric(logged.run_id, name, value)
    return logged.run_id
