"""Serving benchmark: predict latency and throughput per use case and model source, beside a
trivial endpoint (`GET /`) of the same server in the same run.

    .venv/bin/python bench/serving.py [--events 3000] [--duration 5] [--concurrency 8]
        [--paths both|fast|public]

Starts private Redis and MLflow servers (as `coelho up` does), trains real models with the
platform's code (River learner over generated events, its signed live model published to
Redis and a snapshot written to MLflow; a CatBoost/KMeans batch model logged and registered
as champion), then runs `coelho serve` (uvicorn, one process) and drives it over loopback
with a minimal keep-alive HTTP/1.1 client (so the client's own cost stays small):
- latency: one request at a time, p50 / p99 over `--duration` seconds;
- throughput: `--concurrency` connections, requests/s over `--duration` seconds;
each in 0.5 s slices alternating with the trivial endpoint, so that other load on the machine
hits both alike.
Sources: incremental `live` (Redis), incremental `mlflow` (the live keys are then deleted,
so the API falls back to the snapshot), batch `champion`. Every response is checked (200,
expected model_source). Fast paths (README "Fast paths"): each model alone, fast vs public
path (`COELHO_ACCEL=0`) in this process, then (`--paths both`, the default) every endpoint
served by a server on the fast paths and one on the public paths, side by side.
Targets (issue 6): predict p99 < 10 ms with a cached model, predict throughput >= 0.5x the
trivial endpoint's.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coelho.platform import free_port  # noqa: E402
from coelho.platform.ephemeral import free_port_platform  # noqa: E402
from coelho_pipelines.accel.fast_predict import compile_predictor  # noqa: E402
from coelho_pipelines.accel.fence import accel_set as accel  # noqa: E402
from coelho_pipelines.use_cases import all_specs  # noqa: E402
from coelho_serving.accel.frozen import freeze  # noqa: E402

SIGNING_KEY = "bench-serving-key"


# --- platform and models -------------------------------------------------------------------


@contextmanager
def services(home: Path) -> Iterator[dict[str, str]]:
    platform = free_port_platform(home, project_dir=ROOT)
    ports = platform.ports
    try:
        for name in ("redis", "mlflow"):
            started = time.perf_counter()
            platform.start(name)
            print(f"  {name} up in {time.perf_counter() - started:.1f}s", flush=True)
        yield {
            "COELHO_HOME": str(home),
            "COELHO_LAKEHOUSE_URI": str(home / "lakehouse"),
            "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports['mlflow']}",
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",  # none: optional for the API
            "COELHO_MODEL_SIGNING_KEY": SIGNING_KEY,
            "COELHO_HEALTH_REQUIRED": "mlflow",
        }
    finally:
        platform.down(report=lambda _line: None)


def generate(spec: Any, n: int, seed: int = 5) -> list[dict[str, Any]]:
    options = {"fraud_rate": 0.1} if spec.task == "classification" else {}
    return list(itertools.islice(spec.generator(seed=seed, **options), n))


def learn_and_publish(spec: Any, events: list[dict], env: dict[str, str]) -> tuple[int, Any]:
    """Prequential learning, then the learner's own publish (Redis) and snapshot (MLflow)."""
    import redis

    from coelho_pipelines import signing
    from coelho_pipelines.incremental import live_store
    from coelho_pipelines.incremental.learner import Learner, Record
    from coelho_pipelines.incremental.snapshot import (
        SnapshotInfo,
        SnapshotStore,
        write_state_files,
    )

    learner = Learner(spec)
    learner.learn_many(Record(event) for event in events)
    bundle = signing.dumps(learner.bundle)
    client = redis.Redis.from_url(env["REDIS_URL"])
    version = live_store.publish_model(client, live_store.Keys(spec.key), bundle)
    store = SnapshotStore(env["MLFLOW_TRACKING_URI"], spec)
    run_id = store.open_run()
    with tempfile.TemporaryDirectory() as tmp:
        write_state_files(Path(tmp), bundle, signing.dumps(learner.progress))
        info = SnapshotInfo(0, learner.events_learned, {}, datetime.now(UTC).isoformat())
        store.write(run_id, Path(tmp), info)
    store.finish(run_id)
    print(f"  {spec.key}: live model v{version} published", flush=True)
    return len(bundle), learner


