"""`<uc>/online_vs_batch`: the live model and the batch champion scored on the same rows.

The asset loads the live model's latest MLflow snapshot and the registry's `champion`, takes
the newest rows of the raw Delta table that neither has learned from (Kafka offset at or past
the snapshot's next offset of its partition, and event time after the champion's training
set: see `comparison`), scores both on exactly those rows and measures them with the use
case's batch metrics (primary first). The table and the plot go into the asset's metadata and
into an MLflow run of the use case's experiment tagged `coelho.paradigm=comparison`, which the
API serves at `GET /api/v1/batch/<uc>/comparison`.

No live snapshot, no champion, or too few unseen rows is not a failure: the run succeeds
without materializing and says why (log and an asset observation `skipped`); an unreadable
snapshot fails the run.

Freshness: its own automation condition (every 30 minutes once its upstreams exist), evaluated
by its own sensor `<uc>_online_vs_batch_automation` (on by default), so it never depends on
how other assets are automated.
"""

import base64
import warnings
from typing import Any

import dagster as dg
from pydantic import Field

from coelho_pipelines import naming
from coelho_pipelines.batch.lineage import CHAMPION_MODEL, asset_key
from coelho_pipelines.incremental.job import incremental_model_key
from coelho_pipelines.ingestion.keys import raw_events_key
from coelho_pipelines.naming import ONLINE_VS_BATCH, online_vs_batch_sensor_name
from coelho_pipelines.resources import LakehouseResource, MlflowResource
from coelho_pipelines.use_cases.spec import UseCaseSpec

REFRESH_CRON = "*/30 * * * *"


class ComparisonConfig(dg.Config):
    """How many of the newest unseen raw rows to compare on."""

    max_rows: int = Field(5000, gt=0, description="Compare on at most the newest N rows.")
    min_rows: int = Field(50, gt=0, description="Skip when fewer rows are new to both models.")


def refresh_condition() -> dg.AutomationCondition:
    """Every `REFRESH_CRON` tick, once every upstream exists, never twice at a time."""
    return (
        dg.AutomationCondition.cron_tick_passed(REFRESH_CRON, "UTC").since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(f"every tick of '{REFRESH_CRON}' (UTC) once its upstreams exist")


def _md_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] if rows else []
    for row in rows:
        cells = [f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _png_markdown(title: str, png: bytes) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f"![{title}](data:image/png;base64,{encoded})"


def _metadata(comparison: Any, run_id: str, run_url: str, png: bytes) -> dict[str, Any]:
    document = comparison.document()
    window = document["window"]
    rows = [
        {"metric": row["metric"] + (" (primary)" if row["primary"] else ""),
         "live": "n/a" if row["live"] is None else row["live"],
         "batch": "n/a" if row["batch"] is None else row["batch"]}
        for row in document["metrics"]
    ]  # fmt: skip
    metadata: dict[str, Any] = {
        "comparison": dg.MetadataValue.md(_md_table(rows)),
        "plot": dg.MetadataValue.md(_png_markdown("online vs batch", png)),
        "leader": str(document["leader"]),
        "window_rows": window["rows"],
        "eligible_rows": window["eligible_rows"],
        "first_event_time": str(window["first_event_time"]),
        "last_event_time": str(window["last_event_time"]),
        "live_snapshot_events_learned": document["live"]["events_learned"],
        "live_mlflow_run_id": document["live"]["mlflow_run_id"],
        "champion_version": document["batch"]["version"],
        "champion_trained_through": document["batch"]["trained_through"],
        "run_id": run_id,
        "run_url": dg.MetadataValue.url(run_url),
    }
    for row in document["metrics"]:
        for model in ("live", "batch"):
            if row[model] is not None:
                metadata[f"{model}_{row['metric']}"] = dg.MetadataValue.float(row[model])
    for name, value in document["agreement"].items():
        if value is not None:
            metadata[name] = dg.MetadataValue.float(value)
    return metadata


def build_online_vs_batch_asset(spec: UseCaseSpec) -> dg.AssetsDefinition:
    key = asset_key(spec, ONLINE_VS_BATCH)

    @dg.asset(
        key=key,
        deps=[raw_events_key(spec), incremental_model_key(spec), asset_key(spec, CHAMPION_MODEL)],
        group_name=spec.key,
        kinds={"duckdb", "mlflow", "matplotlib"},
        output_required=False,
        automation_condition=refresh_condition(),
        description=f"Live {spec.river_model_name} (latest snapshot) vs batch "
        f"{spec.batch_model_name} (champion) on the newest raw rows neither learned from, by "
        f"{spec.batch_primary.name} and the main metrics; logged to MLflow as a comparison run.",
    )
    def online_vs_batch(
        context: dg.AssetExecutionContext,
        config: ComparisonConfig,
        lakehouse: LakehouseResource,
        mlflow: MlflowResource,
    ):
        from coelho_pipelines.batch import comparison as cmp
        from coelho_pipelines.incremental.snapshot import SnapshotError

        try:
            result = cmp.compare(
                spec, mlflow.tracking_uri, lakehouse.table_uri(naming.raw_table_name(spec)),
                lakehouse.storage_options, config.max_rows, config.min_rows,
            )  # fmt: skip
        except cmp.NotComparable as reason:
            context.log.warning(f"{key.to_user_string()} skipped: {reason}")
            context.log_event(dg.AssetObservation(asset_key=key, metadata={"skipped": str(reason)}))
            return
        except SnapshotError as error:
            message = f"the live model's snapshot is unreadable: {error}"
            raise dg.Failure(description=message) from error
        png = cmp.render_plot(result)
        run_id = cmp.log_comparison(mlflow.tracking_uri, result, png, context.run.run_id)
        experiment_id = mlflow.experiment_id(spec.experiment)
        context.log.info(
            f"{spec.key}: leader {result.leader} on {result.window.rows} rows; MLflow run {run_id}"
        )
        yield dg.MaterializeResult(
            metadata=_metadata(result, run_id, mlflow.run_url(experiment_id, run_id), png)
        )

    return online_vs_batch


def build_online_vs_batch_defs(spec: UseCaseSpec) -> dg.Definitions:
    """The asset and the sensor that keeps it fresh (on by default: a run is cheap, writes only
    its own MLflow run, and is requested only once its upstreams exist)."""
    asset = build_online_vs_batch_asset(spec)
    with warnings.catch_warnings():  # Dagster passes its beta `owners` parameter itself
        warnings.simplefilter("ignore", dg.BetaWarning)
        sensor = dg.AutomationConditionSensorDefinition(
            online_vs_batch_sensor_name(spec),
            target=dg.AssetSelection.assets(asset.key),
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=f"Refreshes {asset.key.to_user_string()} by its automation condition.",
        )
    return dg.Definitions(assets=[asset], sensors=[sensor])
