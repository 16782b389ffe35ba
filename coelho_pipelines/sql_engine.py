"""Read-only SQL over one use case's raw Delta table, exposed to the query as `data`.

Safety is enforced by DuckDB, not by keyword matching:
1. DuckDB's parser splits the text (`extract_statements`): exactly one statement, of type SELECT
   (WITH ... SELECT included).
2. DuckDB's serializer gives the statement's syntax tree (`json_serialize_sql`): the only tables
   a query may read are `data` and its own CTEs; table functions (read_csv, delta_scan, query,
   glob...) and replacement scans of paths or URLs are rejected.
3. The connection itself: the Delta extension is loaded from the file the
   `duckdb-extension-delta` package ships (never downloaded), extension auto-install/auto-load
   are off, external access is disabled except the table's own directory
   (`allowed_directories`), the configuration is locked, memory and threads are limited.
4. Results are capped (default 10,000 rows, at most 100,000) and a timer interrupts queries that
   run past the timeout.

Local lakehouses are read with DuckDB's `delta_scan`. For an object-store lakehouse (s3://...)
DuckDB would need its httpfs extension, which is not packaged offline: the table is then opened
with delta-rs (`LakehouseResource.storage_options`) and registered as an Arrow dataset, with
external file access fully disabled.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb

from coelho_pipelines.naming import raw_table_name, raw_table_uri
from coelho_pipelines.use_cases.spec import UseCaseSpec

DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_THREADS = 2
VIEW = "data"

# Table references a query may contain (anything else, e.g. TABLE_FUNCTION, is rejected).
_ALLOWED_TABLE_REFS = {"BASE_TABLE", "JOIN", "SUBQUERY", "EXPRESSION_LIST", "EMPTY", "PIVOT"}
_TABLE_REF_TYPES = _ALLOWED_TABLE_REFS | {
    "TABLE_FUNCTION",
    "SHOW_REF",
    "COLUMN_DATA",
    "DELIM_GET",
    "CTE",
    "INVALID",
    "BOUND_TABLE_REF",
}


class SqlError(Exception):
    """A query that could not run."""


class SqlRejected(SqlError):
    """The query was refused or failed; the message says what and why (HTTP 400)."""


class SqlTimeout(SqlRejected):
    """The query ran past its timeout and was interrupted."""


class TableNotFound(SqlError):
    """The use case has no table yet (nothing ingested): HTTP 404."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    execution_time_ms: float
    truncated: bool = False
    column_types: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "rows": self.rows,
            "row_count": self.row_count,
            "execution_time_ms": round(self.execution_time_ms, 3),
            "truncated": self.truncated,
        }


@dataclass
class TableSchema:
    table: str
    columns: list[dict[str, str]]
    row_count: int


def delta_extension_path() -> Path:
    """The Delta extension binary shipped by the `duckdb-extension-delta` package."""
    import duckdb_extension_delta

    root = Path(duckdb_extension_delta.__file__).parent
    candidates = sorted(root.rglob("delta.duckdb_extension"))
    wanted = [c for c in candidates if f"v{duckdb.__version__}" in c.parts]
    if not (wanted or candidates):
        raise SqlError(f"no delta.duckdb_extension under {root}")
    return (wanted or candidates)[0]


# --- statement checks -----------------------------------------------------------------------


def check_query(query: str) -> str:
    """The single SELECT statement of `query` (without a trailing semicolon), or SqlRejected."""
    if not isinstance(query, str) or not query.strip():
        raise SqlRejected("rejected: the query is empty")
    try:
        statements = duckdb.extract_statements(query)
    except Exception as error:  # the parser raises several types (ParserException, IndexError)
        raise SqlRejected(f"rejected: the query does not parse: {_first_line(error)}") from error
    if len(statements) != 1:
        raise SqlRejected(f"rejected: exactly one statement is allowed, found {len(statements)}")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        kind = statement.type.name
        raise SqlRejected(f"rejected: only SELECT queries are allowed, got a {kind} statement")
    text = statement.query.strip() or query.strip().rstrip(";")
    _check_tables(text)
    return text