def train_batch(spec: Any, events: list[dict], env: dict[str, str]) -> tuple[str, Any]:
    """The batch engineer's training + logging, then registration as champion."""
    import pandas as pd

    from coelho_pipelines.batch import registry
    from coelho_pipelines.batch.training import train_and_log
    from coelho_pipelines.resources import MlflowResource

    rows = []
    for event, row in zip(events, model_rows(spec, events), strict=True):
        row[spec.time_field] = pd.Timestamp(event[spec.time_field])
        if spec.label_field:
            row[spec.label_field] = event[spec.label_field]
        rows.append(row)
    frame = pd.DataFrame(rows)
    n = len(frame)
    splits = {
        "train": frame.iloc[: int(n * 0.7)],
        "validation": frame.iloc[int(n * 0.7) : int(n * 0.85)],
        "test": frame.iloc[int(n * 0.85) :],
    }
    params = {"iterations": 100, "early_stopping_rounds": 20, "thread_count": 1, "k_min": 3,
              "k_max": 5, "n_init": 2, "silhouette_sample_size": 1000}  # fmt: skip
    mlflow = MlflowResource(tracking_uri=env["MLFLOW_TRACKING_URI"])
    logged = train_and_log(spec, splits, params, mlflow, None, 0)
    version = registry.register_champion(
        env["MLFLOW_TRACKING_URI"], spec, logged.run_id, logged.model_uri, {}
    )
    return version, logged.model


def model_rows(spec: Any, events: list[dict]) -> list[dict]:
    """The batch model's inputs: the event features, or (a use case clustering customer
    profiles) each customer's profile as the learner's profile pipeline computes it (the API
    reads profiles from the raw Delta table, which this bench does not write)."""
    if spec.profile is None:
        return [spec.extract_features(event) for event in events]
    from coelho_pipelines.incremental.learner import feature_pipeline

    profile = feature_pipeline(spec)
    return [profile.learn_transform(event) for event in events]


def model_only_ms(predict: Any, events: list[dict]) -> float:
    """Mean time of the model alone as the API serves it (frozen River forest, compiled batch
    predictor), in this process: what the API adds comes on top."""
    timings = []
    for event in events[:300]:
        started = time.perf_counter()
        predict(event)
        timings.append(time.perf_counter() - started)
    return sum(timings) / len(timings) * 1000


# --- server --------------------------------------------------------------------------------


