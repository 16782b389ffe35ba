"""Asset checks on `<uc>/raw_events`: schema, required fields, ranges, unique ids, freshness and
the dead-letter ratio. One DuckDB pass over the table answers the value checks.

Thresholds come from the spec's `raw_checks` section (`RawChecks`): `freshness_seconds`
(default 3600) and `max_dead_letter_ratio` (default 0.01).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import pyarrow as pa

from coelho_pipelines.events.fields import FieldSpec
from coelho_pipelines.ingestion.keys import raw_events_key
from coelho_pipelines.lakehouse.tables import _same_columns, file_stats, raw_schema
from coelho_pipelines.naming import dead_letter_table_name, raw_table_name
from coelho_pipelines.resources import LakehouseResource
from coelho_pipelines.use_cases.spec import UseCaseSpec

CHECK_NAMES = (
    "schema_matches_spec",
    "required_fields_not_null",
    "values_within_spec",
    "event_ids_unique",
    "freshness",
    "dead_letter_ratio",
)


@dataclass(frozen=True)
class _Leaf:
    sql: str
    name: str
    spec: FieldSpec
    parent_sql: str | None


def _leaves(fields: tuple[FieldSpec, ...], prefix: str = "", parent: str | None = None):
    for f in fields:
        sql = f'{prefix}"{f.name}"'
        name = f"{prefix.replace(chr(34), '')}{f.name}"
        yield _Leaf(sql, name, f, parent)
        if f.type == "struct":
            yield from _leaves(f.children, f"{sql}.", sql)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def null_expressions(spec: UseCaseSpec) -> dict[str, str]:
    """Per required field, a SQL count of its nulls (children only where the parent is set)."""
    out = {}
    for leaf in _leaves(spec.fields):
        if leaf.spec.nullable:
            continue
        condition = f"{leaf.sql} IS NULL"
        if leaf.parent_sql:
            condition = f"{leaf.parent_sql} IS NOT NULL AND {condition}"
        out[leaf.name] = f"count(*) FILTER (WHERE {condition})"
    return out


def range_expressions(spec: UseCaseSpec) -> dict[str, str]:
    """Per field with choices or bounds, a SQL count of the values outside them."""
    out = {}
    for leaf in _leaves(spec.fields):
        f = leaf.spec
        broken = []
        if f.choices is not None:
            broken.append(f"{leaf.sql} NOT IN ({', '.join(_quote(c) for c in f.choices)})")
        if f.minimum is not None:
            broken.append(f"{leaf.sql} < {f.minimum!r}")
        if f.maximum is not None:
            broken.append(f"{leaf.sql} > {f.maximum!r}")
        if broken:
            out[leaf.name] = f"count(*) FILTER (WHERE {' OR '.join(broken)})"
    return out


def _check_specs(spec: UseCaseSpec) -> list[dg.AssetCheckSpec]:
    limits = spec.raw_checks
    descriptions = {
        "schema_matches_spec": "The Delta schema equals the spec's fields plus ingestion columns.",
        "required_fields_not_null": "No null in a field the spec marks required.",
        "values_within_spec": "Choices and min/max bounds of the spec hold for every row.",
        "event_ids_unique": f"`{spec.id_field}` is unique across the table.",
        "freshness": f"The newest event is at most {limits.freshness_seconds:g} s old.",
        "dead_letter_ratio": f"Dead letters stay under {limits.max_dead_letter_ratio:.1%}.",
    }
    return [
        dg.AssetCheckSpec(name, asset=raw_events_key(spec), description=descriptions[name])
        for name in CHECK_NAMES
    ]


def evaluate(spec: UseCaseSpec, lakehouse: LakehouseResource) -> list[dg.AssetCheckResult]:
    """Every check of the raw table (usable outside Dagster, e.g. in tests)."""
    key = raw_events_key(spec)
    raw_uri = lakehouse.table_uri(raw_table_name(spec))
    dead_uri = lakehouse.table_uri(dead_letter_table_name(spec))
    try:
        stats = file_stats(raw_uri, lakehouse.storage_options)
    except Exception as error:  # noqa: BLE001 - no table yet: every check fails, saying why
        return [
            dg.AssetCheckResult(
                asset_key=key, check_name=n, passed=False, metadata={"error": str(error)}
            )
            for n in CHECK_NAMES
        ]
    results = [_schema_result(spec, raw_uri, lakehouse)]
    results += _value_results(spec, lakehouse)
    results.append(_dead_letter_result(spec, stats["rows"], dead_uri, lakehouse))
    return results


def _schema_result(
    spec: UseCaseSpec, uri: str, lakehouse: LakehouseResource
) -> dg.AssetCheckResult:
    from deltalake import DeltaTable

    actual = pa.schema(
        DeltaTable(uri, storage_options=lakehouse.storage_options).schema().to_arrow()
    )
    expected = raw_schema(spec)
    passed = _same_columns(actual, expected)
    missing = sorted(set(expected.names) - set(actual.names))
    extra = sorted(set(actual.names) - set(expected.names))
    return dg.AssetCheckResult(
        asset_key=raw_events_key(spec),
        check_name="schema_matches_spec",
        passed=passed,
        metadata={
            "missing_columns": ", ".join(missing),
            "extra_columns": ", ".join(extra),
            "columns": len(actual.names),
        },  # fmt: skip
    )


def _value_results(spec: UseCaseSpec, lakehouse: LakehouseResource) -> list[dg.AssetCheckResult]:
    nulls = null_expressions(spec)
    ranges = range_expressions(spec)
    selects = [f'{expr} AS "null:{name}"' for name, expr in nulls.items()]
    selects += [f'{expr} AS "range:{name}"' for name, expr in ranges.items()]
    selects += [
        "count(*) AS total",
        f'count(*) - count(DISTINCT "{spec.id_field}") AS duplicate_ids',
        f'max("{spec.time_field}") AS newest',
    ]
    from coelho_pipelines import sql_engine  # DuckDB: loaded when checks run, not at import

    cursor = sql_engine.table_cursor(lakehouse, spec)
    try:
        relation = cursor.execute(f"SELECT {', '.join(selects)} FROM data")
        names = [d[0] for d in relation.description]
        row = dict(zip(names, relation.fetchone(), strict=True))
    finally:
        cursor.close()
    key = raw_events_key(spec)
    null_counts = {n.split(":", 1)[1]: int(v) for n, v in row.items() if n.startswith("null:")}
    range_counts = {n.split(":", 1)[1]: int(v) for n, v in row.items() if n.startswith("range:")}
    total, duplicates, newest = int(row["total"]), int(row["duplicate_ids"]), row["newest"]
    freshness_limit = spec.raw_checks.freshness_seconds
    age = (datetime.now(UTC) - newest).total_seconds() if newest is not None else None
    return [
        dg.AssetCheckResult(
            asset_key=key,
            check_name="required_fields_not_null",
            passed=not any(null_counts.values()),
            metadata={"rows": total, **{f"nulls_{k}": v for k, v in null_counts.items() if v}},
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name="values_within_spec",
            passed=not any(range_counts.values()),
            metadata={"rows": total, **{f"outside_{k}": v for k, v in range_counts.items() if v}},
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name="event_ids_unique",
            passed=duplicates == 0,
            metadata={"rows": total, "duplicate_ids": duplicates},
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name="freshness",
            passed=age is not None and age <= freshness_limit,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "newest_event": str(newest),
                "age_seconds": round(age, 1) if age is not None else -1,
                "limit_seconds": freshness_limit,
            },
        ),
    ]


def _dead_letter_result(
    spec: UseCaseSpec, raw_rows: int, dead_uri: str, lakehouse: LakehouseResource
) -> dg.AssetCheckResult:
    try:
        dead_rows = file_stats(dead_uri, lakehouse.storage_options)["rows"]
    except Exception:  # noqa: BLE001 - no dead-letter table yet means none
        dead_rows = 0
    limit = spec.raw_checks.max_dead_letter_ratio
    total = raw_rows + dead_rows
    ratio = dead_rows / total if total else 0.0
    return dg.AssetCheckResult(
        asset_key=raw_events_key(spec),
        check_name="dead_letter_ratio",
        passed=ratio <= limit,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "dead_letters": dead_rows,
            "events": raw_rows,
            "ratio": round(ratio, 6),
            "limit": limit,
        },  # fmt: skip
    )


def build_raw_event_checks(spec: UseCaseSpec) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=f"{spec.key}_raw_events_checks",
        specs=_check_specs(spec),
        description=f"Data quality of {spec.key}/raw_events.",
    )
    def raw_event_checks(lakehouse: LakehouseResource) -> Iterator[dg.AssetCheckResult]:
        yield from evaluate(spec, lakehouse)

    return raw_event_checks
