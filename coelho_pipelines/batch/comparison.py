"""Online vs batch: the live model's latest snapshot and the batch champion scored on the same
newest rows of the raw Delta table, with the use case's batch metrics.

The window (no leakage): rows of the raw table that neither model learned from,
- not learned by the live snapshot: its `Progress.offsets` hold the next Kafka offset per
  partition, so a row counts only if `kafka_offset >= offsets[kafka_partition]` (a partition
  the snapshot never read counts from offset 0);
- after the champion's training set: event time strictly after the last event of the training
  set its run was fit on (train, validation and test: the test split chose the champion), read
  from the run's `<split>_to` params;
and of those the newest `max_rows` by event time (ties by id). Both models score exactly these
rows: the live bundle through `LiveModel.predict(event)` (what the API serves, decision included)
and the champion through `registry.predict_frame` (its own encoding and threshold).

Metrics are the batch metrics (`evaluation`), computed for both from the same labels. For
clustering, which has no label, both assignments are scored by silhouette on one model-free
encoding of the window's features (z-scored numerics, one-hot categoricals), and their agreement
by the adjusted Rand index; nothing depends on how either model clusters.

Each comparison is one MLflow run in the use case's experiment tagged
`coelho.paradigm=comparison`, holding the metrics (`live_<m>`, `batch_<m>`), `comparison.json`
(the whole result, what the API returns) and the plot. No Dagster import: the API reads it.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from coelho_pipelines.naming import (
    MLFLOW_DAGSTER_RUN_TAG,
    MLFLOW_PARADIGM_TAG,
    MLFLOW_USE_CASE_TAG,
    incremental_job_name,
    training_job_name,
)
from coelho_pipelines.use_cases.spec import CLASS_KEY, UseCaseSpec

PARADIGM = "comparison"
COMPARISON_TAG = "coelho.comparison"
COMPARISON_NAME = "online_vs_batch"
RESULT_ARTIFACT = "comparison.json"
PLOT_ARTIFACT = "online_vs_batch.png"
SPLIT_END_PARAMS = ("train_to", "validation_to", "test_to")
SILHOUETTE_SAMPLE = 5000
MODELS = ("live", "batch")

# The metrics shown in the table and plot (all batch metrics are computed and logged).
MAIN_METRICS = {
    "classification": ("fbeta", "roc_auc", "average_precision", "precision", "recall",
                       "accuracy"),
    "regression": ("mae", "rmse", "median_absolute_error", "r2"),
    "clustering": ("silhouette", "n_clusters"),
}  # fmt: skip


class NotComparable(Exception):
    """A comparison cannot be made now, for a reason that is not a fault (no model yet, no
    unseen rows): the asset skips with this message."""


# --- the two models --------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveSide:
    """The live model's latest snapshot and what it has learned."""

    bundle: Any  # learner.LiveModel
    run_id: str
    events_learned: int
    offsets: dict[int, int]
    written_at: str
    model_version: int


@dataclass(frozen=True)
class BatchSide:
    """The batch champion and the end of the data it was trained on."""

    model: Any  # CoelhoBatchModel
    version: str
    run_id: str
    trained_through: datetime


def load_live(tracking_uri: str, spec: UseCaseSpec) -> LiveSide:
    """The latest snapshot with its exact Kafka offsets (NotComparable if there is none; an
    unreadable one raises `SnapshotError`: that is a fault, not a reason to skip)."""
    from coelho_pipelines.incremental.snapshot import SnapshotStore

    loaded = SnapshotStore(tracking_uri, spec).load_latest(bundle_only=False)
    if loaded is None:
        raise NotComparable(
            f"no live model snapshot for {spec.key} yet: run {incremental_job_name(spec)}"
        )
    info = loaded.info
    if loaded.progress is None or (info.events_learned and not info.offsets):
        raise NotComparable("the live snapshot does not say which Kafka offsets it learned")
    return LiveSide(
        loaded.bundle, loaded.run_id, info.events_learned, dict(info.offsets), info.written_at,
        info.model_version,
    )  # fmt: skip


def load_batch(tracking_uri: str, spec: UseCaseSpec) -> BatchSide:
    """The registry's champion and its training window's end (NotComparable if none)."""
    from coelho_pipelines.batch import registry

    champion = registry.load_champion(tracking_uri, spec)
    if champion is None:
        raise NotComparable(
            f"no batch champion ({spec.registered_model}@{registry.CHAMPION_ALIAS}) yet: "
            f"run {training_job_name(spec)}"
        )
    params = registry.client(tracking_uri).get_run(champion.run_id).data.params
    ends = [_parse_time(params[name]) for name in SPLIT_END_PARAMS if params.get(name)]
    if not ends:
        raise NotComparable(
            f"the champion's run {champion.run_id} does not record its training window "
            f"({', '.join(SPLIT_END_PARAMS)})"
        )
    return BatchSide(champion.model, champion.version, champion.run_id, max(ends))


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- the window ------------------------------------------------------------------------------


