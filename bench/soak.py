"""Soak: the running platform as a user meets it (issue 13's acceptance figures).

Starts the platform as `make up` does (every service, producers at `--rate` events/s per use
case) on a fresh state directory and free ports, or attaches to a running one (`--attach`:
the platform of COELHO_HOME), warms up, then measures and prints one table:

- CPU cores used by the platform's processes (every service with its children: Dagster's
  webserver, daemon, code server and run processes, Kafka, Redis, MLflow, the API, the
  producers), averaged over the measured window, per service and in all;
- peak resident memory of all services with their children;
- a probe event with a unique id to the tfd topic every `--probe-every` seconds: seconds until
  it is queryable through `/api/v1/sql`, and until the learner has learned it and published a
  live model that holds it (Redis status `model_offsets`);
- failed Dagster runs since start, and the batch champions registered (with the minute).

    .venv/bin/python bench/soak.py [--rate 10] [--warmup 300] [--measure 600] [--attach]

Nothing here is a test: it prints figures measured side by side in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

from coelho.platform import Platform, free_port  # noqa: E402
from coelho.platform.kafka import default_lib_dir  # noqa: E402
from coelho.platform.manager import SERVICES, service_names  # noqa: E402
from coelho.platform.process import live_process  # noqa: E402
from coelho_pipelines.use_cases import all_specs, get_spec  # noqa: E402

RUN_MARKERS = ("execute_run", "execute_step", "api execute", "spawn_main", "multiprocessing")


# ---------------------------------------------------------------- resource sampling


@dataclass
class Usage:
    """CPU seconds per service (Dagster runs apart) and the peak total resident memory: the sum
    of RSS (the issue's figure; it counts pages shared between processes, e.g. a learner and
    its forked capture child, or the same library in many runs, once per process) and the sum
    of PSS (each shared page split among its sharers: what the processes take together)."""

    cpu: dict[str, float] = field(default_factory=dict)
    peak_pss: int = 0
    peak_rss: int = 0
    rss_samples: list[int] = field(default_factory=list)
    peak_rss_by_kind: dict[str, int] = field(default_factory=dict)


class Sampler(threading.Thread):
    """Samples every process of every service once a second (own CPU time, no children's
    reaped totals, so nothing counts twice; a process's last < 1 s is not seen)."""

    def __init__(self, platform: Platform) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.platform = platform
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.last: dict[tuple[int, float], tuple[str, float]] = {}
        self.usage = Usage()
        self.window: Usage | None = None
        self.primed = False

    def begin_window(self) -> None:
        with self.lock:
            self.window = Usage()

    def run(self) -> None:
        tick = 0
        while not self.stop.wait(1.0):
            tick += 1
            self._sample(rss=tick % 5 == 0)

    def _processes(self) -> list[tuple[str, psutil.Process]]:
        found = []
        for name in service_names():
            root = live_process(self.platform.record(name))
            if root is None:
                continue
            members = [root]
            with contextlib.suppress(psutil.Error):
                members += root.children(recursive=True)
            for proc in members:
                found.append((self._kind(name, proc), proc))
        return found

    @staticmethod
    def _kind(service: str, proc: psutil.Process) -> str:
        if service != "dagster":
            return service
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            return service
        return "dagster runs" if any(m in cmd for m in RUN_MARKERS) else service

    def _sample(self, rss: bool) -> None:
        by_kind: dict[str, int] = {}
        pss = 0
        for kind, proc in self._processes():
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    key = (proc.pid, proc.create_time())
                    if rss:
                        by_kind[kind] = by_kind.get(kind, 0) + proc.memory_info().rss
                        pss += proc.memory_full_info().pss
            except psutil.Error:
                continue
            cpu = times.user + times.system
            # New since the last sample: all its CPU is new, except at the very first sample.
            before = self.last[key][1] if key in self.last else (cpu if not self.primed else 0.0)
            self.last[key] = (kind, cpu)
            self._add(kind, cpu - before)
        self.primed = True
        if rss:
            self._add_rss(by_kind, pss)

    def _add_rss(self, by_kind: dict[str, int], pss: int) -> None:
        total = sum(by_kind.values())
        with self.lock:
            for usage in (self.usage, self.window):
                if usage is None:
                    continue
                usage.peak_pss = max(usage.peak_pss, pss)
                usage.rss_samples.append(total)
                if total > usage.peak_rss:
                    usage.peak_rss, usage.peak_rss_by_kind = total, dict(by_kind)

    def _add(self, kind: str, seconds: float) -> None:
        with self.lock:
            for usage in (self.usage, self.window):
                if usage is not None:
                    usage.cpu[kind] = usage.cpu.get(kind, 0.0) + max(0.0, seconds)


# ---------------------------------------------------------------- probes


@dataclass
class Probe:
    sent_at: float
    event_id: str
    partition: int = -1
    offset: int = -1
    queryable_s: float | None = None
    learned_s: float | None = None


class Prober(threading.Thread):
    """A tfd event with a unique id every `every` seconds; when it is queryable and learned."""

    def __init__(self, api: str, bootstrap: str, redis_url: str, every: float) -> None:
        super().__init__(name="soak-prober", daemon=True)
        self.api, self.bootstrap, self.redis_url, self.every = api, bootstrap, redis_url, every
        self.stop = threading.Event()
        self.probes: list[Probe] = []
        self.measuring = False

    def run(self) -> None:
        import redis
        from confluent_kafka import Producer

        spec = get_spec("tfd")
        events = spec.generator(seed=int(time.time()))
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 0})
        client = redis.Redis.from_url(self.redis_url, decode_responses=True)
        with httpx.Client(timeout=10.0) as http:
            while not self.stop.is_set():
                probe = self._send(producer, spec, next(events))
                self._await(probe, http, client)
                if self.measuring:
                    self.probes.append(probe)
                self.stop.wait(max(0.0, probe.sent_at + self.every - time.monotonic()))

    def _send(self, producer, spec, event: dict) -> Probe:
        probe = Probe(time.monotonic(), f"soak-{uuid.uuid4()}")
        event[spec.id_field] = probe.event_id

        def delivered(err, msg) -> None:
            if err is None:
                probe.partition, probe.offset = msg.partition(), msg.offset()

        producer.produce(
            spec.topic, json.dumps(event).encode(), str(event[spec.key_field]).encode(),
            on_delivery=delivered,
        )  # fmt: skip
        producer.flush(10)
        return probe

    def _await(self, probe: Probe, http: httpx.Client, client) -> None:
        query = {"query": f"SELECT count(*) AS n FROM data WHERE transaction_id = "
                 f"'{probe.event_id}'", "limit": 1}  # fmt: skip
        deadline = probe.sent_at + 120
        while time.monotonic() < deadline and not self.stop.is_set():
            now = time.monotonic()
            if probe.queryable_s is None and _queryable(http, self.api, query):
                probe.queryable_s = now - probe.sent_at
            if probe.learned_s is None and _learned(client, probe):
                probe.learned_s = now - probe.sent_at
            if probe.queryable_s is not None and probe.learned_s is not None:
                return
            time.sleep(0.1)


