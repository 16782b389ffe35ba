"""Customer profiles in DuckDB SQL: the batch engine of `spec.profile` (CustomerProfile).

One row per customer from the raw Delta table: the key, the time of the customer's last
event (in `spec.time_field`), `n_events`, each profile value as the decayed mean the learner
keeps (`incremental/profiles.py`; the k-th newest event weighs `decay ** k`, a value no event
observed is NULL) and, for the cluster analytics, the customer's most frequent value of
each categorical event feature (not a model input). `request_state_sql` gives the decayed
sums themselves, so serving can add one more event in python exactly as the learner does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from coelho_pipelines.batch.features import PARTITION_COLUMN, quote
from coelho_pipelines.use_cases.spec import CustomerProfile, UseCaseSpec

if TYPE_CHECKING:  # DuckDB loads where a connection is made (batch.features.connect)
    import duckdb

N_EVENTS = "n_events"
_ORDER_TIEBREAK = ("kafka_partition", "kafka_offset")  # equal event times: Kafka order


def _profile(spec: UseCaseSpec) -> CustomerProfile:
    if spec.profile is None:
        raise ValueError(f"use case {spec.key!r} declares no customer profile")
    return spec.profile


def _value_column(index: int) -> str:
    return f"_v{index}"


def _aged_events_sql(spec: UseCaseSpec, source: str, dedupe: bool) -> str:
    """The raw events in [$start, $end] (by `event_date`) with each profile value and the
    event's age: 0 for a customer's newest event, k for the k-th newest."""
    profile = _profile(spec)
    key, time = quote(profile.key_field), quote(spec.time_field)
    values = [f"CAST(({f.sql}) AS DOUBLE) AS {_value_column(i)}" for i, f in
              enumerate(profile.features)]  # fmt: skip
    categoricals = [f"CAST(({f.sql}) AS VARCHAR) AS {quote('_c_' + f.name)}" for f in
                    spec.features if f.kind == "categorical"]  # fmt: skip
    tiebreak = ", ".join(f"{c} DESC" for c in _ORDER_TIEBREAK)
    deduped = f"SELECT * FROM {source} WHERE {quote(PARTITION_COLUMN)} BETWEEN $start AND $end"
    if dedupe:
        deduped += (
            f" QUALIFY row_number() OVER (PARTITION BY {quote(spec.id_field)} "
            "ORDER BY ingested_at, kafka_partition, kafka_offset) = 1"
        )
    columns = ",\n           ".join([*values, *categoricals])
    return f"""
    SELECT {key} AS _customer, {time} AS _time,
           {columns},
           row_number() OVER (PARTITION BY {key} ORDER BY {time} DESC, {tiebreak}) - 1 AS _age
    FROM ({deduped})
    WHERE {key} IS NOT NULL"""


def profile_sql(spec: UseCaseSpec, source: str = "raw", dedupe: bool = True) -> str:
    """One row per customer with events in [$start, $end]: see the module doc. Parameters:
    $start, $end (event dates), $decay."""
    profile = _profile(spec)
    weight = "pow(CAST($decay AS DOUBLE), _age)"
    values = [
        f"sum({weight} * {_value_column(i)}) / "
        f"sum(CASE WHEN {_value_column(i)} IS NOT NULL THEN {weight} END) AS {quote(f.name)}"
        for i, f in enumerate(profile.features)
    ]
    modes = [f"mode({quote('_c_' + f.name)}) AS {quote(f.name)}" for f in spec.features
             if f.kind == "categorical" and f.name not in profile.feature_names]  # fmt: skip
    columns = ",\n       ".join(
        [
            f"_customer AS {quote(profile.key_field)}",
            f"max(_time) AS {quote(spec.time_field)}",
            f"count(*) AS {N_EVENTS}",
            *values,
            *modes,
        ]
    )
    return (
        f"WITH aged AS ({_aged_events_sql(spec, source, dedupe)})\n"
        f"SELECT {columns}\nFROM aged GROUP BY _customer"
    )


def request_state_sql(spec: UseCaseSpec, source: str = "raw") -> str:
    """The learner's state of each request's customer before that request's event: per
    request i (the lists `$customers` and `$exclude`, zipped), `n_events` and per profile
    value j the decayed sum `s{j}` and decayed observation count `w{j}` over the customer's
    events in `source`, leaving out the event whose id is `$exclude[i]` (an event being scored
    that is already ingested; NULL: none). A request whose customer has no events is absent."""
    profile = _profile(spec)
    key, time, event_id = quote(profile.key_field), quote(spec.time_field), quote(spec.id_field)
    weight = "pow(CAST($decay AS DOUBLE), _age)"
    values = [f"CAST(({f.sql}) AS DOUBLE) AS {_value_column(j)}" for j, f in
              enumerate(profile.features)]  # fmt: skip
    sums = []
    for j in range(len(profile.features)):
        v = _value_column(j)
        sums.append(f"coalesce(sum({weight} * {v}), 0.0) AS s{j}")
        sums.append(f"coalesce(sum(CASE WHEN {v} IS NOT NULL THEN {weight} END), 0.0) AS w{j}")
    tiebreak = ", ".join(f"e.{c} DESC" for c in _ORDER_TIEBREAK)
    value_columns = ",\n           ".join(values)
    sum_columns = ",\n       ".join(sums)
    return f"""