@dataclass
class Window:
    """The compared rows (as events, in time order) and how they were chosen."""

    events: list[dict[str, Any]]
    eligible_rows: int
    raw_rows: int
    first_event_time: str | None
    last_event_time: str | None

    @property
    def rows(self) -> int:
        return len(self.events)


def window_sql(spec: UseCaseSpec, offsets: Mapping[int, int], source: str = "raw") -> str:
    """Rows of `source` unseen by both models ($cutoff: the champion's last training event),
    with `_eligible`, the count before the `$max_rows` limit; newest first."""
    from coelho_pipelines.batch.features import quote

    time, key = quote(spec.time_field), quote(spec.id_field)
    learned = ", ".join(f"({int(p)}, {int(o)})" for p, o in sorted(offsets.items()))
    join, start = "", "0"
    if learned:
        join = (
            f"LEFT JOIN (VALUES {learned}) AS learned(partition_id, next_offset) "
            "ON r.kafka_partition = learned.partition_id"
        )
        start = "coalesce(learned.next_offset, 0)"
    return f"""
SELECT r.*, count(*) OVER () AS _eligible
FROM {source} AS r {join}
WHERE r.kafka_offset >= {start}
  AND r.{time} > $cutoff
  AND r.event_date >= CAST($cutoff AS DATE)
ORDER BY r.{time} DESC, r.{key} DESC
LIMIT $max_rows
"""


def select_window(
    spec: UseCaseSpec,
    raw_uri: str,
    storage_options: Mapping[str, str] | None,
    offsets: Mapping[int, int],
    cutoff: datetime,
    max_rows: int,
) -> Window:
    """The newest `max_rows` raw rows neither model learned from, as decoded events."""
    from coelho_pipelines.batch import features as feature_sql

    if not feature_sql.table_exists(raw_uri, storage_options):
        raise NotComparable(f"no raw table at {raw_uri}: run {spec.key}_ingestion first")
    con = feature_sql.connect()
    feature_sql.register_delta(con, "raw", raw_uri, storage_options)
    raw_rows = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    table = con.execute(
        window_sql(spec, offsets), {"cutoff": cutoff, "max_rows": int(max_rows)}
    ).to_arrow_table()
    eligible = table.column("_eligible")[0].as_py() if table.num_rows else 0
    names = [f.name for f in spec.fields]
    events = [_json_ready(row) for row in reversed(table.select(names).to_pylist())]
    first, last = (
        (events[0][spec.time_field], events[-1][spec.time_field]) if events else (None, None)
    )
    return Window(events, int(eligible), int(raw_rows), first, last)


def _json_ready(value: Any) -> Any:
    """A raw row as the decoded Kafka JSON event it was ingested from (times as ISO text)."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- scoring ---------------------------------------------------------------------------------


@dataclass
class Scores:
    """Both models' outputs on the same events: `prediction` (decision, value or cluster) and,
    for classification, the positive-class `probability`."""

    ids: list[Any]
    labels: list[Any] | None
    prediction: dict[str, list[Any]] = field(default_factory=dict)
    probability: dict[str, list[float]] = field(default_factory=dict)


def live_output_key(spec: UseCaseSpec) -> str:
    """The live model's answer key holding its prediction (the spec's API response key)."""
    return spec.prediction_key


def score(spec: UseCaseSpec, live: LiveSide, batch: BatchSide, events: Sequence[dict]) -> Scores:
    """Every event through both models (the live one without learning from it)."""
    from coelho_pipelines.batch import registry

    scores = Scores(
        ids=[event[spec.id_field] for event in events],
        labels=None if spec.label_field is None else [spec.label(event) for event in events],
    )
    answers = [live.bundle.predict(event) for event in events]
    frame = registry.predict_frame(batch.model, spec, events) if events else None
    key = live_output_key(spec)
    if spec.task == "classification":
        scores.probability["live"] = [float(a[key]) for a in answers]
        scores.prediction["live"] = [int(a[CLASS_KEY]) for a in answers]
        scores.probability["batch"] = [] if frame is None else frame["probability"].tolist()
    else:
        cast = float if spec.task == "regression" else int
        scores.prediction["live"] = [cast(a[key]) for a in answers]
    scores.prediction["batch"] = [] if frame is None else frame["prediction"].tolist()
    return scores


# --- metrics ---------------------------------------------------------------------------------


def feature_matrix(spec: UseCaseSpec, events: Sequence[Mapping[str, Any]]) -> Any:
    """A model-free encoding of the events' features for distances: numerics z-scored over the
    window (missing -> mean), categoricals one-hot (missing is its own value)."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame([spec.extract_features(event) for event in events])
    parts = []
    for name in spec.numeric_features:
        values = pd.to_numeric(frame[name], errors="coerce").astype(float)
        values = values.fillna(values.mean() if values.notna().any() else 0.0)
        std = values.std(ddof=0)
        parts.append(((values - values.mean()) / (std if std > 0 else 1.0)).to_numpy()[:, None])
    for name in spec.categorical_features:
        values = frame[name].astype(object).where(frame[name].notna(), "<null>").astype(str)
        parts.append(pd.get_dummies(values).to_numpy(dtype=float))
    return np.hstack(parts) if parts else np.zeros((len(frame), 0))


