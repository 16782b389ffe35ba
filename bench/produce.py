"""Producer throughput per use case, beside raw confluent-kafka on the same bytes, in one run.

For each use case, on fresh 3-partition topics:
- `coelho`: generation + JSON serialization + keyed produce with delivery reports and
  Prometheus metrics + final flush (`coelho_pipelines.producer.run_streams`);
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
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from coelho_pipelines.platform import Platform, ensure_topics, free_port  # noqa: E402
from coelho_pipelines.producer import KafkaSink, Stream, run_streams  # noqa: E402
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
    with tempfile.TemporaryDirectory(prefix="coelho-bench-") as home:
        ports = {key: free_port() for key in ("kafka", "kafka_controller")}
        lib = Path(os.environ.get("COELHO_KAFKA_LIB", REPO / ".coelho" / "lib" / "kafka"))
        platform = Platform(
            Path(home), ports=ports, kafka_lib=lib, project_dir=REPO, tie_to_parent=True
        )
        print(f"starting Kafka on 127.0.0.1:{ports['kafka']} ...", flush=True)
        platform.start("kafka")
        try:
            yield f"127.0.0.1:{ports['kafka']}"
        finally:
            platform.down(report=lambda _line: None)


def fresh_topic(bootstrap: str, label: str) -> str:
    topic = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], partitions=3)
    return topic


def timed(fn) -> tuple[float, float]:  # noqa: ANN001
    """(wall seconds, process CPU seconds) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_coelho(spec, bootstrap: str, count: int, seed: int) -> tuple[float, float]:  # noqa: ANN001
    spec = dataclasses.replace(spec, topic=fresh_topic(bootstrap, spec.key))
    stream = Stream(spec, spec.generator(seed=seed, start=START), rate=0, count=count)
    sink = KafkaSink(KafkaResource(bootstrap_servers=bootstrap).producer_config())
    sink.check([spec.topic])
    undelivered = []
    result = timed(lambda: undelivered.append(run_streams([stream], sink)))
    assert undelivered == [0] and stream.stats.acked == count, (undelivered, stream.stats)
    return result


def serialized(spec, count: int, seed: int) -> list[tuple[bytes, bytes]]:  # noqa: ANN001
    generator = spec.generator(seed=seed, start=START)
    key = spec.key_field
    return [(e[key].encode(), orjson.dumps(e)) for e in generator.take(count)]


def bench_gen(spec, count: int, seed: int) -> tuple[float, float]:  # noqa: ANN001
    generator = spec.generator(seed=seed, start=START)
    key, dumps, next_event = spec.key_field, orjson.dumps, generator.__next__

    def run() -> None:
        for _ in range(count):
            event = next_event()
            event[key].encode()
            dumps(event)

    return timed(run)


def bench_raw(spec, bootstrap: str, messages: list[tuple[bytes, bytes]]) -> tuple[float, float]:  # noqa: ANN001
    from confluent_kafka import Producer

    topic = fresh_topic(bootstrap, f"raw_{spec.key}")
    producer = Producer(KafkaResource(bootstrap_servers=bootstrap).producer_config())
    producer.list_topics(topic, timeout=10)

    def run() -> None:
        produce, poll = producer.produce, producer.poll
        for i, (key, value) in enumerate(messages):
            while True:
                try:
                    produce(topic, value, key)
                    break
                except BufferError:
                    poll(0.05)
            if i % 500 == 0:
                poll(0)
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
            raw_wall, raw_cpu = bench_raw(spec, bootstrap, messages)
            del messages
            gen_wall, gen_cpu = bench_gen(spec, args.count, args.seed)
            ours_wall, ours_cpu = bench_coelho(spec, bootstrap, args.count, args.seed)
            rows.append((spec.key, args.count, gen_wall, ours_wall, ours_cpu, raw_wall, raw_cpu))
    header = (
        f"{'use case':8} {'gen+json ev/s':>14} {'coelho ev/s':>12} {'coelho cpu us/ev':>17} "
        f"{'raw ev/s':>11} {'raw cpu us/ev':>14} {'coelho/raw':>11}  target"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for key, n, gen_wall, ours_wall, ours_cpu, raw_wall, raw_cpu in rows:
        ours, raw = n / ours_wall, n / raw_wall
        ok &= ours >= TARGET
        print(
            f"{key:8} {n / gen_wall:14,.0f} {ours:12,.0f} {ours_cpu / n * 1e6:17.1f} "
            f"{raw:11,.0f} {raw_cpu / n * 1e6:14.1f} {ours / raw:11.2f}  "
            f"{'ok' if ours >= TARGET else 'BELOW'} (>= {TARGET:,}/s)"
        )
    load = os.getloadavg()[0]
    print(f"\nload average during the run: {load:.1f} on {os.cpu_count()} cores")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
