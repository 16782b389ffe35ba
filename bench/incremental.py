"""Incremental learner benchmark: learner vs. bare River loop, publish cost vs. model size,
event-to-Redis latency.

    .venv/bin/python bench/incremental.py [--events tfd=4000,eta=2000,ecci=20000]
        [--sizes 500,2000,5000,10000] [--latency-seconds 30] [--skip throughput,size,latency]

Starts a private Kafka, Redis and MLflow (as `coelho up` does) on free ports in a temp dir.
Every figure is measured side by side in this one run.

1. Throughput, per use case: the learner (Kafka consume over 3 partitions, JSON decode and
   validation, features, predict, every River metric, drift detector, learn, live-model
   captures and Redis/MLflow publishing) vs. the bare River predict-then-learn loop over
   the same pre-parsed feature dicts, in the order the learner learns them (its reader
   merges the partitions by message time), timed before and after the learner (their mean is
   the reference). Target: >= 0.8x (stretch 0.9x). Two extra, informative columns compare
   with the bare loop plus feature encoding (an encoder + model River pipeline), and with
   the bare loop predicting through the learner's exact shortcuts (tfd's cached forest
   vote, ecci's one-pass nearest center): that ratio is the learner's own overhead.
2. Publish cost vs. model size (eta ARFRegressor grown to each size): bytes, inline
   pickle+sign, fork capture (time the learning thread is blocked, and until the copy is
   written), Redis write, learning slowdown while a capture child runs, and the share of
   learning time publishing costs at the default schedule. Target: <= 10% at every size.
3. Event-to-Redis latency: tfd events produced at a steady rate while the learner runs at
   the live tail; for each event, the time until a live model that learned it is in Redis.
   Target: <= 10 s.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import pickle
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coelho_pipelines.incremental import live_store  # noqa: E402
from coelho_pipelines.incremental.capture import Capturer  # noqa: E402
from coelho_pipelines.incremental.learner import Learner, Record, feature_pipeline  # noqa: E402
from coelho_pipelines.incremental.runner import (  # noqa: E402
    Endpoints,
    LearnerRun,
    LearnerSettings,
    RunHooks,
)
from coelho_pipelines.use_cases import get_spec  # noqa: E402
from coelho_pipelines.use_cases.spec import UseCaseSpec  # noqa: E402

DEFAULT_EVENTS = "tfd=4000,eta=2000,ecci=20000"
PUBLISH_INTERVAL = LearnerSettings().publish_interval_seconds
BUDGET = LearnerSettings().publish_budget


@contextlib.contextmanager
def services() -> Iterator[Endpoints]:
    from _services import temporary_platform

    with temporary_platform("kafka", "redis", "mlflow") as platform:
        yield Endpoints(
            bootstrap_servers=f"127.0.0.1:{platform.ports['kafka']}",
            redis_url=f"redis://127.0.0.1:{platform.ports['redis']}/0",
            mlflow_tracking_uri=f"http://127.0.0.1:{platform.ports['mlflow']}",
        )


def new_topic(bootstrap: str) -> str:
    from coelho_pipelines.platform.kafka import ensure_topics

    topic = f"bench_learner_{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], partitions=3)
    return topic


def produce(bootstrap: str, topic: str, spec: UseCaseSpec, events: list[dict]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for event in events:
        while True:
            try:
                producer.produce(
                    topic, json.dumps(event).encode(), str(event[spec.key_field]).encode()
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)


def isolated(topic: str, **overrides: object) -> LearnerSettings:
    name = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "topic": topic,
        "experiment": f"bench {name}",
        "redis_namespace": f"bench-{name}",
        "consumer_group": f"bench-{name}",
        "idle_timeout_seconds": 5.0,
        "max_duration_seconds": 1800.0,
    }
    return LearnerSettings(**(values | overrides))  # type: ignore[arg-type]


# ---------------------------------------------------------------- 1. throughput


@dataclasses.dataclass
class Timing:
    events: int
    wall: float
    cpu: float  # CPU time of this process (all its threads), not of services or children

    @property
    def rate(self) -> float:
        return self.events / self.wall

    @property
    def cpu_rate(self) -> float:
        return self.events / self.cpu


def bare_loop(spec: UseCaseSpec, events: list[dict]) -> Timing:
    """River alone: predict then learn on pre-parsed feature dicts."""
    features = feature_pipeline(spec)
    dataset = [(features.learn_transform(e), spec.label(e)) for e in events]
    model = spec.river_model()
    wall, cpu = time.perf_counter(), time.process_time()
    _predict_learn(spec, model, dataset)
    return Timing(len(dataset), time.perf_counter() - wall, time.process_time() - cpu)


def featured_loop(spec: UseCaseSpec, events: list[dict]) -> Timing:
    """River-idiomatic pipeline: feature encoding (learning its running statistics) then
    predict then learn, on pre-parsed event dicts (no decoding, validation or metrics)."""
    model = spec.river_model()
    wall, cpu = time.perf_counter(), time.process_time()
    features = feature_pipeline(spec)
    _predict_learn(spec, model, ((features.learn_transform(e), spec.label(e)) for e in events))
    return Timing(len(events), time.perf_counter() - wall, time.process_time() - cpu)


def shortcut_loop(spec: UseCaseSpec, events: list[dict]) -> Timing:
    """The bare loop predicting through the learner's exact shortcuts (tfd: `ForestVote`,
    ecci: the one-pass nearest center; eta has none): what is left of the ratio is the
    learner's own overhead."""
    features = feature_pipeline(spec)
    dataset = [(features.learn_transform(e), spec.label(e)) for e in events]
    model = spec.river_model()
    predict = _shortcut_predict(spec, model)
    wall, cpu = time.perf_counter(), time.process_time()
    _predict_learn(spec, model, dataset, predict)
    return Timing(len(dataset), time.perf_counter() - wall, time.process_time() - cpu)