def silhouette(matrix: Any, labels: Sequence[int], seed: int = 42) -> float:
    """scikit-learn's silhouette (on a sample), NaN when it is undefined."""
    from sklearn.metrics import silhouette_score

    distinct = len(set(labels))
    if not 1 < distinct < len(labels):
        return float("nan")
    size = min(SILHOUETTE_SAMPLE, len(labels))
    return float(silhouette_score(matrix, list(labels), sample_size=size, random_state=seed))


def model_metrics(spec: UseCaseSpec, scores: Scores, events: Sequence[dict]) -> dict[str, dict]:
    """Per model ("live", "batch"): every batch metric of the task on the window."""
    from coelho_pipelines.batch import evaluation

    if spec.task == "classification":
        return {
            model: evaluation.classification_metrics(
                scores.labels, scores.probability[model], y_pred=scores.prediction[model]
            )
            for model in MODELS
        }
    if spec.task == "regression":
        return {
            model: evaluation.regression_metrics(scores.labels, scores.prediction[model])
            for model in MODELS
        }
    matrix = feature_matrix(spec, events)
    return {
        model: {
            "silhouette": silhouette(matrix, scores.prediction[model]),
            "n_clusters": float(len(set(scores.prediction[model]))),
        }
        for model in MODELS
    }


def agreement(spec: UseCaseSpec, scores: Scores) -> dict[str, float]:
    """How much the two models agree: adjusted Rand index of the clusterings, the share of
    equal decisions for classification, none for regression."""
    if spec.task == "clustering":
        from sklearn.metrics import adjusted_rand_score

        live, batch = scores.prediction["live"], scores.prediction["batch"]
        return {"adjusted_rand_index": float(adjusted_rand_score(live, batch))}
    if spec.task == "classification":
        pairs = zip(scores.prediction["live"], scores.prediction["batch"], strict=True)
        same = sum(int(a) == int(b) for a, b in pairs)
        return {"decision_agreement": same / max(1, len(scores.ids))}
    return {}


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def leader(spec: UseCaseSpec, live: float | None, batch: float | None) -> str | None:
    """Which model is better by the batch primary metric ("tie" when equal, None if unknown)."""
    if live is None or batch is None:
        return None
    if live == batch:
        return "tie"
    return "live" if spec.batch_primary.better(live, batch) else "batch"


def metric_rows(spec: UseCaseSpec, values: Mapping[str, Mapping[str, float]]) -> list[dict]:
    """The comparison table: primary metric first, then the task's main metrics."""
    primary = spec.batch_primary.name
    names = [primary, *(m for m in MAIN_METRICS[spec.task] if m != primary)]
    rows = []
    for name in names:
        live, batch = (_finite(values[m].get(name, float("nan"))) for m in MODELS)
        row = {"metric": name, "live": live, "batch": batch, "primary": name == primary}
        if name == primary:
            row["better"] = leader(spec, live, batch)
        rows.append(row)
    return rows


# --- the result ------------------------------------------------------------------------------


