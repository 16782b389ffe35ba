"""The SQL engine: analytical queries work; a corpus of hostile inputs is refused and harmless."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from deltalake import DeltaTable, write_deltalake
from fake_events import fake_events

from coelho_pipelines import naming, sql_engine
from coelho_pipelines.lakehouse.tables import (
    PARTITION_COLUMN,
    ensure_table,
    events_to_arrow,
    raw_schema,
)
from coelho_pipelines.sql_engine import (
    SqlRejected,
    SqlTimeout,
    TableNotFound,
    run_query,
    table_schema,
)
from coelho_pipelines.use_cases import get_spec

SPEC = get_spec("tfd")
N = 2_000


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sql-lake")
    uri = str(root / "lakehouse")
    table = naming.raw_table_uri(uri, SPEC)
    ensure_table(table, raw_schema(SPEC), [PARTITION_COLUMN])
    write_deltalake(table, events_to_arrow(SPEC, fake_events(SPEC, N, seed=21)), mode="append")
    secret = root / "secret.csv"
    secret.write_text("password\nhunter2\n")
    other = f"{uri}/delta/other_table"
    ensure_table(other, raw_schema(SPEC), [PARTITION_COLUMN])
    write_deltalake(other, events_to_arrow(SPEC, fake_events(SPEC, 10, seed=1)), mode="append")
    return {"uri": Path(uri), "table": Path(table), "secret": secret, "other": Path(other)}


LEGIT = [
    ("SELECT count(*) AS n FROM data", ["n"], 1),
    (
        "select currency, count(*) n, avg(amount) from data group by currency order by n desc",
        None,
        7,
    ),
    ("SELECT * FROM data WHERE amount > 100 AND currency = 'USD' LIMIT 5", None, 5),
    (
        "WITH by_user AS (SELECT user_id, sum(amount) total FROM data GROUP BY 1) "
        "SELECT * FROM by_user ORDER BY total DESC LIMIT 3",
        ["user_id", "total"],
        3,
    ),
    (
        "SELECT transaction_id, amount, row_number() OVER (PARTITION BY currency ORDER BY amount "
        "DESC) AS rnk FROM data QUALIFY rnk <= 2",
        ["transaction_id", "amount", "rnk"],
        14,
    ),
    ("select location.lat, device_info.os from data limit 2", None, 2),
    ("SELECT event_date, count(*) FROM data GROUP BY ALL;", None, 1),
    ("FROM data SELECT max(timestamp)", None, 1),
    ("  sElEcT\n\t1   AS one  -- trailing comment\n", ["one"], 1),
    (
        "SELECT a.currency, b.n FROM (SELECT DISTINCT currency FROM data) a "
        "JOIN (SELECT currency, count(*) n FROM data GROUP BY 1) b USING (currency)",
        ["currency", "n"],
        7,
    ),
    ("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) t(x, y)", ["x", "y"], 2),
    ("select 1 union all select 2", None, 2),
]


@pytest.mark.parametrize(("query", "columns", "rows"), LEGIT, ids=[q[:40] for q, _, _ in LEGIT])
def test_analytical_queries_work(lake, query: str, columns, rows: int) -> None:
    result = run_query(str(lake["uri"]), SPEC, query)
    assert result.row_count == rows
    if columns:
        assert result.columns == columns
    assert result.execution_time_ms > 0


def test_count_matches_the_table(lake) -> None:
    assert run_query(str(lake["uri"]), SPEC, "select count(*) from data").rows == [[N]]


def test_results_are_capped_and_json_ready(lake) -> None:
    result = run_query(str(lake["uri"]), SPEC, "SELECT * FROM data", limit=50)
    assert result.row_count == 50 and result.truncated
    row = dict(zip(result.columns, result.rows[0], strict=True))
    assert isinstance(row["timestamp"], str) and row["timestamp"].startswith("2025-03-01")
    assert isinstance(row["location"], dict) and set(row["location"]) == {"lat", "lon"}
    full = run_query(str(lake["uri"]), SPEC, "SELECT * FROM data")
    assert full.row_count == N and not full.truncated
    for bad in (0, -1, sql_engine.MAX_LIMIT + 1):
        with pytest.raises(SqlRejected, match="limit"):
            run_query(str(lake["uri"]), SPEC, "SELECT 1", limit=bad)


def test_timeout_interrupts_long_queries(lake) -> None:
    slow = (
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 10000000000) "
        "SELECT count(*) FROM t"
    )
    with pytest.raises(SqlTimeout, match="longer than 0.5s"):
        run_query(str(lake["uri"]), SPEC, slow, timeout_s=0.5)
    # the cached database still serves queries afterwards
    assert run_query(str(lake["uri"]), SPEC, "SELECT 1 AS x").rows == [[1]]


def test_schema_lists_columns_and_rows(lake) -> None:
    schema = table_schema(str(lake["uri"]), SPEC)
    names = [c["name"] for c in schema.columns]
    assert names == raw_schema(SPEC).names
    assert schema.row_count == N
    types = {c["name"]: c["type"] for c in schema.columns}
    assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert types["location"].startswith("STRUCT")


def test_missing_table_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(TableNotFound, match="nothing ingested"):
        run_query(str(tmp_path), SPEC, "SELECT 1")


def _hostile(lake: dict[str, Path]) -> list[tuple[str, str]]:
    secret, table, other = lake["secret"], lake["table"], lake["other"]
    return [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("SELECT 1; SELECT 2", "exactly one statement"),
        ("SELECT * FROM data; DROP TABLE data", "exactly one statement"),
        ("SELECT 1; -- just a comment\nDELETE FROM data", "exactly one statement"),
        ("/* hide */ DROP TABLE data", "DROP statement"),
        ("DELETE FROM data", "DELETE statement"),
        ("UPDATE data SET amount = 0", "UPDATE statement"),
        ("INSERT INTO data SELECT * FROM data", "INSERT statement"),
        ("CREATE TABLE x AS SELECT * FROM data", "CREATE statement"),
        ("create or replace view data as select 1", "CREATE statement"),
        ("ALTER VIEW data RENAME TO d2", "ALTER statement"),
        (f"COPY (SELECT * FROM data) TO '{table}/stolen.csv'", "COPY statement"),
        (f"COPY data FROM '{secret}'", "COPY statement"),
        (f"EXPORT DATABASE '{table}/dump'", "EXPORT statement"),
        (f"ATTACH '{table}/x.duckdb' AS x", "ATTACH statement"),
        ("DETACH memory", "DETACH statement"),
        ("INSTALL httpfs", "LOAD statement"),
        ("LOAD httpfs", "LOAD statement"),
        ("FORCE INSTALL delta", "LOAD statement"),
        ("PRAGMA database_list", "rejected"),  # parses as a pragma_ table function
        ("PRAGMA enable_external_access", "rejected"),
        ("PRAGMA threads = 64", "SET statement"),
        ("SET enable_external_access = true", "SET statement"),
        ("SET lock_configuration = false", "SET statement"),
        ("RESET memory_limit", "SET statement"),
        ("CALL duckdb_settings()", "CALL statement"),
        ("EXPLAIN SELECT * FROM data", "EXPLAIN statement"),
        ("CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')", "CREATE statement"),
        ("USE memory", "statement"),
        ("CHECKPOINT", "statement"),
        ("VACUUM", "statement"),
        (f"SELECT * FROM read_csv('{secret}')", "read_csv() is not allowed"),
        (f"SELECT * FROM read_text('{secret}')", "read_text() is not allowed"),
        (f"select * from READ_BLOB('{table}/_delta_log/00000000000000000000.json')", "read_blob"),
        (f"SELECT * FROM '{secret}'", "unknown table"),
        (f'SELECT * FROM "{secret}"', "unknown table"),
        ("SELECT * FROM 'https://example.com/data.parquet'", "unknown table"),
        (f"SELECT * FROM read_parquet('{table}/**/*.parquet')", "read_parquet() is not allowed"),
        (f"SELECT * FROM delta_scan('{other}')", "delta_scan() is not allowed"),
        ("SELECT * FROM glob('/*')", "glob() is not allowed"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings() is not allowed"),
        ("SELECT * FROM duckdb_secrets()", "duckdb_secrets() is not allowed"),
        ("SELECT * FROM query('SELECT 42')", "query() is not allowed"),
        ("SELECT * FROM query_table('data')", "query_table() is not allowed"),
        (f"SELECT (SELECT count(*) FROM read_csv('{secret}')) FROM data", "read_csv"),
        (f"WITH x AS (SELECT * FROM read_csv('{secret}')) SELECT * FROM x", "read_csv"),
        (f"SELECT * FROM data WHERE amount IN (SELECT 1 FROM read_csv('{secret}'))", "read_csv"),
        ("SELECT * FROM information_schema.tables", "unknown table"),
        ("SELECT * FROM main.data", "unknown table"),
        ("SELECT * FROM duckdb_tables", "unknown table"),
        ("SELECT * FROM other_table", "unknown table"),
        ("WITH recursive t(n) AS (SELECT 1 UNION ALL SELECT n FROM t) SELECT * FROM t, x", "x"),
        ("SeLeCt * FrOm ReAd_CsV('/etc/passwd')", "is not allowed"),
        ("SELECT\u00a0*\u00a0FROM\u00a0read_csv('/etc/passwd')", "rejected"),
        ("SELECT * FROM data WHERE 1=1 /* ; DROP TABLE data */", "row"),  # harmless, allowed
        ("SELEC * FROM data", "does not parse"),
        ("SELECT * FROM data WHERE", "does not parse"),
        ("SELECT nosuchcolumn FROM data", "query failed"),
        ("SELECT getenv('HOME')", "query failed"),
    ]


def test_hostile_queries_are_rejected_and_touch_nothing(lake) -> None:
    table = lake["table"]
    before_files = sorted(str(p) for p in table.rglob("*"))
    before_version = DeltaTable(str(table)).version()
    outcomes = []
    for query, expected in _hostile(lake):
        try:
            result = run_query(str(lake["uri"]), SPEC, query)
        except SqlRejected as error:
            outcomes.append((query, str(error)))
            assert expected.lower() in str(error).lower(), (query, str(error))
            assert str(error).startswith(("rejected:", "query failed:")), str(error)
        else:
            assert expected == "row", f"accepted hostile query: {query!r}"
            assert result.row_count == N
    assert len(outcomes) == len(_hostile(lake)) - 1
    assert "hunter2" not in repr(outcomes)
    assert sorted(str(p) for p in table.rglob("*")) == before_files
    assert DeltaTable(str(table)).version() == before_version
    assert not (table / "stolen.csv").exists()
    # the connection's lock-down is still in force after the corpus
    result = run_query(str(lake["uri"]), SPEC, "SELECT current_setting('enable_external_access')")
    assert result.rows == [[False]]


def test_extension_is_loaded_from_the_package() -> None:
    path = sql_engine.delta_extension_path()
    assert path.is_file() and "duckdb_extension_delta" in str(path)
    assert os.access(path, os.R_OK)
