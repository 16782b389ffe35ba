"""`coelho sql`: one read-only SELECT over a use case's raw Delta table (exposed as `data`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

MAX_CELL = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    from coelho_pipelines.sql_engine import DEFAULT_LIMIT, DEFAULT_TIMEOUT_S, MAX_LIMIT
    from coelho_pipelines.use_cases import use_case_keys

    parser = subparsers.add_parser(
        "sql",
        help="run a read-only SELECT over a use case's raw Delta table (as `data`)",
        description="Run exactly one SELECT (WITH allowed) over the use case's raw events, "
        "available as the table `data`, with DuckDB. Other statements, table functions, files "
        "and URLs are rejected.",
    )
    parser.add_argument("--use-case", required=True, choices=use_case_keys())
    parser.add_argument("query", help='e.g. "SELECT currency, count(*) FROM data GROUP BY 1"')
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"maximum rows returned (default {DEFAULT_LIMIT:,}, at most {MAX_LIMIT:,})",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds (default %(default)s)"
    )
    parser.add_argument(
        "--lakehouse", default=None, help="lakehouse root URI (default COELHO_LAKEHOUSE_URI)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coelho.cli import CommandError
    from coelho_pipelines.resources import LakehouseResource
    from coelho_pipelines.sql_engine import SqlError, run_query
    from coelho_pipelines.use_cases import get_spec

    lakehouse = LakehouseResource.from_env()
    if args.lakehouse:
        lakehouse = LakehouseResource(uri=args.lakehouse, storage_options=lakehouse.storage_options)
    try:
        result = run_query(
            lakehouse, get_spec(args.use_case), args.query, limit=args.limit, timeout_s=args.timeout
        )
    except SqlError as error:
        raise CommandError(str(error)) from error
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(format_table(result.columns, result.rows))
    more = " (truncated: raise --limit)" if result.truncated else ""
    print(f"{result.row_count} rows in {result.execution_time_ms:.1f} ms{more}")
    return 0


def _cell(value: Any) -> str:
    text = (
        "NULL"
        if value is None
        else json.dumps(value)
        if isinstance(value, dict | list)
        else str(value)
    )
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def format_table(columns: list[str], rows: list[list[Any]]) -> str:
    """A plain fixed-width table."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, rule, *body])