@dataclass
class Comparison:
    """One comparison: what was compared, on which rows, and the numbers."""

    spec: UseCaseSpec
    live: LiveSide
    batch: BatchSide
    window: Window
    scores: Scores
    metrics: dict[str, dict[str, float]]
    agreement: dict[str, float]
    compared_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def table(self) -> list[dict[str, Any]]:
        return metric_rows(self.spec, self.metrics)

    @property
    def leader(self) -> str | None:
        primary = self.spec.batch_primary.name
        return leader(self.spec, *(_finite(self.metrics[m][primary]) for m in MODELS))

    def document(self) -> dict[str, Any]:
        """The JSON stored with the MLflow run and returned by the API."""
        spec = self.spec
        return {
            "use_case": spec.key,
            "task": spec.task,
            "compared_at": self.compared_at,
            "primary_metric": {
                "name": spec.batch_primary.name,
                "direction": spec.batch_primary.direction,
            },
            "leader": self.leader,
            "window": {
                "rows": self.window.rows,
                "eligible_rows": self.window.eligible_rows,
                "raw_rows": self.window.raw_rows,
                "first_event_time": self.window.first_event_time,
                "last_event_time": self.window.last_event_time,
                "rule": "newest raw rows with a Kafka offset at or past the live snapshot's "
                "next offset of their partition and an event time after the champion's "
                "training set",
            },
            "live": {
                "model": spec.river_model_name,
                "source": "snapshot",
                "mlflow_run_id": self.live.run_id,
                "events_learned": self.live.events_learned,
                "model_version": self.live.model_version,
                "snapshot_written_at": self.live.written_at,
                "offsets": {str(p): o for p, o in sorted(self.live.offsets.items())},
            },
            "batch": {
                "model": spec.batch_model_name,
                "source": "champion",
                "version": self.batch.version,
                "mlflow_run_id": self.batch.run_id,
                "trained_through": self.batch.trained_through.isoformat(),
            },
            "metrics": self.table,
            "all_metrics": {
                model: {name: _finite(value) for name, value in self.metrics[model].items()}
                for model in MODELS
            },
            "agreement": {name: _finite(value) for name, value in self.agreement.items()},
        }


def compare(
    spec: UseCaseSpec,
    tracking_uri: str,
    raw_uri: str,
    storage_options: Mapping[str, str] | None = None,
    max_rows: int = 5000,
    min_rows: int = 50,
) -> Comparison:
    """Load both models, select the window, score and measure (NotComparable: skip)."""
    live = load_live(tracking_uri, spec)
    batch = load_batch(tracking_uri, spec)
    window = select_window(
        spec, raw_uri, storage_options, live.offsets, batch.trained_through, max_rows
    )
    if window.rows < min_rows:
        raise NotComparable(
            f"only {window.rows} raw rows are new to both models (need {min_rows}): the live "
            f"snapshot has learned up to offsets {live.offsets} and the champion v"
            f"{batch.version} was trained on events up to {batch.trained_through.isoformat()}; "
            "ingest newer events (or wait for them)"
        )
    scores = score(spec, live, batch, window.events)
    if spec.task == "classification" and len(set(scores.labels or [])) < 2:
        raise NotComparable(f"the {window.rows} rows of the window hold a single class")
    values = model_metrics(spec, scores, window.events)
    return Comparison(spec, live, batch, window, scores, values, agreement(spec, scores))


# --- plot ------------------------------------------------------------------------------------


def render_plot(comparison: Comparison) -> bytes:
    """Two panels: the main metrics side by side, and the task's picture of both models on the
    window (ROC curves, predicted vs actual, or the cluster contingency)."""
    from coelho_pipelines.plots.common import figure, png_bytes

    spec, scores = comparison.spec, comparison.scores
    fig = figure(11.0, 4.5)
    bars, detail = fig.subplots(1, 2)
    _metric_bars(bars, comparison)
    if spec.task == "classification":
        _roc_curves(detail, scores)
    elif spec.task == "regression":
        _predicted_vs_actual(detail, scores)
    else:
        _contingency(fig, detail, scores, comparison.agreement)
    fig.suptitle(
        f"{spec.key}: live {spec.river_model_name} vs batch {spec.batch_model_name} "
        f"(champion v{comparison.batch.version}) on {comparison.window.rows} unseen rows"
    )
    return png_bytes(fig)


def _metric_bars(ax: Any, comparison: Comparison) -> None:
    import numpy as np

    rows = [row for row in comparison.table if row["metric"] != "n_clusters"]
    x = np.arange(len(rows))
    for offset, model in ((-0.2, "live"), (0.2, "batch")):
        values = [row[model] if row[model] is not None else 0.0 for row in rows]
        ax.bar(x + offset, values, width=0.4, label=model)
    ax.set_xticks(x, [row["metric"] for row in rows], rotation=30, ha="right")
    ax.set_title("metrics on the same rows")
    ax.legend()


