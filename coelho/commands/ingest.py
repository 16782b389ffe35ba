"""`coelho ingest`: one ingestion pass from Kafka into Delta (the code path of `<uc>_ingestion`),
or with `--continuous` the long-lived ingestion `<uc>_ingestion_sensor` keeps running."""

from __future__ import annotations

import argparse
import dataclasses
import sys

DEFAULT_BATCH_SIZE = 50_000


def register(subparsers: argparse._SubParsersAction) -> None:
    from coelho_pipelines.use_cases import use_case_keys

    parser = subparsers.add_parser(
        "ingest",
        help="ingest new Kafka messages of a use case into its Delta tables, exactly once",
        description="Read every offset not yet in the use case's raw Delta table (or up to "
        "--max-events of them), validate each event, append valid ones to <lakehouse>/delta/"
        "<topic> and the rest to <topic>_dead_letters, each batch and its offsets in one Delta "
        "commit. Safe to interrupt and re-run: nothing is lost or written twice.",
    )
    parser.add_argument(
        "--use-case", required=True, choices=[*use_case_keys(), "all"], help="use case or all"
    )
    parser.add_argument(
        "--max-events", type=int, default=None, help="ingest at most N messages per use case"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"messages per Delta commit (default {DEFAULT_BATCH_SIZE:,})",
    )
    parser.add_argument(
        "--bootstrap-servers", default=None, help="Kafka (default KAFKA_BOOTSTRAP_SERVERS)"
    )
    parser.add_argument(
        "--lakehouse", default=None, help="lakehouse root URI (default COELHO_LAKEHOUSE_URI)"
    )
    parser.add_argument(
        "--topic",
        default=None,
        help="read this Kafka topic instead of the use case's own, into tables named after it "
        "(replays and tests; one use case only)",
    )
    parser.add_argument(
        "--continuous",
        action="store_true",
        help="keep consuming and commit every --commit-interval seconds until SIGINT/SIGTERM "
        "(what <uc>_ingestion_sensor keeps running in Dagster; one use case only)",
    )
    parser.add_argument(
        "--commit-interval",
        type=float,
        default=2.0,
        help="with --continuous: seconds between commits at most (default 2)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coelho.cli import CommandError
    from coelho_pipelines.ingestion.pipeline import ingest
    from coelho_pipelines.resources import KafkaResource, LakehouseResource
    from coelho_pipelines.use_cases import all_specs, get_spec

    if args.max_events is not None and args.max_events < 1:
        raise CommandError("--max-events must be at least 1")
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    kafka = KafkaResource.from_env()
    if args.bootstrap_servers:
        kafka = KafkaResource(bootstrap_servers=args.bootstrap_servers)
    lakehouse = LakehouseResource.from_env()
    if args.lakehouse:
        lakehouse = LakehouseResource(uri=args.lakehouse, storage_options=lakehouse.storage_options)
    specs = all_specs() if args.use_case == "all" else (get_spec(args.use_case),)
    if args.topic:
        if args.use_case == "all":
            raise CommandError("--topic needs one --use-case, not all")
        specs = (dataclasses.replace(specs[0], topic=args.topic),)

    def log(message: str) -> None:
        if not args.quiet:
            print(f"  {message}", file=sys.stderr, flush=True)

    if args.continuous:
        if len(specs) != 1:
            raise CommandError("--continuous needs one --use-case, not all")
        return _continuous(specs[0], kafka, lakehouse, args, log)
    for spec in specs:
        try:
            result = ingest(
                spec,
                kafka,
                lakehouse,
                max_events=args.max_events,
                batch_size=args.batch_size,
                log=log,
            )
        except Exception as error:
            raise CommandError(
                f"{spec.key}: {_describe(error, kafka.bootstrap_servers)}"
            ) from error
        print(result.summary(), flush=True)
        offsets = ", ".join(f"p{p}={o}" for p, o in sorted(result.committed_offsets.items()))
        print(f"  committed offsets: {offsets or 'none'}; lag {sum(result.lag.values())}")
        if result.reasons:
            print(f"  dead-letter reasons: {result.reasons}")
    return 0


def _continuous(spec, kafka, lakehouse, args: argparse.Namespace, log) -> int:
    import threading

    from coelho.cli import CommandError
    from coelho_pipelines.ingestion.continuous import ContinuousIngestion, ContinuousSettings
    from coelho_pipelines.keeper import stop_on_signals

    if args.commit_interval <= 0:
        raise CommandError("--commit-interval must be positive")
    settings = ContinuousSettings(
        commit_interval_seconds=args.commit_interval,
        max_events=args.batch_size,
        checks_interval_seconds=0,
    )
    ingestion = ContinuousIngestion(spec, kafka, lakehouse, settings, log=log)
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            for _report in ingestion.run(stop.is_set):
                pass
    except Exception as error:
        raise CommandError(f"{spec.key}: {_describe(error, kafka.bootstrap_servers)}") from error
    totals = ingestion.totals
    print(
        f"{spec.key}: {totals.events} events and {totals.dead_letters} dead letters committed "
        f"in {totals.commits} commits from {spec.topic} (continuous, stopped on a signal)",
        flush=True,
    )
    return 0


def _describe(error: Exception, bootstrap_servers: str) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if type(error).__name__ in {"KafkaException", "KafkaError"}:
        return f"Kafka at {bootstrap_servers}: {text}"
    return text
