"""Whether a use case's recent data suffice for a sound training, and the run that trains.

The sensors that start batch training on their own (`<uc>_first_training`, drift retraining)
ask `assess` first. It splits the recent raw events (today's and yesterday's `event_date`)
exactly as `<uc>/training_set` would (the same time-ordered SQL with the default selection)
and counts rows and, for classification, positives per split: one aggregate over the id,
time, date and label columns of the raw Delta table, nothing written. The run it leads to,
`<uc>_features_and_training` over those days, builds the feature partitions the training
reads, so a training started this way never fails for lack of features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg

from coelho_pipelines.batch import features as feature_sql
from coelho_pipelines.batch import training_set as ts
from coelho_pipelines.batch.lineage import batch_tags
from coelho_pipelines.keeper import ACTIVE_STATUSES
from coelho_pipelines.naming import raw_table_name
from coelho_pipelines.resources import LakehouseResource
from coelho_pipelines.use_cases.spec import UseCaseSpec

# A sound split: enough rows in each split to fit, stop early and report, and (classification)
# enough positives in each. tfd at 10 events/s and 1% fraud makes ~6 frauds a minute, so its
# 40 frauds (25/6/6 after the 70/15/15 split) take ~7 minutes of data.
MIN_ROWS = {"train": 700, "validation": 150, "test": 150}
MIN_POSITIVES = {"train": 25, "validation": 6, "test": 6}
RECENT_DAYS = 2  # today and yesterday: the partitions a self-started training (re)builds
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class Readiness:
    """The verdict, why, and the event dates (ISO) the training run must build."""

    ready: bool
    reason: str
    first_day: str | None = None
    last_day: str | None = None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def split_counts(
    spec: UseCaseSpec,
    raw_uri: str,
    start: date,
    end: date,
    storage_options: Mapping[str, str] | None = None,
) -> tuple[dict[str, dict[str, int]], date | None]:
    """Rows (and positives) per split of the raw events dated start..end as the training set
    would split them, and the first event date among them (None if there are none)."""
    con = feature_sql.connect()
    feature_sql.register_delta(con, "raw", raw_uri, storage_options)
    selection = ts.Selection(start=start, end=end, max_rows=1_000_000)
    label = spec.label_field
    positives = (
        f"sum(CAST({feature_sql.quote(label)} AS BIGINT))"
        if spec.task == "classification" and label
        else "0"
    )
    rows = con.execute(
        f"SELECT {ts.SPLIT_COLUMN}, count(*), {positives}, "
        f"min({feature_sql.quote(feature_sql.PARTITION_COLUMN)}) "
        f"FROM ({ts.training_set_sql(spec, 'raw')}) GROUP BY 1",
        selection.parameters(),
    ).fetchall()
    counts = {split: {"rows": 0, "positives": 0} for split in ts.SPLITS}
    first: date | None = None
    for split, n, n_positive, day in rows:
        counts[split] = {"rows": int(n), "positives": int(n_positive or 0)}
        first = day if first is None or day < first else first
    return counts, first


def shortfalls(spec: UseCaseSpec, counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    """What the split lacks for a sound training (empty: nothing)."""
    short = [
        f"{split} {counts[split]['rows']}/{MIN_ROWS[split]} rows"
        for split in ts.SPLITS
        if counts[split]["rows"] < MIN_ROWS[split]
    ]
    if spec.task == "classification":
        short += [
            f"{split} {counts[split]['positives']}/{MIN_POSITIVES[split]} positives"
            for split in ts.SPLITS
            if counts[split]["positives"] < MIN_POSITIVES[split]
        ]
    return short


def assess(spec: UseCaseSpec, lakehouse: LakehouseResource, today: date) -> Readiness:
    """Whether the raw events of `today` and the day before make a sound training set."""
    raw_uri = lakehouse.table_uri(raw_table_name(spec))
    if not feature_sql.table_exists(raw_uri, lakehouse.storage_options):
        return Readiness(False, f"no raw events yet ({raw_uri} does not exist)")
    start = today - timedelta(days=RECENT_DAYS - 1)
    counts, first = split_counts(spec, raw_uri, start, today, lakehouse.storage_options)
    total = sum(c["rows"] for c in counts.values())
    if first is None:
        return Readiness(False, f"no raw events dated {start}..{today}", counts=counts)
    short = shortfalls(spec, counts)
    if short:
        return Readiness(
            False, f"{total} events dated {start}..{today} are not enough yet: "
            + ", ".join(short), counts=counts,
        )  # fmt: skip
    summary = ", ".join(
        f"{s} {c['rows']}" + (f" ({c['positives']} positive)" if spec.task == "classification"
                              else "")
        for s, c in counts.items()
    )  # fmt: skip
    return Readiness(
        True, f"{total} events dated {first}..{today} make a sound split: {summary}",
        first.isoformat(), today.isoformat(), counts,
    )  # fmt: skip


def training_request(
    spec: UseCaseSpec, readiness: Readiness, run_key: str, tags: Mapping[str, str]
) -> dg.RunRequest:
    """A `<uc>_features_and_training` run over the ready days (one ranged run)."""
    if not readiness.ready or readiness.first_day is None or readiness.last_day is None:
        raise ValueError(f"not ready: {readiness.reason}")
    return dg.RunRequest(
        run_key=run_key,
        tags={
            **batch_tags(spec),
            **tags,
            RANGE_START_TAG: readiness.first_day,
            RANGE_END_TAG: readiness.last_day,
        },
    )


def active_batch_run(instance: dg.DagsterInstance, spec: UseCaseSpec) -> Any | None:
    """A queued or running batch run of the use case (features or training), if any."""
    filters = dg.RunsFilter(statuses=list(ACTIVE_STATUSES), tags=batch_tags(spec))
    runs = instance.get_runs(filters=filters, limit=1)
    return runs[0] if runs else None
