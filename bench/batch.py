"""Batch benchmark: the training-set transform in DuckDB beside the same transform in pandas,
CatBoost fit time per 100,000 rows, and the whole `tfd_batch_training` job on 100,000 rows.

    .venv/bin/python bench/batch.py [--rows 1000000] [--job-rows 100000] [--tracking-uri URI]

The transform is raw Delta table -> features (spec SQL: struct fields, hour / day of week,
casts; one row per event id) -> date window -> newest rows -> time-ordered train / validation /
test split. DuckDB runs the production SQL (`batch.features` + `batch.training_set`); pandas
does the same steps on `DeltaTable.to_pandas()`; the two results are checked to be equal.
Starts a private MLflow server (as `coelho up` does) unless --tracking-uri is given.
Targets (issue 4): DuckDB >= 3x faster than pandas; the job on 100,000 rows < 5 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coelho_pipelines import naming  # noqa: E402
from coelho_pipelines.batch import features as feature_sql  # noqa: E402
from coelho_pipelines.batch import training_set as ts  # noqa: E402
from coelho_pipelines.lakehouse.tables import (  # noqa: E402
    PARTITION_COLUMN,
    ensure_table,
    events_to_arrow,
    raw_schema,
)
from coelho_pipelines.use_cases import get_spec  # noqa: E402
from coelho_pipelines.use_cases.spec import UTC_HOUR_SQL, UTC_WEEKDAY_SQL  # noqa: E402

START = "2026-01-01T00:00:00+00:00"
DAYS = 30
CHUNK = 100_000


def write_raw(spec, lakehouse: str, rows: int, days: int = DAYS) -> str:
    """`rows` generated events appended to the raw table in chunks (the ingestion layout)."""
    from deltalake import write_deltalake

    uri = naming.raw_table_uri(lakehouse, spec)
    table = ensure_table(uri, raw_schema(spec), [PARTITION_COLUMN])
    generator = spec.generator(seed=3, start=START, events_per_second=rows / (days * 86_400))
    offset = 0
    while offset < rows:
        n = min(CHUNK, rows - offset)
        batch = events_to_arrow(spec, generator.take(n), offsets=range(offset, offset + n))
        write_deltalake(table, batch, mode="append")
        offset += n
    return uri


# --- the transform, twice ----------------------------------------------------------------------


def duckdb_features(spec, raw_uri: str):
    """Stage A in DuckDB: the production `compute_features` over the raw Delta table."""
    con = feature_sql.connect()
    feature_sql.register_delta(con, "raw", raw_uri)
    return feature_sql.compute_features(spec, con, date(1970, 1, 1), date(9999, 12, 31))


def duckdb_split(spec, features_uri: str, selection: ts.Selection):
    """Stage B in DuckDB: the production training-set SQL over the features Delta table."""
    con = feature_sql.connect()
    feature_sql.register_delta(con, "features", features_uri)
    return ts.select_training_set(spec, con, selection)


def _pandas_feature(frame: pd.DataFrame, sql: str, kind: str) -> pd.Series:
    """The pandas reading of a spec feature expression (field, struct field, hour, dow)."""
    times = {UTC_HOUR_SQL.format(t=c): (c, "hour") for c in frame.columns}
    times |= {UTC_WEEKDAY_SQL.format(t=c): (c, "dayofweek") for c in frame.columns}
    if sql in times:
        column, part = times[sql]
        values = getattr(frame[column].dt, part)
    elif "." in sql:
        column, field = sql.split(".", 1)
        values = frame[column].str.get(field)
    else:
        values = frame[sql]
    if kind == "numeric":
        return values.astype("float64")
    if values.dtype == bool:
        return pd.Series(np.where(values, "true", "false"), index=frame.index)
    return values.astype(object)


def pandas_features(spec, raw_uri: str) -> pd.DataFrame:
    """Stage A in pandas: the same columns from `DeltaTable.to_pandas()` (ids are unique, as
    DuckDB's duplicate probe finds, so no dedupe either)."""
    from deltalake import DeltaTable

    raw = DeltaTable(raw_uri).to_pandas()
    out = raw[[spec.id_field, spec.time_field, spec.label_field]].copy()
    for feature in spec.features:
        out[feature.name] = _pandas_feature(raw, feature.sql, feature.kind)
    out[PARTITION_COLUMN] = raw[PARTITION_COLUMN]
    return out


def pandas_split(spec, features_uri: str, selection: ts.Selection) -> pd.DataFrame:
    """Stage B in pandas: window, newest rows, time-ordered split."""
    from deltalake import DeltaTable

    frame = DeltaTable(features_uri).to_pandas()
    if selection.start or selection.end:
        days = pd.to_datetime(frame[PARTITION_COLUMN]).dt.date
        keep = (days >= (selection.start or date.min)) & (days <= (selection.end or date.max))
        frame = frame[keep]
    newest = frame.sort_values([spec.time_field, spec.id_field], ascending=False)
    if selection.max_rows:
        newest = newest.head(selection.max_rows)
    ordered = newest.iloc[::-1].reset_index(drop=True)
    n = len(ordered)
    position = np.arange(1, n + 1)
    train_end = np.floor(n * selection.train_fraction)
    validation_end = np.floor(n * (selection.train_fraction + selection.validation_fraction))
    ordered["split"] = np.where(
        position <= train_end, "train", np.where(position <= validation_end, "validation", "test")
    )
    return ordered


def check_same_features(spec, duck, frame: pd.DataFrame) -> None:
    """Both engines produced the same feature values for the same events."""
    a = duck.to_pandas().sort_values(spec.id_field, ignore_index=True)
    b = frame.sort_values(spec.id_field, ignore_index=True)
    for name in spec.feature_names:
        left, right = a[name], b[name]
        if left.dtype.kind == "f":
            assert np.allclose(left, right.astype(float), equal_nan=True), name
        else:
            assert (left.fillna("") == right.fillna("").astype(str)).all(), name


def best_of(repeats: int, function, *args):
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - started)
    return best, result