def _shortcut_predict(spec: UseCaseSpec, model: object):  # noqa: ANN202
    from coelho_pipelines.incremental.forest_vote import ForestVote
    from coelho_pipelines.incremental.learner import predicts_nearest_center
    from coelho_pipelines.incremental.metrics import DistanceSilhouette

    if spec.task == "classification":
        return ForestVote.for_model(model)
    if predicts_nearest_center(model):
        return lambda x: DistanceSilhouette.predict_nearest(x, model.centers)[0]
    return model.predict_one


def _predict_learn(spec: UseCaseSpec, model: object, dataset, predict=None) -> None:  # noqa: ANN001
    """Predict then learn each (x, y); `predict` defaults to River's own method."""
    if predict is None:
        predict = model.predict_proba_one if spec.task == "classification" else model.predict_one
    if spec.task == "clustering":
        for x, _ in dataset:
            predict(x)
            model.learn_one(x)
    else:
        for x, y in dataset:
            predict(x)
            model.learn_one(x, y)


def learning_order(spec: UseCaseSpec, ends: Endpoints, topic: str, events: list[dict]) -> list:
    """`events` in the order a learner learns them from `topic`: the reader merges the
    partitions by message time, so this differs from the order they were produced in. River
    models depend on the order; the bare loops learn the same sequence as the learner."""
    from coelho_pipelines.incremental.consumer import TopicReader

    by_id = {event[spec.id_field]: event for event in events}
    ordered: list[dict] = []
    with TopicReader(ends.bootstrap_servers, topic, f"bench-order-{uuid.uuid4().hex[:8]}") as r:
        for record in r.records():
            if record is not None:
                ordered.append(by_id[json.loads(record.value)[spec.id_field]])
            if len(ordered) == len(events) or (record is None and r.caught_up):
                break
    if len(ordered) != len(events):
        raise RuntimeError(f"read {len(ordered)} of {len(events)} events back from {topic}")
    return ordered