def _check_tables(text: str) -> None:
    """Only `data` and the query's own CTEs may be read: no table functions, paths or URLs."""
    try:
        tree = json.loads(_serialize(text))
    except duckdb.Error as error:
        raise SqlRejected(f"rejected: {_first_line(error)}") from error
    if tree.get("error"):
        message = tree.get("error_message") or "the statement cannot be analysed"
        raise SqlRejected(f"rejected: {message}")
    ctes = _cte_names(tree)
    for ref in _table_refs(tree):
        kind = ref.get("type")
        if kind not in _ALLOWED_TABLE_REFS:
            name = (ref.get("function") or {}).get("function_name") or kind.lower()
            raise SqlRejected(
                f"rejected: table function {name}() is not allowed; query the table `{VIEW}`"
            )
        if kind == "BASE_TABLE":
            _check_base_table(ref, ctes)


_PARSER: duckdb.DuckDBPyConnection | None = None
_PARSER_LOCK = threading.Lock()


def _serialize(text: str) -> str:
    """DuckDB's syntax tree of `text` as JSON, from one shared connection that reads nothing
    (opening a connection per query costs more than the analysis)."""
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is None:
            _PARSER = duckdb.connect(":memory:", config=_base_config())
            _PARSER.execute("SET enable_external_access = false")
            _PARSER.execute("SET lock_configuration = true")
        return _PARSER.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0]


def _check_base_table(ref: dict[str, Any], ctes: set[str]) -> None:
    name = ref.get("table_name", "")
    qualified = ref.get("schema_name") or ref.get("catalog_name")
    lowered = name.lower()
    if qualified or any(c in name for c in "/\\:.'\"") or lowered not in ctes | {VIEW}:
        shown = ".".join(p for p in (ref.get("catalog_name"), ref.get("schema_name"), name) if p)
        raise SqlRejected(
            f"rejected: unknown table {shown!r}; the only table is `{VIEW}` (and your CTEs)"
        )


def _table_refs(node: Any) -> list[dict[str, Any]]:
    found = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            kind = item.get("type")
            if "class" not in item and isinstance(kind, str) and kind in _TABLE_REF_TYPES:
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _cte_names(node: Any) -> set[str]:
    names = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            cte_map = item.get("cte_map")
            if isinstance(cte_map, dict):
                names.update(entry["key"].lower() for entry in cte_map.get("map", []))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return names


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# --- connections ----------------------------------------------------------------------------


def _base_config() -> dict[str, Any]:
    return {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_persistent_secrets": False,
    }


class _Database:
    """A locked-down in-memory DuckDB whose only view is `data` over one Delta table."""

    def __init__(
        self,
        uri: str,
        storage_options: dict[str, str],
        memory_limit: str,
        threads: int,
    ) -> None:
        self.uri = uri
        config = {**_base_config(), "memory_limit": memory_limit, "threads": threads}
        self.con = duckdb.connect(":memory:", config=config)
        try:
            if _is_local(uri):
                self._local_view(_local_path(uri))
            else:
                self._remote_view(uri, storage_options)
            self.con.execute("SET enable_external_access = false")
            self.con.execute("SET lock_configuration = true")
        except Exception:
            self.con.close()
            raise

    def _local_view(self, path: Path) -> None:
        if not (path / "_delta_log").is_dir():
            raise TableNotFound(f"no Delta table at {path} (nothing ingested yet)")
        self.con.execute(f"LOAD '{_quote(str(delta_extension_path()))}'")
        directory = str(path).rstrip("/") + "/"
        self.con.execute(f"SET allowed_directories = ['{_quote(directory)}']")
        self.con.execute(f"CREATE VIEW {VIEW} AS SELECT * FROM delta_scan('{_quote(str(path))}')")

    def _remote_view(self, uri: str, storage_options: dict[str, str]) -> None:
        from deltalake import DeltaTable

        if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
            raise TableNotFound(f"no Delta table at {uri} (nothing ingested yet)")
        dataset = DeltaTable(uri, storage_options=storage_options).to_pyarrow_dataset()
        self.con.register("_delta_dataset", dataset)
        self.con.execute(f"CREATE VIEW {VIEW} AS SELECT * FROM _delta_dataset")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()


_DATABASES: dict[tuple[str, str, int], _Database] = {}
_DATABASES_LOCK = threading.Lock()