def _roc_curves(ax: Any, scores: Scores) -> None:
    from sklearn.metrics import roc_auc_score, roc_curve

    for model in MODELS:
        fpr, tpr, _ = roc_curve(scores.labels, scores.probability[model])
        auc = roc_auc_score(scores.labels, scores.probability[model])
        ax.plot(fpr, tpr, label=f"{model} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC")
    ax.legend()


def _predicted_vs_actual(ax: Any, scores: Scores) -> None:
    labels = scores.labels or []
    for model in MODELS:
        ax.scatter(labels, scores.prediction[model], s=6, alpha=0.5, label=model)
    low, high = min(labels, default=0), max(labels, default=1)
    ax.plot([low, high], [low, high], linestyle="--", color="grey")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title("predicted vs actual")
    ax.legend()


def _contingency(fig: Any, ax: Any, scores: Scores, agreement_values: Mapping) -> None:
    import pandas as pd

    table = pd.crosstab(
        pd.Series(scores.prediction["live"], name="live"),
        pd.Series(scores.prediction["batch"], name="batch"),
    )
    image = ax.imshow(table.to_numpy(), cmap="viridis", aspect="auto")
    ax.set_yticks(range(len(table.index)), [str(v) for v in table.index])
    ax.set_xticks(range(len(table.columns)), [str(v) for v in table.columns])
    ax.set_ylabel("live cluster")
    ax.set_xlabel("batch cluster")
    ari = agreement_values.get("adjusted_rand_index", float("nan"))
    ax.set_title(f"rows per (live, batch) cluster; ARI {ari:.3f}")
    fig.colorbar(image, ax=ax)


# --- MLflow ----------------------------------------------------------------------------------


def log_comparison(
    tracking_uri: str, comparison: Comparison, png: bytes, dagster_run_id: str | None = None
) -> str:
    """One MLflow run (tagged as a comparison) with metrics, params, the JSON and the plot."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    spec = comparison.spec
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(spec.experiment)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(spec.experiment)
    )
    tags = {
        MLFLOW_PARADIGM_TAG: PARADIGM,
        MLFLOW_USE_CASE_TAG: spec.key,
        COMPARISON_TAG: COMPARISON_NAME,
    }
    if dagster_run_id:
        tags[MLFLOW_DAGSTER_RUN_TAG] = dagster_run_id
    run = client.create_run(experiment_id, run_name=COMPARISON_NAME, tags=tags)
    run_id = run.info.run_id
    document = comparison.document()
    now = int(datetime.now(UTC).timestamp() * 1000)
    metrics = [
        Metric(f"{model}_{name}", value, now, 0)
        for model, values in document["all_metrics"].items()
        for name, value in values.items()
        if value is not None
    ]
    metrics += [Metric(n, v, now, 0) for n, v in document["agreement"].items() if v is not None]
    metrics.append(Metric("window_rows", float(comparison.window.rows), now, 0))
    params = {
        "live_run_id": comparison.live.run_id,
        "live_events_learned": comparison.live.events_learned,
        "live_offsets": json.dumps(document["live"]["offsets"]),
        "champion_version": comparison.batch.version,
        "champion_run_id": comparison.batch.run_id,
        "champion_trained_through": document["batch"]["trained_through"],
        "window_first_event_time": comparison.window.first_event_time,
        "window_last_event_time": comparison.window.last_event_time,
        "leader": comparison.leader,
    }
    client.log_batch(
        run_id,
        metrics=metrics,
        params=[Param(k, str(v)) for k, v in params.items()],
        tags=[RunTag("coelho.leader", str(comparison.leader))],
    )
    client.log_dict(run_id, document, RESULT_ARTIFACT)
    with tempfile.TemporaryDirectory(prefix="coelho-comparison-") as tmp:
        path = Path(tmp) / PLOT_ARTIFACT
        path.write_bytes(png)
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id)
    return run_id


def latest_comparison(tracking_uri: str, spec: UseCaseSpec) -> dict[str, Any] | None:
    """The newest finished comparison of the use case (its JSON plus `run_id`), or None."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(spec.experiment)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=(
            f"tags.`{MLFLOW_PARADIGM_TAG}` = '{PARADIGM}' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    run_id = runs[0].info.run_id
    with tempfile.TemporaryDirectory(prefix="coelho-comparison-") as tmp:
        local = client.download_artifacts(run_id, RESULT_ARTIFACT, tmp)
        document = json.loads(Path(local).read_text())
    return {**document, "run_id": run_id, "plot_artifact": PLOT_ARTIFACT}