def learner_throughput(spec: UseCaseSpec, ends: Endpoints, topic: str, last: int) -> dict:
    """The learner over `topic` (its first `last` events, from the beginning, in a fresh
    consumer group and experiment), timed from its first learned event to its last one."""
    stamps: dict[str, float] = {}

    def on_step(_step, learner) -> None:  # noqa: ANN001
        # Clocks are read at the first and the last event only: the process CPU clock is a
        # system call summing every thread (librdkafka runs many), measurably slow per event.
        if "wall" not in stamps:
            stamps["wall"], stamps["cpu"] = time.perf_counter(), time.process_time()
        if learner.events_learned >= last:
            stamps["last_wall"], stamps["last_cpu"] = time.perf_counter(), time.process_time()

    run = LearnerRun(
        spec, ends, isolated(topic, until_events=last), hooks=RunHooks(on_step=on_step)
    )
    summary = run.run()
    timing = Timing(
        summary.events_learned - 1,
        stamps["last_wall"] - stamps["wall"],
        stamps["last_cpu"] - stamps["cpu"],
    )
    return {
        "timing": timing,
        "capture_share": summary.capture_blocking_seconds / timing.wall,
        "captures": summary.captures,
        "publishes": len(run.publisher.published) if run.publisher else 0,
    }


def throughput(ends: Endpoints, counts: dict[str, int], rounds: int) -> list[str]:
    """Learner runs interleaved with bare loops; each learner run is compared with the mean
    of the bare loops just before and after it (the machine's load drifts)."""
    lines = [
        "1. throughput: learner (Kafka -> Redis/MLflow) vs bare River loop on the same events",
        "   use case  events   bare ev/s  learner ev/s  ratio (wall)  ratio (CPU)  "
        "captures  blocking | bare+features ev/s  ratio (wall)  ratio (CPU) | "
        "bare+shortcuts ev/s  ratio (wall)",
    ]
    for key, n in counts.items():
        spec = get_spec(key)
        topic = new_topic(ends.bootstrap_servers)
        produce(ends.bootstrap_servers, topic, spec, list(_take(spec.generator(seed=42), n)))
        events = learning_order(spec, ends, topic, list(_take(spec.generator(seed=42), n)))
        bare, featured = [bare_loop(spec, events)], [featured_loop(spec, events)]
        shortcut = [shortcut_loop(spec, events)]
        runs = []
        for _ in range(rounds):
            runs.append(learner_throughput(spec, ends, topic, n))
            bare.append(bare_loop(spec, events))
            featured.append(featured_loop(spec, events))
            shortcut.append(shortcut_loop(spec, events))
        for i, run in enumerate(runs):
            bare_rate, bare_cpu = _mean_rates(bare[i : i + 2])
            feat_rate, feat_cpu = _mean_rates(featured[i : i + 2])
            short_rate, _ = _mean_rates(shortcut[i : i + 2])
            timing = run["timing"]
            lines.append(
                f"   {key:8s}  {n:6d}   {bare_rate:9.0f}  {timing.rate:12.0f}  "
                f"{timing.rate / bare_rate:11.2f}x  {timing.cpu_rate / bare_cpu:10.2f}x  "
                f"{run['captures']:8d}  {run['capture_share']:7.1%} | "
                f"{feat_rate:18.0f}  {timing.rate / feat_rate:11.2f}x  "
                f"{timing.cpu_rate / feat_cpu:10.2f}x | "
                f"{short_rate:19.0f}  {timing.rate / short_rate:11.2f}x"
            )
    lines += [
        "   (CPU: this process's CPU time, all threads; capture children and the Kafka/"
        "Redis/MLflow servers excluded)",
        "   (bare: model only, on feature dicts computed beforehand, the issue's reference;"
        " bare+features: the same loop also encoding each event with the feature pipeline,"
        " as a River pipeline of encoder + model would; bare+shortcuts: the bare loop"
        " predicting through the learner's exact shortcuts, so its ratio is the learner's"
        " own overhead)",
    ]
    return lines