@contextmanager
def server(env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    cmd = [sys.executable, "-m", "coelho.cli", "serve", "--port", str(port),
           "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"coelho serve exited with {process.returncode}")
            try:
                status, _ = asyncio.run(one_request(port, b"GET", "/health", b""))
                if status in (200, 503):
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("coelho serve did not answer within 120 s")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- a minimal keep-alive HTTP/1.1 client ----------------------------------------------------


def build_request(method: bytes, path: str, body: bytes) -> bytes:
    head = [f"{method.decode()} {path} HTTP/1.1", "Host: bench", "Connection: keep-alive"]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    return status, await reader.readexactly(length)


async def one_request(port: int, method: bytes, path: str, body: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(build_request(method, path, body))
        return await read_response(reader)
    finally:
        writer.close()


class Target:
    """One endpoint to drive: requests to rotate through and a check of each answer."""

    def __init__(self, name: str, method: bytes, path: str, bodies: list[bytes],
                 source: str | None = None) -> None:  # fmt: skip
        self.name, self.path, self.source = name, path, source
        self.requests = [build_request(method, path, body) for body in bodies or [b""]]

    def check(self, status: int, payload: bytes) -> None:
        if status != 200:
            raise RuntimeError(f"{self.name}: HTTP {status}: {payload[:300]!r}")
        if self.source is not None:
            source = json.loads(payload)["model_source"]
            if source != self.source:
                raise RuntimeError(f"{self.name}: model_source {source}, expected {self.source}")


async def drive(port: int, target: Target, seconds: float, connections: int) -> list[float]:
    """Keep `connections` connections busy for `seconds`; per-request latencies (s)."""
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    checked = 0

    async def worker(offset: int) -> None:
        nonlocal checked
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        requests = itertools.cycle(target.requests[offset:] + target.requests[:offset])
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                writer.write(next(requests))
                status, payload = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                if checked < 50 or status != 200:
                    target.check(status, payload)
                    checked += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(i * 7) for i in range(connections)))
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    port: int, target: Target, base: Target, seconds: float, concurrency: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Target and trivial endpoint measured in alternating 0.5 s slices, so that load from
    other processes on the machine hits both alike."""
    for each in (base, target):
        asyncio.run(drive(port, each, 1.0, 1))  # warm-up: model load, caches
    slices = max(1, int(seconds / 0.5))
    sequential: dict[str, list[float]] = {"base": [], "target": []}
    loaded: dict[str, list[float]] = {"base": [], "target": []}
    for _ in range(slices):
        for name, each in (("base", base), ("target", target)):
            sequential[name] += asyncio.run(drive(port, each, 0.5, 1))
            loaded[name] += asyncio.run(drive(port, each, 0.5, concurrency))

    def summary(name: str) -> dict[str, float]:
        return {
            "p50_ms": percentile(sequential[name], 0.50) * 1000,
            "p99_ms": percentile(sequential[name], 0.99) * 1000,
            "rps": len(loaded[name]) / (slices * 0.5),
        }

    return summary("target"), summary("base")


# --- main ------------------------------------------------------------------------------------

PATHS = {"both": (True, False), "fast": (True,), "public": (False,)}


def model_alone(spec: Any, bundle: Any, batch_model: Any, events: list[dict]) -> dict:
    """Mean ms of each model alone as the API serves it, fast path and public path
    (`COELHO_ACCEL=0`), checked to answer the same."""
    from coelho_pipelines.accel.fast_predict import frame_predictor, is_compiled
    from coelho_serving.accel.frozen import served_model

    forest = served_model(bundle.model) is not None  # ecci's k-means has no fast path
    times: dict[tuple[str, bool], float] = {}
    answers: dict[tuple[str, bool], list] = {}
    probe = events[:300]
    rows_of = dict(zip(map(id, probe), model_rows(spec, probe), strict=True))
    for on in (True, False):
        with accel(on):
            served = freeze(bundle)
            rows = compile_predictor(batch_model)
        if (on and forest) != (served is not bundle) or on != is_compiled(rows):
            raise RuntimeError(f"{spec.key}: the fence did not switch the fast paths {on}")
        batch = lambda e, p=rows: p([rows_of[id(e)]])  # noqa: E731
        for source, predict in (("incremental", served.predict), ("batch", batch)):
            times[(source, on)] = model_only_ms(predict, probe)
            answers[(source, on)] = [predict(e) for e in probe[:100]]
    for source in ("incremental", "batch"):
        if answers[(source, True)] != answers[(source, False)]:
            raise RuntimeError(f"{spec.key} {source}: fast and public answers differ")
    # the public batch path, for reference: predict_frame on one row
    assert (
        frame_predictor(batch_model)([spec.extract_features(probe[0])])
        == answers[("batch", False)][0]
    )
    times[("forest", True)] = times[("forest", False)] = float(forest)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="events learned per use case")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="connections for req/s")
    parser.add_argument("--paths", choices=sorted(PATHS), default="both",
                        help="serve with the fast paths, the public ones (COELHO_ACCEL=0) "
                        "or both side by side")  # fmt: skip
    args = parser.parse_args()
    specs = all_specs()
    with tempfile.TemporaryDirectory(prefix="coelho-bench-serving-") as tmp:
        print("starting Redis and MLflow ...", flush=True)
        with services(Path(tmp)) as env:
            os.environ.update(env)  # this process signs the models the server verifies
            events = {spec.key: generate(spec, args.events) for spec in specs}
            model_ms: dict[tuple[str, str, bool], float] = {}
            forests: dict[str, list[tuple[str, float, float]]] = {}
            for spec in specs:
                started = time.perf_counter()
                size, learner = learn_and_publish(spec, events[spec.key], env)
                bundle = learner.bundle
                champion, batch_model = train_batch(spec, events[spec.key], env)
                times = model_alone(spec, bundle, batch_model, events[spec.key])
                for (source, on), ms in times.items():
                    model_ms[(spec.key, source, on)] = ms
                forests[spec.key] = forest_candidates(spec, learner, events[spec.key][:300])
                print(f"  {spec.key}: live model {size / 1e6:.1f} MB, champion v{champion} "
                      f"({time.perf_counter() - started:.0f}s)", flush=True)  # fmt: skip
            print_model_alone(specs, model_ms, forests)
            return run_bench(specs, events, env, args, model_ms)


def run_bench(specs: Any, events: dict, env: dict, args: Any, model_ms: dict) -> int:
    import redis

    from coelho_pipelines.incremental import live_store

    results: list[tuple[str, str, bool, dict[str, float], dict[str, float]]] = []
    trivial = Target("GET /", b"GET", "/", [])

    def bodies(key: str) -> list[bytes]:
        return [json.dumps(e).encode() for e in events[key][:200]]

    def bench(port: int, on: bool, uc: str, source: str, target: Target) -> None:
        result, base = measure(port, target, trivial, args.duration, args.concurrency)
        result["model_ms"] = model_ms[(uc, source.split()[0], on)]
        results.append((uc, source, on, result, base))
        path = "fast" if on else "public"
        print(f"  {uc:5} {source:18} {path:6} p50 {result['p50_ms']:6.2f} ms  p99 "
              f"{result['p99_ms']:6.2f} ms  {result['rps']:7.0f} req/s  | GET / p50 "
              f"{base['p50_ms']:.2f} p99 {base['p99_ms']:.2f} ms {base['rps']:7.0f} req/s  "
              f"ratio {result['rps'] / base['rps']:.2f}", flush=True)  # fmt: skip

    def serve(on: bool) -> Any:
        port = free_port()
        path = "fast paths" if on else "public paths (COELHO_ACCEL=0)"
        print(f"coelho serve on 127.0.0.1:{port}, {path} ...", flush=True)
        return port, server({**env, "COELHO_ACCEL": "1" if on else "0"}, port)

    print(f"latency: sequential; req/s: {args.concurrency} connections; {args.duration:g}s each")
    for on in PATHS[args.paths]:
        port, running = serve(on)
        with running:
            for spec in specs:
                key = spec.key
                bench(port, on, key, "incremental live", Target(f"{key} live", b"POST",
                      f"/api/v1/incremental/{key}/predict", bodies(key), "live"))  # fmt: skip
                if spec.profile is not None:
                    print(f"  {key:5} batch champion: not driven (profiles need the raw table)")
                    continue
                bench(port, on, key, "batch champion", Target(f"{key} champion", b"POST",
                      f"/api/v1/batch/{key}/predict", bodies(key), "mlflow"))  # fmt: skip
    client = redis.Redis.from_url(env["REDIS_URL"])
    for spec in specs:
        keys = live_store.Keys(spec.key)
        client.delete(keys.model, keys.model_version)
    for on in PATHS[args.paths]:
        port, running = serve(on)
        with running:
            for spec in specs:
                key = spec.key
                bench(port, on, key, "incremental mlflow", Target(f"{key} snapshot", b"POST",
                      f"/api/v1/incremental/{key}/predict", bodies(key), "mlflow"))  # fmt: skip
    print_summary(results)
    return 0


def print_model_alone(specs: Any, model_ms: dict, forests: dict) -> None:
    """Each fast path's own figure: the model alone, fast vs public, side by side."""
    print("\nmodel alone (in this process, mean of 300 one-event calls; answers identical)")
    print("| use case | model | fast path | fast ms | public ms | speed-up |")
    print("|---|---|---|---|---|---|")
    names = {"incremental": "frozen River forest (coelho_serving.accel)",
             "batch": "compiled batch predictor (coelho_pipelines.accel.fast_predict)"}  # fmt: skip
    for spec in specs:
        for source in ("incremental", "batch"):
            if source == "incremental" and not model_ms[(spec.key, "forest", True)]:
                label = "none (the leader is not a forest: River's own model both times)"
            else:
                label = names[source]
            fast, public = model_ms[(spec.key, source, True)], model_ms[(spec.key, source, False)]
            print(f"| {spec.key} | {source} | {label} | {fast:.3f} | {public:.3f} "
                  f"| {public / fast:.2f}x |")  # fmt: skip
    print("\nforest candidates alone (served or not: the fast path's own figure), on encoded "
          "features, best of 3 passes of 300 events; answers identical")  # fmt: skip
    print("| use case | candidate | frozen ms | River ms | speed-up |")
    print("|---|---|---|---|---|")
    for spec in specs:
        for name, fast, public in forests[spec.key]:
            print(f"| {spec.key} | {name} | {fast:.3f} | {public:.3f} | {public / fast:.2f}x |")
    print(flush=True)


def forest_candidates(spec: Any, learner: Any, events: list[dict]) -> list[tuple]:
    """(candidate, frozen ms, River ms) of every forest candidate of the learner, whichever
    one leads: the frozen forest (`served_model`) against River's own predict."""
    from coelho_serving.accel.frozen import served_model

    method = "predict_proba_one" if spec.task == "classification" else "predict_one"
    figures = []
    for name, candidate in learner.challengers.candidates.items():
        frozen = served_model(candidate.model)
        if frozen is None:
            continue
        pipeline = learner.challengers.features[candidate.numeric_only]
        xs = [pipeline.transform(event) for event in events]
        fast, public = getattr(frozen, method), getattr(candidate.model, method)
        if [fast(x) for x in xs] != [public(x) for x in xs]:
            raise RuntimeError(f"{spec.key} {name}: the frozen forest answers differently")
        figures.append((name, best_ms(fast, xs), best_ms(public, xs)))
    return figures


def best_ms(predict: Any, xs: list[dict], passes: int = 3) -> float:
    """The best mean ms per call over `passes` passes over `xs`."""
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for x in xs:
            predict(x)
        best = min(best, (time.perf_counter() - started) / len(xs) * 1000)
    return best


def print_summary(results: list) -> None:
    print("\n| use case | source | path | p50 ms | p99 ms | model alone mean ms | req/s "
          "| GET / p50 ms | GET / p99 ms | GET / req/s | ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    worst_p99 = worst_ratio = None
    for uc, source, on, r, base in sorted(results, key=lambda item: (item[0], item[1], -item[2])):
        ratio = r["rps"] / base["rps"]
        path = "fast" if on else "public"
        print(f"| {uc} | {source} | {path} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
              f"| {r['model_ms']:.2f} | {r['rps']:.0f} | {base['p50_ms']:.2f} "
              f"| {base['p99_ms']:.2f} | {base['rps']:.0f} | {ratio:.2f} |")  # fmt: skip
        if on:
            worst_p99 = max(worst_p99 or 0.0, r["p99_ms"])
            worst_ratio = min(worst_ratio or 1e9, ratio)
    if worst_p99 is not None:
        print(f"\nfast paths: worst predict p99 {worst_p99:.2f} ms (target < 10 ms); worst "
              f"throughput ratio {worst_ratio:.2f} (target >= 0.5)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