WITH requests AS (
    SELECT unnest(range(len($customers))) AS _request, unnest($customers) AS _customer,
           unnest($exclude) AS _exclude
),
history AS (  -- the requested customers' events, each event id once
    SELECT * FROM {source} WHERE list_contains($customers, {key})
    QUALIFY row_number() OVER (PARTITION BY {event_id}
                               ORDER BY ingested_at, kafka_partition, kafka_offset) = 1
),
aged AS (
    SELECT r._request,
           {value_columns},
           row_number() OVER (PARTITION BY r._request ORDER BY e.{time} DESC, {tiebreak}) - 1
               AS _age
    FROM requests r JOIN history e
      ON e.{key} = r._customer AND e.{event_id} IS DISTINCT FROM r._exclude
)
SELECT _request, count(*) AS {N_EVENTS},
       {sum_columns}
FROM aged GROUP BY _request"""


def request_states(
    spec: UseCaseSpec,
    con: duckdb.DuckDBPyConnection,
    events: list[dict[str, Any]],
    source: str = "raw",
) -> list[Any]:
    """Per event, the learner's `CustomerState` of its customer from `source` without that
    event (None: no history). One query for all events (a micro-batch)."""
    from coelho_pipelines.incremental.profiles import CustomerState

    profile = _profile(spec)
    customers = [str(e.get(profile.key_field)) for e in events]
    exclude = [None if e.get(spec.id_field) is None else str(e[spec.id_field]) for e in events]
    params = {"customers": customers, "exclude": exclude, "decay": profile.decay}
    rows = con.execute(request_state_sql(spec, source), params).fetchall()
    states: list[Any] = [None] * len(events)
    size = len(profile.features)
    for row in rows:
        state = CustomerState(size)
        state.events = int(row[1])
        state.sums = [float(v) for v in row[2::2]]
        state.weights = [float(v) for v in row[3::2]]
        states[int(row[0])] = state
    return states


def profile_rows(
    spec: UseCaseSpec, events: list[dict[str, Any]], states: list[Any]
) -> list[dict[str, float | None]]:
    """Each event's customer profile after that event: its state (`states[i]`, left
    unchanged; None starts empty) with the event applied as the learner does."""
    from coelho_pipelines.incremental.profiles import CustomerState

    profile = _profile(spec)
    names = profile.feature_names
    rows = []
    for event, known in zip(events, states, strict=True):
        state = known.copy() if known is not None else CustomerState(len(names))
        state.apply([f.extract(event) for f in profile.features], profile.decay)
        rows.append(dict(zip(names, state.values(), strict=True)))
    return rows


def serving_rows(
    spec: UseCaseSpec,
    events: list[dict[str, Any]],
    raw_uri: str,
    storage_options: dict[str, str] | None = None,
) -> list[dict[str, float | None]]:
    """`profile_rows` with each customer's history read from the raw Delta table at `raw_uri`
    (no table yet: no history). Each event is left out of its own history, so scoring events
    one by one or together gives the same answers."""
    from coelho_pipelines.batch import features as feature_sql

    states: list[Any] = [None] * len(events)
    if events and feature_sql.table_exists(raw_uri, storage_options):
        con = feature_sql.connect()
        feature_sql.register_delta(con, "raw", raw_uri, storage_options)
        states = request_states(spec, con, events)
    return profile_rows(spec, events, states)


def has_repeated_ids(spec: UseCaseSpec, con: duckdb.DuckDBPyConnection, source: str,
                     params: dict[str, Any]) -> bool:  # fmt: skip
    """Whether the window holds an event id twice (ingestion is exactly-once: normally not)."""
    key = quote(spec.id_field)
    return bool(
        con.execute(
            f"SELECT count(*) - count(DISTINCT {key}) FROM {source} "
            f"WHERE {quote(PARTITION_COLUMN)} BETWEEN $start AND $end",
            {"start": params["start"], "end": params["end"]},
        ).fetchone()[0]
    )


def compute_profiles(
    spec: UseCaseSpec, con: duckdb.DuckDBPyConnection, start: Any, end: Any, source: str = "raw"
) -> pa.Table:
    """Every customer's profile over the raw events with `event_date` in [start, end]."""
    params = {"start": start, "end": end}
    sql = profile_sql(spec, source, has_repeated_ids(spec, con, source, params))
    return con.execute(sql, {**params, "decay": _profile(spec).decay}).to_arrow_table()