def _queryable(http: httpx.Client, api: str, query: dict) -> bool:
    try:
        answer = http.post(f"{api}/api/v1/sql/tfd/query", json=query)
        return answer.status_code == 200 and answer.json()["rows"][0][0] > 0
    except (httpx.HTTPError, KeyError, IndexError, ValueError):
        return False


def _learned(client, probe: Probe) -> bool:
    if probe.partition < 0:
        return False
    try:
        offsets = json.loads(client.hget("coelho:tfd:status", "model_offsets") or "{}")
    except Exception:  # noqa: BLE001 - Redis briefly away: not learned yet
        return False
    return int(offsets.get(str(probe.partition), -1)) > probe.offset


# ---------------------------------------------------------------- Dagster and MLflow


def failed_runs(dagster: str) -> list[str]:
    query = """{ runsOrError(filter: {statuses: [FAILURE]}) {
        ... on Runs { results { runId jobName } } } }"""
    try:
        data = httpx.post(f"{dagster}/graphql", json={"query": query}, timeout=30).json()
        return [f"{r['jobName']} {r['runId'][:8]}" for r in data["data"]["runsOrError"]["results"]]
    except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
        return [f"(could not ask Dagster: {exc})"]


def champions(mlflow_uri: str) -> dict[str, float]:
    """Use case -> creation time (epoch s) of its champion version, for those that have one."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=mlflow_uri)
    found = {}
    for spec in all_specs():
        try:
            version = client.get_model_version_by_alias(f"coelho-{spec.key}-batch", "champion")
        except MlflowException:
            continue
        found[spec.key] = version.creation_timestamp / 1000
    return found


def learner_states(redis_url: str) -> dict[str, str]:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return {s.key: client.hget(f"coelho:{s.key}:status", "state") or "-" for s in all_specs()}


# ---------------------------------------------------------------- the run


def start_platform(args: argparse.Namespace) -> tuple[Platform, bool]:
    if args.attach:
        platform = Platform.from_env()
        if platform.record("dagster") is None:
            raise SystemExit("--attach: no running platform under COELHO_HOME")
        return platform, False
    os.environ["COELHO_PRODUCE_RATE"] = str(args.rate)
    home = Path(tempfile.mkdtemp(prefix="coelho-soak-"))
    ports = {key: free_port() for service in SERVICES for key in service.port_keys()}
    lib = Path(os.environ.get("COELHO_KAFKA_LIB", default_lib_dir(ROOT / ".coelho")))
    platform = Platform(home, ports=ports, kafka_lib=lib, project_dir=ROOT)
    failures = platform.up(report=lambda line: print(f"  {line}", flush=True))
    if failures:
        platform.down(report=lambda _line: None)
        raise SystemExit("platform did not start: " + " | ".join(failures))
    return platform, True


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(args, usage: Usage, probes: list[Probe], fails, champs, started, states) -> None:
    seconds = args.measure
    cores = {kind: cpu / seconds for kind, cpu in sorted(usage.cpu.items())}
    total = sum(cores.values())
    print(f"\n=== soak: {args.rate:g} events/s per use case, {seconds:.0f} s measured after "
          f"{args.warmup:.0f} s warm-up ===")  # fmt: skip
    print(f"{'figure':52s} {'value':>12s}  target")
    print(f"{'CPU cores, platform processes (average)':52s} {total:12.2f}  <= 0.5")
    for kind, value in cores.items():
        print(f"{'  ' + kind:52s} {value:12.3f}")
    peak = usage.peak_rss / 2**30
    print(f"{'peak resident memory, all services (GiB)':52s} {peak:12.2f}  <= 4 (stretch 3)")
    for kind, rss in sorted(usage.peak_rss_by_kind.items()):
        print(f"{'  ' + kind + ' (MiB)':52s} {rss / 2**20:12.0f}")
    pss = usage.peak_pss / 2**30
    print(f"{'peak PSS, all services, shared pages once (GiB)':52s} {pss:12.2f}")
    targets = (
        ("queryable via /api/v1/sql", "queryable_s", "p95 <= 10"),
        ("learned and published (tfd)", "learned_s", "p95 <= 2"),
    )
    for label, attr, target in targets:
        values = [getattr(p, attr) for p in probes if getattr(p, attr) is not None]
        missing = len(probes) - len(values)
        if values:
            text = (f"p50 {percentile(values, .5):.1f} p95 {percentile(values, .95):.1f} "
                    f"max {max(values):.1f}")  # fmt: skip
        else:
            text = "never"
        print(f"{'probe s until ' + label:52s} {text:>12s}  {target} ({len(probes)} probes, "
              f"{missing} missed)")  # fmt: skip
    print(f"{'failed Dagster runs since start':52s} {len(fails):12d}  0 {fails if fails else ''}")
    minutes = {uc: (t - started) / 60 for uc, t in champs.items()}
    text = ", ".join(f"{uc} {m:.1f} min" for uc, m in sorted(minutes.items())) or "none"
    within = sum(1 for m in minutes.values() if m <= 15)
    print(f"{'champions registered (minute after start)':52s} {len(champs):10d}/3  "
          f"3 of 3 within 15 min ({within} were): {text}")  # fmt: skip
    print(f"{'learner states at the end':52s} {json.dumps(states)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0, help="events/s per use case")
    parser.add_argument("--warmup", type=float, default=300.0, help="seconds before measuring")
    parser.add_argument("--measure", type=float, default=600.0, help="seconds measured")
    parser.add_argument("--probe-every", type=float, default=30.0)
    parser.add_argument("--attach", action="store_true", help="use the running platform")
    parser.add_argument("--keep", action="store_true", help="leave the platform running")
    args = parser.parse_args()

    started = time.time()
    platform, owned = start_platform(args)
    ports = {name: platform.record(name).port for name in ("kafka", "redis", "mlflow",
                                                           "dagster", "api")}  # fmt: skip
    api, dagster = f"http://127.0.0.1:{ports['api']}", f"http://127.0.0.1:{ports['dagster']}"
    mlflow_uri, redis_url = (
        f"http://127.0.0.1:{ports['mlflow']}",
        f"redis://127.0.0.1:{ports['redis']}/0",
    )
    print(f"platform under {platform.home}: API {api}, Dagster {dagster}, MLflow {mlflow_uri}")
    sampler = Sampler(platform)
    prober = Prober(api, f"127.0.0.1:{ports['kafka']}", redis_url, args.probe_every)
    sampler.start()
    prober.start()
    champs: dict[str, float] = {}
    try:
        end_warmup = time.monotonic() + args.warmup
        while time.monotonic() < end_warmup:
            time.sleep(15)
            champs |= champions(mlflow_uri)
            print(f"  warm-up {time.time() - started:5.0f} s: champions {sorted(champs)}, "
                  f"learners {learner_states(redis_url)}", flush=True)  # fmt: skip
        sampler.begin_window()
        prober.measuring = True
        end = time.monotonic() + args.measure
        while time.monotonic() < end:
            time.sleep(15)
            champs |= champions(mlflow_uri)
            window = sampler.window
            done = args.measure - (end - time.monotonic())
            cores = sum(window.cpu.values()) / max(done, 1) if window else 0.0
            print(
                f"  measured {done:5.0f} s: {cores:.2f} cores, probes {len(prober.probes)}",
                flush=True,
            )
        prober.measuring = False
        window = sampler.window or Usage()
        report(args, window, prober.probes, failed_runs(dagster), champs, started,
               learner_states(redis_url))  # fmt: skip
        rss = [r / 2**30 for r in window.rss_samples]
        if rss:
            print(
                f"{'resident memory while measured (GiB, mean)':52s} {statistics.mean(rss):12.2f}"
            )
    finally:
        prober.stop.set()
        sampler.stop.set()
        if owned and not args.keep:
            platform.down(report=lambda _line: None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
