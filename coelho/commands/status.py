"""`coelho status`: what the local platform runs, where, and how much memory it takes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from coelho.platform import Platform, PlatformError, ServiceStatus, parse_services
from coelho.platform.manager import service_names

HEADERS = ("SERVICE", "STATE", "URL", "PID", "MEMORY", "LOG")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the local services: state, URL, pid, resident memory, log file",
        description="Show every local service of the platform under COELHO_HOME (default "
        ".coelho): its state (healthy, unhealthy, stopped, unavailable), URL, pid, resident "
        "memory (the process and its children) and log file.",
    )
    add_services_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def add_services_argument(parser: argparse.ArgumentParser) -> None:
    """The `--services` option shared by up, down and status."""
    parser.add_argument(
        "--services",
        metavar="LIST",
        help=f"comma-separated subset of: {','.join(service_names())} (default: all)",
    )


def services_or_error(text: str | None) -> list[str]:
    from coelho.cli import CommandError

    try:
        return parse_services(text)
    except PlatformError as error:
        raise CommandError(str(error)) from error


def format_memory(rss_bytes: int | None) -> str:
    return "-" if rss_bytes is None else f"{rss_bytes / 2**20:.0f} MiB"


def render_table(rows: Sequence[ServiceStatus]) -> str:
    """The status table, with a total resident memory line."""
    cells = [
        (
            row.name,
            row.state,
            row.url,
            str(row.pid or "-"),
            format_memory(row.rss_bytes),
            str(row.log),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [HEADERS, *cells]) for i in range(len(HEADERS))]
    lines = [
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
        for line in [HEADERS, *cells]
    ]
    total = sum(row.rss_bytes or 0 for row in rows)
    running = sum(1 for row in rows if row.pid)
    lines.append(f"{running} running, total resident memory {format_memory(total)}")
    lines += [f"{row.name}: {row.detail}" for row in rows if row.detail]
    return "\n".join(lines)


def as_json(rows: Sequence[ServiceStatus]) -> str:
    return json.dumps(
        [
            {
                "service": row.name,
                "state": row.state,
                "url": row.url,
                "pid": row.pid,
                "rss_bytes": row.rss_bytes,
                "log": str(row.log),
                "detail": row.detail,
            }
            for row in rows
        ],
        indent=2,
    )


def run(args: argparse.Namespace) -> int:
    rows = Platform.from_env().status(services_or_error(args.services))
    print(as_json(rows) if args.json else render_table(rows))
    return 0