def _database(
    uri: str,
    storage_options: dict[str, str] | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int = DEFAULT_THREADS,
) -> _Database:
    """One cached database per table (loading the extension takes a while); cursors per query.

    Remote tables are opened per call: their Arrow dataset is a snapshot.
    """
    if not _is_local(uri):
        return _Database(uri, dict(storage_options or {}), memory_limit, threads)
    key = (uri, memory_limit, threads)
    with _DATABASES_LOCK:
        database = _DATABASES.get(key)
        if database is None or not (_local_path(uri) / "_delta_log").is_dir():
            database = _Database(uri, {}, memory_limit, threads)
            _DATABASES[key] = database
        return database


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://")).expanduser().resolve()


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _lakehouse_parts(lakehouse: Any) -> tuple[str, dict[str, str]]:
    if isinstance(lakehouse, str):
        return lakehouse, {}
    return lakehouse.uri, dict(getattr(lakehouse, "storage_options", {}) or {})


def spec_table_uri(lakehouse: Any, spec: UseCaseSpec) -> str:
    root, _ = _lakehouse_parts(lakehouse)
    return raw_table_uri(root, spec)


# --- public API -----------------------------------------------------------------------------


def run_query(
    lakehouse: Any,
    spec: UseCaseSpec,
    query: str,
    limit: int = DEFAULT_LIMIT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> QueryResult:
    """Run one read-only SELECT over `data` (the use case's raw table); rows JSON-ready.

    `lakehouse` is a `LakehouseResource` or a lakehouse root URI. Raises SqlRejected (bad or
    failing query, timeout), TableNotFound (nothing ingested yet).
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise SqlRejected(f"rejected: limit must be an integer from 1 to {MAX_LIMIT}")
    text = check_query(query)
    root, options = _lakehouse_parts(lakehouse)
    database = _database(raw_table_uri(root, spec), options, memory_limit)
    cursor = database.cursor()
    timer = threading.Timer(timeout_s, cursor.interrupt)
    started = time.perf_counter()
    timer.start()
    try:
        relation = cursor.sql(text)
        if relation is None:
            raise SqlRejected("rejected: the statement returns no rows")
        columns = list(relation.columns)
        types = [str(t) for t in relation.types]
        rows = relation.limit(limit + 1).fetchall()
    except SqlError:
        raise
    except duckdb.InterruptException as error:
        raise SqlTimeout(f"rejected: the query ran longer than {timeout_s:g}s") from error
    except duckdb.Error as error:
        if time.perf_counter() - started >= timeout_s:
            raise SqlTimeout(f"rejected: the query ran longer than {timeout_s:g}s") from error
        raise SqlRejected(f"query failed: {_first_line(error)}") from error
    finally:
        timer.cancel()
        cursor.close()
    elapsed_ms = (time.perf_counter() - started) * 1000
    truncated = len(rows) > limit
    rows = rows[:limit]
    return QueryResult(
        columns=columns,
        rows=[[jsonable(v) for v in row] for row in rows],
        row_count=len(rows),
        execution_time_ms=elapsed_ms,
        truncated=truncated,
        column_types=types,
    )


def table_cursor(lakehouse: Any, spec: UseCaseSpec) -> duckdb.DuckDBPyConnection:
    """A cursor on the locked-down database of the use case's table, for trusted callers
    (asset checks, batch training) that run their own SELECTs over `data`. Close it after use."""
    root, options = _lakehouse_parts(lakehouse)
    return _database(raw_table_uri(root, spec), options).cursor()


def table_schema(lakehouse: Any, spec: UseCaseSpec) -> TableSchema:
    """Columns (name, DuckDB type) and row count of the use case's raw table."""
    root, options = _lakehouse_parts(lakehouse)
    database = _database(raw_table_uri(root, spec), options)
    cursor = database.cursor()
    try:
        described = cursor.execute(f"DESCRIBE {VIEW}").fetchall()
        count = cursor.execute(f"SELECT count(*) FROM {VIEW}").fetchone()[0]
    finally:
        cursor.close()
    columns = [{"name": row[0], "type": row[1]} for row in described]
    return TableSchema(table=raw_table_name(spec), columns=columns, row_count=int(count))


def jsonable(value: Any) -> Any:
    """A DuckDB result value as JSON-ready Python."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)
