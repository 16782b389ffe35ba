"""`coelho down`: stop the local platform cleanly, keeping its data."""

from __future__ import annotations

import argparse

from coelho.commands.status import add_services_argument, services_or_error
from coelho.platform import Platform


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "down",
        help="stop the local services (data under COELHO_HOME is kept)",
        description="Stop the running local services in reverse start order: SIGTERM, a grace "
        "period, then SIGKILL for anything left. Data under COELHO_HOME (default .coelho) is "
        "kept, so the next `coelho up` continues where this one stopped.",
    )
    add_services_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = services_or_error(args.services)
    stopped = Platform.from_env().down(names, report=lambda line: print(line, flush=True))
    if not stopped:
        print("nothing was running")
    return 0