def _mean_rates(timings: list[Timing]) -> tuple[float, float]:
    """Mean wall and CPU rates of the loops timed before and after a learner run."""
    return (
        sum(t.rate for t in timings) / len(timings),
        sum(t.cpu_rate for t in timings) / len(timings),
    )


def _take(iterator, n: int):  # noqa: ANN001, ANN202
    for _, item in zip(range(n), iterator, strict=False):
        yield item


# ---------------------------------------------------------------- 2. size


def _learn_rate(learner: Learner, records: list[Record]) -> float:
    started = time.perf_counter()
    learner.learn_many(records)
    return len(records) / (time.perf_counter() - started)


def _rate_while(learner: Learner, records: list[Record], busy) -> tuple[float, int]:  # noqa: ANN001
    """Learning rate while `busy()` holds (one event at a time), and events learned."""
    started, done = time.perf_counter(), 0
    for record in records:
        if not busy():
            break
        learner.learn(record)
        done += 1
    elapsed = time.perf_counter() - started
    return (done / elapsed if elapsed > 0 and done else 0.0), done


def publish_cost(ends: Endpoints, sizes: list[int]) -> list[str]:
    import redis

    from coelho_pipelines import signing

    spec = get_spec("eta")
    client = redis.Redis.from_url(ends.redis_url)
    keys = live_store.Keys("eta", f"bench-size-{uuid.uuid4().hex[:6]}")
    total = max(sizes) + 3000
    events = [json.dumps(e).encode() for e in _take(spec.generator(seed=7), total)]
    learner = Learner(spec)
    fork = Capturer("fork")
    lines = [
        "2. publish cost vs model size (eta ARFRegressor). A capture blocks the learning thread",
        "   (fork, or the whole pickle inline); a fork's child pickles on another core while",
        "   learning goes on, slowing it by contention. Interval = max(2 s, cost / 10%), as",
        "   the learner schedules it; share = learning time lost / interval.",
        "   events  bytes    inline pickle | fork: blocks  child  slowdown  lost    every   "
        "share | redis SET | staleness",
    ]
    done = 0
    for size in sizes:
        learner.learn_many(Record(v, 0, i) for i, v in enumerate(events[done:size], done))
        done = size
        started = time.perf_counter()
        blob = signing.sign(pickle.dumps(learner.bundle, protocol=pickle.HIGHEST_PROTOCOL))
        inline_seconds = time.perf_counter() - started
        started = time.perf_counter()
        live_store.publish_model(client, keys, blob)
        redis_seconds = time.perf_counter() - started
        probe = [Record(v, 0, i) for i, v in enumerate(events[done : done + 3000], done)]
        clone = _clone(learner)
        quiet = _learn_rate(_clone(learner), probe[:200])
        capture = fork.capture(clone.bundle, clone.progress, snapshot=False)
        busy, _ = _rate_while(clone, probe, lambda c=capture: not c.poll())
        capture.wait()
        child = capture.pickle_seconds or (capture.finished - capture.started)
        slowdown = max(0.0, 1 - busy / quiet) if busy else 1.0
        lost = capture.blocking_seconds + slowdown * child
        every = max(PUBLISH_INTERVAL, (capture.blocking_seconds + child) / BUDGET)
        capture.retain()
        capture.release()
        lines.append(
            f"   {size:6d}  {len(blob) / 2**20:5.1f} MB  {inline_seconds:7.3f} s     | "
            f"{capture.blocking_seconds * 1000:5.0f} ms  {child:5.2f} s  {slowdown:6.0%}  "
            f"{lost:5.2f} s  {every:5.1f} s  {lost / every:5.1%} | "
            f"{redis_seconds * 1000:6.1f} ms | <= {every + child:.1f} s"
        )
    fork.close()
    return lines


