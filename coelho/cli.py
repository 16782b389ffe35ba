"""The `coelho` command: one subcommand module per verb under `coelho.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module defines `register(subparsers)`, adding its parser with `func=` set.
COMMAND_MODULES: list[str] = ["up", "down", "status", "serve", "produce", "ingest", "sql"]


class CommandError(Exception):
    """An error to report to the user as one line, with a non-zero exit."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coelho",
        description="Coelho: a real-time MLOps platform on Dagster, Kafka, River and MLflow.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(f"coelho.commands.{module_name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CommandError as error:
        print(f"coelho {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"coelho {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # `python -m coelho.cli`: run the imported module, so commands raise the same
    # CommandError class that `main` catches (this file is also `__main__` here).
    from coelho.cli import main as _main

    sys.exit(_main())