# --- CatBoost and the whole job -----------------------------------------------------------------


def catboost_fit(spec, features_uri: str, rows: int) -> dict:
    from coelho_pipelines.models import batch_model
    from coelho_pipelines.models.encoding import FeatureLayout
    from coelho_pipelines.use_cases.model_factories import CATBOOST_DEFAULTS

    frame = duckdb_split(spec, features_uri, ts.Selection(max_rows=rows)).to_pandas()
    splits = {s: frame[frame["split"] == s] for s in ts.SPLITS}
    started = time.perf_counter()
    trained = batch_model.train(
        spec.task, spec.key, FeatureLayout.of(spec.features), splits["train"],
        splits["validation"], spec.label_field, dict(CATBOOST_DEFAULTS),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    return {"rows": len(frame), "train_rows": len(splits["train"]), "seconds": seconds,
            "trees": trained.info["tree_count"]}  # fmt: skip


@contextlib.contextmanager
def mlflow_server(tracking_uri: str | None) -> Iterator[str]:
    if tracking_uri:
        yield tracking_uri
        return
    from coelho.platform.ephemeral import temporary_platform

    with temporary_platform("mlflow") as platform:
        yield f"http://127.0.0.1:{platform.ports['mlflow']}"


def whole_job(spec, rows: int, tracking_uri: str, workdir: Path) -> dict:
    import dagster as dg

    from coelho_pipelines.batch.defs import build_batch_defs
    from coelho_pipelines.resources import LakehouseResource, MlflowResource

    lakehouse = str(workdir / "job-lakehouse")
    days = 10
    write_raw(spec, lakehouse, rows, days)
    resources = {"lakehouse": LakehouseResource(uri=lakehouse),
                 "mlflow": MlflowResource(tracking_uri=tracking_uri)}  # fmt: skip
    defs = dg.Definitions.merge(build_batch_defs(spec), dg.Definitions(resources=resources))
    features = defs.get_assets_def(dg.AssetKey([spec.key, "features"]))
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        dg.materialize(
            [features], instance=instance, resources=resources,
            tags={"dagster/asset_partition_range_start": "2026-01-01",
                  "dagster/asset_partition_range_end": f"2026-01-{days:02d}"},
        )  # fmt: skip
        features_seconds = time.perf_counter() - started
        job = defs.resolve_job_def(naming.training_job_name(spec))
        started = time.perf_counter()
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        job_seconds = time.perf_counter() - started
        steps = {}
        for record in instance.all_logs(result.run_id):
            event = record.dagster_event
            if event and event.event_type_value in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):
                steps.setdefault(record.step_key, []).append(record.timestamp)
    return {"rows": rows, "features_backfill_seconds": features_seconds,
            "job_seconds": job_seconds, "success": result.success,
            "steps": {k: v[-1] - v[0] for k, v in steps.items()}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fit-rows", type=int, default=100_000)
    parser.add_argument("--job-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--workdir", default=None, help="keep the generated tables here")
    parser.add_argument("--skip-job", action="store_true", help="only the transform and fit")
    args = parser.parse_args()
    spec = get_spec("tfd")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="coelho-bench-batch-"))
    try:
        run(args, spec, workdir)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, spec, workdir: Path) -> None:
    lakehouse = str(workdir / "lakehouse")
    raw_uri = naming.raw_table_uri(lakehouse, spec)
    if not feature_sql.table_exists(raw_uri):
        started = time.perf_counter()
        write_raw(spec, lakehouse, args.rows)
        print(f"generated {args.rows:,} raw events in {time.perf_counter() - started:.1f} s")

    features_uri = naming.table_uri(lakehouse, naming.features_table_name(spec))
    selection = ts.Selection(max_rows=args.rows)
    duck_a, duck_features = best_of(args.repeats, duckdb_features, spec, raw_uri)
    pandas_a, pandas_features_frame = best_of(args.repeats, pandas_features, spec, raw_uri)
    check_same_features(spec, duck_features, pandas_features_frame)
    if not feature_sql.table_exists(features_uri):
        day = date(2026, 1, 1)
        feature_sql.write_features(spec, features_uri, duck_features, day, date(2026, 12, 31))
    duck_b, duck = best_of(args.repeats, duckdb_split, spec, features_uri, selection)
    pandas_b, pdf = best_of(args.repeats, pandas_split, spec, features_uri, selection)
    duck_df = duck.to_pandas()
    for split in ts.SPLITS:
        a = set(duck_df.loc[duck_df["split"] == split, spec.id_field])
        b = set(pdf.loc[pdf["split"] == split, spec.id_field])
        assert a == b, f"DuckDB and pandas disagree on the {split} split"
    n = f"{duck.num_rows:,}"
    print(f"best of {args.repeats}, same results from both engines:")
    print(f"  features (raw Delta -> typed features) on {n} rows: DuckDB {duck_a:.2f} s, "
          f"pandas {pandas_a:.2f} s -> {pandas_a / duck_a:.1f}x")  # fmt: skip
    print(f"  training-set split (features Delta -> train/validation/test): DuckDB {duck_b:.2f} s"
          f", pandas {pandas_b:.2f} s -> {pandas_b / duck_b:.1f}x")  # fmt: skip
    total_duck, total_pandas = duck_a + duck_b, pandas_a + pandas_b
    print(f"  whole training-set transform: DuckDB {total_duck:.2f} s, pandas "
          f"{total_pandas:.2f} s -> DuckDB {total_pandas / total_duck:.1f}x faster "
          "(target >= 3x)")  # fmt: skip

    fit = catboost_fit(spec, features_uri, args.fit_rows)
    per_100k = fit["seconds"] * 100_000 / fit["train_rows"]
    print(f"CatBoost fit (defaults: 1000 iterations max, early stopping 50): {fit['seconds']:.1f} s"
          f" on {fit['train_rows']:,} train rows ({fit['trees']} trees) -> "
          f"{per_100k:.1f} s per 100,000 train rows")  # fmt: skip

    if args.skip_job:
        return
    with mlflow_server(args.tracking_uri) as tracking_uri:
        job = whole_job(spec, args.job_rows, tracking_uri, workdir)
    steps = ", ".join(f"{k.split('__', 1)[-1]} {v:.1f}s" for k, v in job["steps"].items())
    print(f"{naming.training_job_name(spec)} on {job['rows']:,} events: {job['job_seconds']:.1f} s "
          f"(success={job['success']}; target < 300 s); features backfill of 10 days in one run "
          f"{job['features_backfill_seconds']:.1f} s")  # fmt: skip
    print(f"  steps: {steps}")


if __name__ == "__main__":
    main()
