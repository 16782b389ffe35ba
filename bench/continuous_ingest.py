"""Continuous ingestion's cost and latency: one `tfd_ingestion` run in continuous mode, in its
own process with the whole code location loaded (as a Dagster run worker has it), while a
producer sends `--rate` events/s.

    .venv/bin/python bench/continuous_ingest.py [--rate 10] [--seconds 120] [--warmup 20]

Prints the run process's resident memory (peak and at the end), the CPU cores it used over the
measured window, and produce-to-committed latency (Kafka delivery to the moment the raw table's
transaction versions cover the event's offset, polled every 0.1 s). Starts a private Kafka
broker on free ports unless --bootstrap-servers is given. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(args: argparse.Namespace) -> int:
    """The run process: the code location's `tfd_ingestion` job, continuous, until SIGTERM."""
    import dagster as dg

    from coelho_pipelines.definitions import build_definitions
    from coelho_pipelines.naming import ingestion_job_name, ingestion_op_name
    from coelho_pipelines.use_cases import get_spec

    spec = get_spec("tfd")
    job = build_definitions().resolve_job_def(ingestion_job_name(spec))
    instance = dg.DagsterInstance.local_temp(tempdir=args.instance_dir)
    result = job.execute_in_process(
        run_config={"ops": {ingestion_op_name(spec): {"config": {"continuous": True}}}},
        instance=instance,
        raise_on_error=False,
    )
    print(json.dumps({"success": result.success}), flush=True)
    return 0


def measure(args: argparse.Namespace, bootstrap: str) -> dict[str, float]:
    import psutil
    from confluent_kafka import Producer
    from deltalake import DeltaTable

    from coelho.platform.kafka import ensure_topics
    from coelho_pipelines.lakehouse.tables import app_id
    from coelho_pipelines.naming import raw_table_uri
    from coelho_pipelines.use_cases import get_spec

    spec = get_spec("tfd")
    ensure_topics(bootstrap, [spec.topic], partitions=3)
    work = Path(tempfile.mkdtemp(prefix="bench-continuous-"))
    (work / "dagster").mkdir()
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap,
               COELHO_LAKEHOUSE_URI=str(work / "lakehouse"), COELHO_HOME=str(work))  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", "--instance-dir", str(work / "dagster")], env=env
    )
    watched = psutil.Process(process.pid)
    produced: dict[tuple[int, int], float] = {}
    stop = threading.Event()

    def produce() -> None:
        import orjson

        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})

        def delivered(error, message) -> None:
            if error is None:
                produced[(message.partition(), message.offset())] = time.time()

        start = time.perf_counter()
        for i, event in enumerate(spec.generator(seed=11)):
            if stop.is_set():
                break
            time.sleep(max(0.0, start + i / args.rate - time.perf_counter()))
            producer.produce(spec.topic, orjson.dumps(event),
                             key=str(event.get(spec.key_field, "")).encode(),
                             on_delivery=delivered)  # fmt: skip
            producer.poll(0)
        producer.flush(10)

    threading.Thread(target=produce, daemon=True).start()
    uri = raw_table_uri(str(work / "lakehouse"), spec)
    seen = {p: 0 for p in range(3)}
    latencies: list[float] = []
    peak_rss = 0
    # the window opens `warmup` s after the first commit (process start and backlog excluded)
    measuring_from = end = float("inf")
    cpu_start = None
    while time.monotonic() < end:
        time.sleep(0.1)
        rss = watched.memory_info().rss
        if time.monotonic() >= measuring_from:
            peak_rss = max(peak_rss, rss)
            if cpu_start is None:
                times = watched.cpu_times()
                cpu_start = (times.user + times.system, time.monotonic())
        if not os.path.exists(os.path.join(uri, "_delta_log")):
            continue
        table, now = DeltaTable(uri), time.time()
        if measuring_from == float("inf"):
            measuring_from = time.monotonic() + args.warmup
            end = measuring_from + args.seconds
        for p in seen:
            version = table.transaction_version(app_id(spec.topic, p)) or 0
            if time.monotonic() >= measuring_from:
                latencies += [now - produced[(p, o)] for o in range(seen[p], version)
                              if (p, o) in produced]  # fmt: skip
            seen[p] = max(seen[p], version)
    times = watched.cpu_times()
    assert cpu_start is not None
    cores = (times.user + times.system - cpu_start[0]) / (time.monotonic() - cpu_start[1])
    end_rss = watched.memory_info().rss
    stop.set()
    process.terminate()
    process.wait(timeout=120)
    latencies.sort()
    if not latencies:
        raise SystemExit("no event was committed in the measured window")
    return {
        "events": len(latencies),
        "p50_s": latencies[len(latencies) // 2],
        "p95_s": latencies[int(len(latencies) * 0.95)],
        "max_s": latencies[-1],
        "cores": cores,
        "peak_rss_mib": peak_rss / 2**20,
        "end_rss_mib": end_rss / 2**20,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--bootstrap-servers", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--instance-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.bootstrap_servers:
        figures = measure(args, args.bootstrap_servers)
    else:
        from coelho.platform.ephemeral import temporary_platform

        with temporary_platform("kafka") as platform:
            figures = measure(args, f"127.0.0.1:{platform.ports['kafka']}")
    print(
        f"one continuous tfd ingestion run at {args.rate:g} events/s, {args.seconds:g}s measured "
        f"from {args.warmup:g}s after its first commit:\n"
        f"  resident memory: peak {figures['peak_rss_mib']:.0f} MiB, "
        f"at the end {figures['end_rss_mib']:.0f} MiB\n"
        f"  CPU: {figures['cores']:.3f} cores\n"
        f"  produce-to-committed ({figures['events']:,} events): p50 {figures['p50_s']:.2f}s, "
        f"p95 {figures['p95_s']:.2f}s, max {figures['max_s']:.2f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