def _clone(learner: Learner) -> Learner:
    bundle = pickle.loads(pickle.dumps(learner.bundle))
    return Learner(learner.spec, bundle, pickle.loads(pickle.dumps(learner.progress)))


# ---------------------------------------------------------------- 3. latency


def latency(ends: Endpoints, seconds: float, rate: float) -> list[str]:
    import redis
    from confluent_kafka import Producer

    spec = get_spec("tfd")
    topic = new_topic(ends.bootstrap_servers)
    settings = isolated(topic, idle_timeout_seconds=seconds + 30)
    # Warm start: some history so the model is not trivially small.
    history = list(_take(spec.generator(seed=3), 2000))
    produce(ends.bootstrap_servers, topic, spec, history)
    stop = threading.Event()
    run = LearnerRun(spec, ends, settings, hooks=RunHooks(should_stop=stop.is_set))
    worker = threading.Thread(target=run.run, name="bench-learner")
    worker.start()
    client = redis.Redis.from_url(ends.redis_url)
    status = live_store.Keys("tfd", settings.redis_namespace).status

    def model_events() -> int:
        value = client.hget(status, "model_events")
        return int(value) if value else 0

    deadline = time.monotonic() + 300
    while model_events() < len(history) and time.monotonic() < deadline:
        time.sleep(0.1)
    producer = Producer({"bootstrap.servers": ends.bootstrap_servers, "linger.ms": 0})
    live = list(_take(spec.generator(seed=4), int(seconds * rate)))
    sent: list[float] = []
    seen: list[float | None] = [None] * len(live)
    start = time.monotonic()
    next_check = 0
    for i, event in enumerate(live):
        while time.monotonic() < start + i / rate:
            next_check = _record(model_events(), len(history), seen, next_check)
            time.sleep(0.02)
        producer.produce(topic, json.dumps(event).encode(), str(event["user_id"]).encode())
        producer.poll(0)
        sent.append(time.monotonic())
    producer.flush(30)
    deadline = time.monotonic() + 60
    while next_check < len(live) and time.monotonic() < deadline:
        next_check = _record(model_events(), len(history), seen, next_check)
        time.sleep(0.02)
    stop.set()
    worker.join(120)
    delays = sorted(s - t for s, t in zip(seen, sent, strict=True) if s is not None)
    if not delays:
        return ["3. event-to-Redis latency: no event reached Redis"]
    p = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]  # noqa: E731
    return [
        f"3. event-to-Redis latency (tfd, {rate:.0f} events/s for {seconds:.0f} s, "
        f"{len(delays)}/{len(live)} events reflected): p50 {p(0.5):.2f} s, "
        f"p95 {p(0.95):.2f} s, max {delays[-1]:.2f} s (target <= 10 s)"
    ]


def _record(model_events: int, offset: int, seen: list, next_check: int) -> int:
    now = time.monotonic()
    while next_check < len(seen) and model_events - offset > next_check:
        seen[next_check] = now
        next_check += 1
    return next_check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default=DEFAULT_EVENTS)
    parser.add_argument("--sizes", default="500,2000,5000,10000")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--latency-rate", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2, help="learner runs per use case")
    parser.add_argument("--skip", default="", help="comma list of throughput,size,latency")
    args = parser.parse_args()
    counts = {k: int(v) for k, v in (item.split("=") for item in args.events.split(","))}
    skip = set(filter(None, args.skip.split(",")))
    lines: list[str] = []
    with services() as ends:
        if "throughput" not in skip:
            lines += throughput(ends, counts, args.rounds)
            print("\n".join(lines), flush=True)
        if "size" not in skip:
            part = publish_cost(ends, [int(s) for s in args.sizes.split(",")])
            print("\n".join(part), flush=True)
            lines += part
        if "latency" not in skip:
            part = latency(ends, args.latency_seconds, args.latency_rate)
            print("\n".join(part), flush=True)
            lines += part
    print("\n--- summary ---\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
