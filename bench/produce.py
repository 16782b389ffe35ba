"""Producer throughput per use case, beside raw confluent-kafka on the same bytes, in one run.

For each use case, on fresh 3-partition topics:
- `coelho`: generation + JSON serialization + keyed produce with delivery reports and
  Prometheus metrics + final flush (`coelho.producer.run_streams`);
- `raw`: a bare confluent-kafka Producer (same config) producing the same pre-serialized
  keys and values, then flush;
- `gen`: generation + serialization alone (no Kafka).
Prints events/s of each and the ratio coelho/raw. Target: coelho >= 20,000 events/s.

Kafka: `--bootstrap`, else KAFKA_BOOTSTRAP_SERVERS, else a broker started here with the
platform package (free ports, temp dir) and stopped at the end.

    .venv/bin/python bench/produce.py [--count 200000] [--use-case tfd]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from coelho.platform import ensure_topics  # noqa: E402
from coelho.producer import KafkaSink, Stream, run_streams  # noqa: E402
from coelho_pipelines.kafka_produce import produce_retrying  # noqa: E402
from coelho_pipelines.resources.kafka import KafkaResource  # noqa: E402
from coelho_pipelines.use_cases import all_specs, get_spec  # noqa: E402

TARGET = 20_000
START = "2025-03-03T00:00:00+00:00"


@contextlib.contextmanager
def kafka(bootstrap: str | None) -> Iterator[str]:
    """A bootstrap address: the given one, the environment's, or a broker started here."""
    bootstrap = bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        yield bootstrap
        return
    from coelho.platform.ephemeral import temporary_platform

    print("starting Kafka ...", flush=True)
    with temporary_platform("kafka") as platform:
        yield f"127.0.0.1:{platform.ports['kafka']}"


def fresh_topic(bootstrap: str, label: str) -> str:
    topic = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], partitions=3)
    return topic


@dataclasses.dataclass
class Timing:
    wall: float  # seconds
    cpu: float  # process CPU seconds (all threads, librdkafka's included)
    main: float  # CPU seconds of the Python thread (what one core must sustain)


def timed(fn) -> Timing:
    wall, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
    fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - main)


def bench_coelho(spec, bootstrap: str, count: int, seed: int) -> Timing:
    spec = dataclasses.replace(spec, topic=fresh_topic(bootstrap, spec.key))
    stream = Stream(spec, spec.generator(seed=seed, start=START), rate=0, count=count)
    sink = KafkaSink(KafkaResource(bootstrap_servers=bootstrap).producer_config())
    sink.check([spec.topic])
    undelivered = []
    result = timed(lambda: undelivered.append(run_streams([stream], sink)))
    assert undelivered == [0] and stream.stats.acked == count, (undelivered, stream.stats)
    return result


def serialized(spec, count: int, seed: int) -> list[tuple[bytes, bytes]]:
    generator = spec.generator(seed=seed, start=START)
    key = spec.key_field
    return [(e[key].encode(), orjson.dumps(e)) for e in generator.take(count)]


def bench_gen(spec, count: int, seed: int) -> Timing:
    generator = spec.generator(seed=seed, start=START)
    key, dumps, next_event = spec.key_field, orjson.dumps, generator.__next__

    def run() -> None:
        for _ in range(count):
            event = next_event()
            event[key].encode()
            dumps(event)

    return timed(run)


def bench_raw(spec, bootstrap: str, messages: list[tuple[bytes, bytes]]) -> Timing:
    from confluent_kafka import Producer

    topic = fresh_topic(bootstrap, f"raw_{spec.key}")
    producer = Producer(KafkaResource(bootstrap_servers=bootstrap).producer_config())
    producer.list_topics(topic, timeout=10)

    def run() -> None:
        for i, (key, value) in enumerate(messages):
            produce_retrying(producer, topic, value, key)
            if i % 500 == 0:
                producer.poll(0)
        assert producer.flush(60) == 0

    return timed(run)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers")
    parser.add_argument("--count", type=int, default=200_000, help="events per use case")
    parser.add_argument("--use-case", default="all", help="tfd, eta, ecci or all")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    specs = list(all_specs()) if args.use_case == "all" else [get_spec(args.use_case)]
    rows = []
    with kafka(args.bootstrap) as bootstrap:
        print(f"Kafka {bootstrap}; {args.count:,} events per use case\n", flush=True)
        for spec in specs:
            messages = serialized(spec, args.count, args.seed)
            raw = bench_raw(spec, bootstrap, messages)
            del messages
            gen = bench_gen(spec, args.count, args.seed)
            ours = bench_coelho(spec, bootstrap, args.count, args.seed)
            rows.append((spec.key, args.count, gen, ours, raw))
    header = (
        f"{'use case':8} {'gen+json':>10} {'coelho':>9} {'raw':>9} {'coelho/raw':>10} "
        f"{'coelho cpu':>10} {'main thr':>9} {'raw cpu':>8} {'1-core cap':>10}  target"
    )
    print("events/s (wall clock) and CPU microseconds per event; 1-core capacity =")
    print("events per CPU-second of the producing Python thread.\n")
    print(header)
    print("-" * len(header))
    ok = True
    for key, n, gen, ours, raw in rows:
        rate, raw_rate, capacity = n / ours.wall, n / raw.wall, n / ours.main
        ok &= rate >= TARGET
        verdict = "ok" if rate >= TARGET else "below" + (" (cpu ok)" if capacity >= TARGET else "")
        print(
            f"{key:8} {n / gen.wall:10,.0f} {rate:9,.0f} {raw_rate:9,.0f} {rate / raw_rate:10.2f} "
            f"{ours.cpu / n * 1e6:10.1f} {ours.main / n * 1e6:9.1f} {raw.cpu / n * 1e6:8.1f} "
            f"{capacity:10,.0f}  {verdict}"
        )
    print(
        f"\ntarget >= {TARGET:,} events/s per use case on one core; load average now "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (others' work shares the CPU)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
