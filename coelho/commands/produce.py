"""`coelho produce`: stream synthetic events of one or all use cases into Kafka (or stdout)."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from coelho_pipelines.settings import Settings, port

DEFAULT_EVENT_RATE = 1.0  # simulated events per second when --rate is 0
CONNECT_TIMEOUT = 10.0


def register(subparsers: argparse._SubParsersAction) -> None:
    from coelho_pipelines.use_cases import use_case_keys

    parser = subparsers.add_parser(
        "produce",
        help="stream synthetic events of a use case into its Kafka topic",
        description="Generate seeded synthetic events (see README: generators) and produce "
        "them to Kafka (KAFKA_BOOTSTRAP_SERVERS), keyed, JSON, idempotent with acks=all; or "
        "write them as JSON lines with --stdout. Progress goes to stderr.",
    )
    parser.add_argument(
        "--use-case", default="all", choices=[*use_case_keys(), "all"], help="(default all)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=10.0,
        help="events per second per use case; 0 = as fast as possible (default 10)",
    )
    parser.add_argument("--count", type=int, default=None, help="stop after N events per use case")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument(
        "--drift-at",
        type=int,
        default=None,
        help="concept drift from event N on (tfd: new fraud pattern; eta: trips 40%% "
        "slower; ecci: 3x time on page)",
    )
    parser.add_argument(
        "--fraud-rate", type=float, default=None, help="tfd: share of fraud (default 0.01)"
    )
    parser.add_argument(
        "--start",
        default=None,
        help="event time of the first event, ISO-8601 (default: now; with --rate 0 and "
        "--count, early enough that the stream ends about now). Same seed and start give "
        "the same stream.",
    )
    parser.add_argument(
        "--event-rate",
        type=float,
        default=None,
        help="events per simulated second of event time (default: --rate, so event time "
        f"follows the clock; {DEFAULT_EVENT_RATE} with --rate 0)",
    )
    parser.add_argument("--stdout", action="store_true", help="write JSON lines to stdout")
    parser.add_argument(
        "--bootstrap-servers", default=None, help="Kafka (default KAFKA_BOOTSTRAP_SERVERS)"
    )
    parser.add_argument(
        "--topic", default=None, help="produce to this topic instead (one use case only)"
    )
    parser.add_argument(
        "--create-topics", action="store_true", help="create missing topics (3 partitions)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus /metrics port; 0 disables (default COELHO_PRODUCERS_PORT or 9100 "
        "when producing to Kafka, off with --stdout)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=CONNECT_TIMEOUT,
        help=f"seconds to wait for Kafka before giving up (default {CONNECT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=None,
        help="seconds between progress lines when stderr is not a terminal (default 10)",
    )
    parser.set_defaults(func=run)


def _fail(message: str) -> Any:
    from coelho.cli import CommandError

    raise CommandError(message)


def _event_time(args: argparse.Namespace) -> tuple[datetime, float]:
    """(start, simulated events per second) from the options."""
    event_rate = args.event_rate or (args.rate if args.rate > 0 else DEFAULT_EVENT_RATE)
    if event_rate <= 0:
        _fail("--event-rate must be positive")
    if args.start:
        try:
            start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
        except ValueError:
            _fail(f"--start is not an ISO-8601 time: {args.start!r}")
        return (start if start.tzinfo else start.replace(tzinfo=UTC)), event_rate
    now = datetime.now(UTC).replace(microsecond=0)
    if args.rate <= 0 and args.count:
        return now - timedelta(seconds=args.count / event_rate), event_rate
    return now, event_rate


def build_generator(spec, seed: int, common: dict[str, Any], specific: dict[str, Any]):
    """`spec.generator` with the `specific` options its generator accepts.

    Returns (generator, names of the `specific` options it does not accept).
    """
    generator = spec.generator(seed=seed, **common)
    accepted = inspect.signature(type(generator)).parameters
    options = {k: v for k, v in specific.items() if k in accepted}
    if options:
        generator = spec.generator(seed=seed, **common, **options)
    return generator, [k for k in specific if k not in accepted]


def _streams(args: argparse.Namespace, specs, common: dict[str, Any]) -> list:
    from coelho.producer import Stream

    specific = {"drift_at": args.drift_at, "fraud_rate": args.fraud_rate}
    specific = {k: v for k, v in specific.items() if v is not None}
    streams = []
    for spec in specs:
        generator, unused = build_generator(spec, args.seed, common, specific)
        if unused and len(specs) == 1:
            flags = ", ".join("--" + k.replace("_", "-") for k in unused)
            _fail(f"{flags} does not apply to {spec.key}")
        streams.append(Stream(spec, generator, args.rate, args.count))
    return streams


class Progress:
    """Sent/acked counts, rates and errors: one updating line on a terminal, lines otherwise."""

    def __init__(self, out: IO[str], interval: float | None = None) -> None:
        self.out = out
        self.tty = out.isatty()
        self.interval = interval if interval is not None else (0.5 if self.tty else 10.0)
        self.started = self.last_time = time.monotonic()
        self.last_sent: dict[str, int] = {}
        self.printed = self.started

    def line(self, streams, final: bool = False) -> str:
        now = time.monotonic()
        parts = []
        elapsed = max(now - (self.started if final else self.last_time), 1e-9)
        for stream in streams:
            stats = stream.stats
            previous = 0 if final else self.last_sent.get(stream.spec.key, 0)
            rate = (stats.sent - previous) / elapsed
            part = f"{stream.spec.key} {stats.sent:,} sent {stats.acked:,} acked {rate:,.0f}/s"
            if stats.errors:
                part += f" {stats.errors:,} errors"
            parts.append(part)
            self.last_sent[stream.spec.key] = stats.sent
        self.last_time = now
        return " | ".join(parts)

    def __call__(self, streams, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.printed < self.interval:
            return
        self.printed = now
        text = self.line(streams, final)
        if final:
            text = f"done in {now - self.started:,.1f}s: {text}"
        if self.tty:
            self.out.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.out.write(text + "\n")
        self.out.flush()


def _serve_metrics(args: argparse.Namespace) -> None:
    from coelho_pipelines.telemetry import serve_metrics

    metrics_port = args.metrics_port
    if metrics_port is None:
        if args.stdout:
            return
        metrics_port = port("producers")
    if metrics_port == 0:
        return
    try:
        serve_metrics(metrics_port)
    except OSError as error:
        if args.metrics_port is not None:
            _fail(f"cannot serve metrics on port {metrics_port}: {error.strerror or error}")
        print(
            f"coelho produce: metrics port {metrics_port} busy, metrics disabled "
            "(choose one with --metrics-port)",
            file=sys.stderr,
        )


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace) -> int:
    from coelho.producer import LinesSink, ProducerError, run_streams
    from coelho_pipelines.use_cases import all_specs, get_spec

    if args.rate < 0:
        _fail("--rate must be >= 0 (0 = as fast as possible)")
    if args.count is not None and args.count < 0:
        _fail("--count must be >= 0")
    if args.fraud_rate is not None and not 0 <= args.fraud_rate <= 1:
        _fail("--fraud-rate must be within 0..1")
    specs = list(all_specs()) if args.use_case == "all" else [get_spec(args.use_case)]
    if args.topic:
        if len(specs) != 1:
            _fail("--topic needs a single --use-case")
        specs = [dataclasses.replace(specs[0], topic=args.topic)]
    start, event_rate = _event_time(args)
    streams = _streams(args, specs, {"start": start, "events_per_second": event_rate})
    stop = threading.Event()
    sink = LinesSink(sys.stdout.buffer) if args.stdout else _kafka_sink(args, specs, stop)
    _serve_metrics(args)
    _stop_on_signals(stop)
    progress = Progress(sys.stderr, args.progress_interval)
    try:
        undelivered = run_streams(streams, sink, stop, on_progress=progress)
    except BrokenPipeError:  # e.g. `coelho produce --stdout | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ProducerError as error:
        _fail(str(error))
    progress(streams, final=True)
    errors = sum(s.stats.errors for s in streams)
    if undelivered or errors:
        last = next((s.stats.last_error for s in streams if s.stats.last_error), None)
        last = last or (sink.errors[-1] if getattr(sink, "errors", None) else "flush timed out")
        _fail(f"{errors:,} failed and {undelivered:,} undelivered messages (last error: {last})")
    return 0


def _kafka_sink(args: argparse.Namespace, specs, stop: threading.Event):
    from coelho.producer import KafkaSink, ProducerError
    from coelho_pipelines.resources.kafka import KafkaResource

    bootstrap = args.bootstrap_servers or Settings.from_env().kafka_bootstrap_servers
    topics = [spec.topic for spec in specs]
    if args.create_topics:
        from coelho.platform.kafka import ensure_topics
        from coelho.platform.process import PlatformError

        try:
            ensure_topics(bootstrap, topics, timeout=args.connect_timeout)
        except PlatformError as error:
            _fail(str(error))
        except Exception as error:  # noqa: BLE001 - an unreachable broker, in one line
            _fail(f"cannot reach Kafka at {bootstrap}: {error}")
    sink = KafkaSink(KafkaResource(bootstrap_servers=bootstrap).producer_config(), stop)
    try:
        sink.check(topics, timeout=args.connect_timeout)
    except ProducerError as error:
        _fail(str(error))
    return sink
