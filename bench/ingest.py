"""Ingestion benchmark: Kafka -> Delta throughput beside consume-only, SQL group-by latency
(DuckDB engine vs. Polars scan_delta) and event-to-queryable latency with continuous ingestion.

    .venv/bin/python bench/ingest.py [--events 200000] [--rounds 3] [--sql-rows 1000000]
        [--latency-seconds 60]

Starts a private Kafka broker (as `coelho up` does) on free ports in a temp dir unless
--bootstrap-servers is given. Every figure is measured side by side in this one run.
Targets (issue 3): ingest >= 0.8x consume-only and >= 50,000 events/s; DuckDB group-by no
slower than Polars; an event produced is committed to Delta within a few seconds (issue 13).
Throughput is the best of `--rounds` rounds (consume-only, then ingest, of the same topic) after
one untimed warm-up ingest; the median of the rounds' own ratios is printed beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coelho_pipelines import naming  # noqa: E402
from coelho_pipelines.events.validate import BatchDecoder  # noqa: E402
from coelho_pipelines.ingestion.consume import (  # noqa: E402
    ConsumeStats,
    plan_ranges,
    prefetch,
    read_ranges,
)
from coelho_pipelines.ingestion.pipeline import ingest  # noqa: E402
from coelho_pipelines.kafka_produce import produce_retrying  # noqa: E402
from coelho_pipelines.lakehouse.tables import (  # noqa: E402
    PARTITION_COLUMN,
    ensure_table,
    raw_schema,
    with_ingestion_columns,
)
from coelho_pipelines.resources import KafkaResource, LakehouseResource  # noqa: E402
from coelho_pipelines.use_cases import get_spec  # noqa: E402

GROUP_BY_SQL = (
    "SELECT product_category, payment_method, count(*) AS n, avg(amount) AS avg_amount, "
    "sum(is_fraud) AS frauds FROM data GROUP BY product_category, payment_method"
)


@contextlib.contextmanager
def kafka_broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    from coelho.platform.ephemeral import temporary_platform

    with temporary_platform("kafka") as platform:
        yield f"127.0.0.1:{platform.ports['kafka']}"


def fresh_spec(bootstrap: str):
    from coelho.platform.kafka import ensure_topics

    spec = get_spec("tfd")
    topic = f"bench_tfd_{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], partitions=3)
    return dataclasses.replace(spec, topic=topic)


def generate_values(spec, n: int) -> tuple[list[bytes], list[bytes]]:
    generator = spec.generator(seed=42)
    values, keys = [], []
    for _ in range(n):
        event = next(generator)
        values.append(orjson.dumps(event))
        keys.append(str(event[spec.key_field]).encode())
    return values, keys


def produce(bootstrap: str, topic: str, values: list[bytes], keys: list[bytes], times=None) -> None:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 20,
            "compression.type": "lz4",
            "batch.size": 1 << 20,
        }  # fmt: skip
    )

    def delivered(error, message) -> None:
        if error is None and times is not None:
            times[(message.partition(), message.offset())] = time.time()

    for value, key in zip(values, keys, strict=True):
        produce_retrying(producer, topic, value, key, on_delivery=delivered)
        producer.poll(0)
    producer.flush(120)


def consume_only(kafka: KafkaResource, topic: str) -> tuple[int, float]:
    """Read the whole topic with the ingestion's own reader, touching every value. Timed like
    `ingest` times itself: from asking Kafka for the offsets to the last message."""
    started = time.perf_counter()
    ends = kafka.end_offsets(topic)
    ranges = plan_ranges(ends, {})
    consumer = kafka.consumer(
        "coelho-bench-consume",
        **{"fetch.max.bytes": 64 << 20, "queued.max.messages.kbytes": 256 << 10},
    )
    count = size = 0
    try:
        for batch in prefetch(read_ranges(consumer, topic, ranges, 50_000, 30.0, ConsumeStats())):
            count += len(batch)
            size += sum(len(v) for v in batch.values if v)
    finally:
        consumer.close()
    return count, time.perf_counter() - started


def throughput(kafka: KafkaResource, spec, rounds: int) -> dict[str, float]:
    """Consume-only then ingest of the whole topic, `rounds` times, after one untimed warm-up
    ingest (imports, Arrow kernels and the Delta writer load once per process, as in a run's
    start-up, not per event)."""
    warm_up = LakehouseResource(uri=tempfile.mkdtemp(prefix="bench-lake-warm-up-"))
    ingest(spec, kafka, warm_up, max_events=5_000)
    consume_rates, ingest_rates = [], []
    for i in range(rounds):
        count, seconds = consume_only(kafka, spec.topic)
        consume_rates.append(count / seconds)
        lake = LakehouseResource(uri=tempfile.mkdtemp(prefix=f"bench-lake-{i}-"))
        result = ingest(spec, kafka, lake)
        assert result.events + result.dead_letters == count, (result.events, count)
        ingest_rates.append(result.messages_read / result.seconds)
        print(
            f"  round {i + 1}: consume-only {count / seconds:>10,.0f} msg/s | ingest "
            f"{ingest_rates[-1]:>10,.0f} msg/s ({result.commits} commits, {result.seconds:.2f}s)"
            f" | ratio {ingest_rates[-1] / consume_rates[-1]:.2f}"
        )
    best_consume, best_ingest = max(consume_rates), max(ingest_rates)
    per_round = [i / c for i, c in zip(ingest_rates, consume_rates, strict=True)]
    return {
        "consume": best_consume,
        "ingest": best_ingest,
        "ratio": best_ingest / best_consume,
        "median_round_ratio": statistics.median(per_round),
    }


def decode_rate(spec, values: list[bytes], batch: int = 50_000) -> float:
    """Validation and Arrow conversion alone (no Kafka, no Delta), in ingestion-sized batches."""
    decoder = BatchDecoder(spec)
    decoder.decode(values[:1000])  # warm up lazy imports
    started = time.perf_counter()
    for i in range(0, len(values), batch):
        decoder.decode(values[i : i + batch])
    return len(values) / (time.perf_counter() - started)


def build_sql_table(spec, rows: int, base: int = 100_000) -> str:
    """A raw table of `rows` rows: `base` generated events, repeated with fresh ids."""
    from deltalake import write_deltalake

    values, _ = generate_values(spec, min(rows, base))
    decoded = BatchDecoder(spec).decode(values)
    events = decoded.events
    root = tempfile.mkdtemp(prefix="bench-sql-")
    uri = naming.raw_table_uri(root, spec)
    ensure_table(uri, raw_schema(spec), [PARTITION_COLUMN])
    written, copy = 0, 0
    while written < rows:
        take = min(events.num_rows, rows - written)
        part = events.slice(0, take)
        ids = pc.binary_join_element_wise(
            part.column(spec.id_field), pa.scalar(f"-{copy}"), pa.scalar("")
        )
        part = part.set_column(0, spec.id_field, ids)
        n = part.num_rows
        table = with_ingestion_columns(spec, part, [0] * n, list(range(written, written + n)))
        write_deltalake(uri, table, mode="append")
        written += n
        copy += 1
    return root


def sql_latency(lakehouse_root: str, spec, repeats: int = 5) -> dict[str, float]:
    import polars as pl

    from coelho_pipelines.sql_engine import run_query

    uri = naming.raw_table_uri(lakehouse_root, spec)
    first = time.perf_counter()
    result = run_query(lakehouse_root, spec, GROUP_BY_SQL)
    cold = time.perf_counter() - first
    duck, polars = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run_query(lakehouse_root, spec, GROUP_BY_SQL)
        duck.append(time.perf_counter() - started)
        started = time.perf_counter()
        frame = (
            pl.scan_delta(uri)
            .group_by("product_category", "payment_method")
            .agg(
                pl.len().alias("n"),
                pl.col("amount").mean().alias("avg_amount"),
                pl.col("is_fraud").sum().alias("frauds"),
            )
            .collect()
        )
        polars.append(time.perf_counter() - started)
    assert frame.height == result.row_count, (frame.height, result.row_count)
    total = run_query(lakehouse_root, spec, "SELECT count(*) FROM data").rows[0][0]
    return {
        "rows": total,
        "duckdb_cold_ms": cold * 1000,
        "duckdb_ms": statistics.median(duck) * 1000,
        "polars_ms": statistics.median(polars) * 1000,
    }


def queryable_latency(
    kafka: KafkaResource,
    spec,
    seconds: float,
    rate: float,
    interval: float,
) -> dict[str, float]:
    """Produce at `rate` events/s while continuous ingestion (what `<uc>_ingestion_sensor`
    keeps running) commits every `interval` s; an event's latency is from its Kafka delivery
    to the moment the raw table's committed versions cover its offset (a reader opening the
    table then sees it), polled every 0.2 s."""
    from deltalake import DeltaTable

    from coelho_pipelines.ingestion.continuous import ContinuousIngestion, ContinuousSettings
    from coelho_pipelines.lakehouse.tables import app_id

    lake = LakehouseResource(uri=tempfile.mkdtemp(prefix="bench-latency-"))
    values, keys = generate_values(spec, int(seconds * rate) + 1)
    produced: dict[tuple[int, int], float] = {}
    stop, done = threading.Event(), threading.Event()

    def producer() -> None:
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 5,
                      "enable.idempotence": True})  # fmt: skip

        def delivered(error, message) -> None:
            if error is None:
                produced[(message.partition(), message.offset())] = time.time()

        start = time.perf_counter()
        for i, (value, key) in enumerate(zip(values, keys, strict=True)):
            if stop.is_set():
                break
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            p.produce(spec.topic, value=value, key=key, on_delivery=delivered)
            p.poll(0)
        p.flush(30)
        done.set()

    settings = ContinuousSettings(commit_interval_seconds=interval, checks_interval_seconds=0)
    ingestion = ContinuousIngestion(spec, kafka, lake, settings)
    ingester = threading.Thread(
        target=lambda: list(ingestion.run(stop.is_set)), name="continuous", daemon=True
    )
    ingester.start()
    threading.Thread(target=producer, daemon=True).start()
    latencies: list[float] = []
    seen = {p: 0 for p in range(3)}
    uri = lake.table_uri(naming.raw_table_name(spec))
    deadline = time.monotonic() + seconds + 60
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if not DeltaTable.is_deltatable(uri):
            continue
        table, now = DeltaTable(uri), time.time()
        for p in seen:
            version = table.transaction_version(app_id(spec.topic, p)) or 0
            latencies += [now - produced[(p, o)] for o in range(seen[p], version)
                          if (p, o) in produced]  # fmt: skip
            seen[p] = max(seen[p], version)
        if done.is_set() and len(latencies) >= len(produced):
            break
    stop.set()
    ingester.join(timeout=60)
    latencies.sort()
    return {
        "events": len(latencies),
        "p50_s": latencies[len(latencies) // 2],
        "p95_s": latencies[int(len(latencies) * 0.95)],
        "max_s": latencies[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sql-rows", type=int, default=1_000_000)
    parser.add_argument("--latency-seconds", type=float, default=60.0)
    parser.add_argument("--latency-rate", type=float, default=500.0)
    parser.add_argument("--commit-interval", type=float, default=2.0)
    parser.add_argument("--bootstrap-servers", default=None)
    args = parser.parse_args()

    with kafka_broker(args.bootstrap_servers) as bootstrap:
        kafka = KafkaResource(bootstrap_servers=bootstrap)
        spec = fresh_spec(bootstrap)
        print(f"generating and producing {args.events:,} tfd events to {spec.topic} ...")
        values, keys = generate_values(spec, args.events)
        produce(bootstrap, spec.topic, values, keys)
        print("throughput (same topic, same reader, best of rounds):")
        figures = throughput(kafka, spec, args.rounds)
        print(
            f"  consume-only {figures['consume']:,.0f} msg/s, ingest {figures['ingest']:,.0f} "
            f"msg/s, ratio {figures['ratio']:.3f} (median of the rounds' ratios "
            f"{figures['median_round_ratio']:.3f}; targets: >= 0.8 and >= 50,000/s)"
        )
        print(f"  breakdown: validate+convert alone {decode_rate(spec, values):,.0f} msg/s")

        print(f"building a {args.sql_rows:,}-row table for the group-by ...")
        root = build_sql_table(spec, args.sql_rows)
        sql = sql_latency(root, spec)
        print(
            f"  group-by over {sql['rows']:,} rows: DuckDB engine {sql['duckdb_ms']:.0f} ms "
            f"(first call {sql['duckdb_cold_ms']:.0f} ms), Polars scan_delta "
            f"{sql['polars_ms']:.0f} ms, ratio {sql['duckdb_ms'] / sql['polars_ms']:.2f}"
        )

        latency_spec = fresh_spec(bootstrap)
        print(
            f"event-to-queryable: {args.latency_rate:g} events/s for {args.latency_seconds:g}s, "
            f"continuous ingestion committing every {args.commit_interval:g}s ..."
        )
        lat = queryable_latency(
            kafka, latency_spec, args.latency_seconds, args.latency_rate, args.commit_interval
        )
        print(
            f"  {lat['events']:,} events: p50 {lat['p50_s']:.1f}s, p95 {lat['p95_s']:.1f}s, "
            f"max {lat['max_s']:.1f}s (target p95 <= 10s through the API, see bench/soak.py)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
