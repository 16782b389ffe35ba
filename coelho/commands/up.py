"""`coelho up`: start the local platform (or a subset) and report every service."""

from __future__ import annotations

import argparse

from coelho.commands.status import add_services_argument, render_table, services_or_error
from coelho.platform import Platform


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "up",
        help="start the local platform (Kafka, Redis, MLflow, Dagster, API, producers)",
        description="Start the local services that are not running yet, wait until each answers "
        "its health check, create the Kafka topics (3 partitions, 7-day retention), then print "
        "every service with its URL and log file. State lives under COELHO_HOME (default "
        ".coelho); ports come from COELHO_<SERVICE>_PORT. Running `up` again is safe: running "
        "services are reported, not restarted, and data is kept.",
    )
    add_services_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coelho.cli import CommandError

    names = services_or_error(args.services)
    platform = Platform.from_env()
    failures = platform.up(names, report=lambda line: print(line, flush=True))
    print()
    print(render_table(platform.status(names)))
    if failures:
        raise CommandError(" | ".join(failures))
    return 0
