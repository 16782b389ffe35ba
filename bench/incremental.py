"""Incremental learner benchmark: learner vs. bare River loop, publish cost vs. model size,
event-to-Redis latency.

    .venv/bin/python bench/incremental.py [--events tfd=4000,eta=4000,ecci=20000]
        [--sizes 500,2000,5000,10000] [--latency-seconds 30]
        [--skip accel,throughput,size,latency] [--accel-events 3000]

Starts a private Kafka, Redis and MLflow (as `coelho up` does) on free ports in a temp dir.
Every figure is measured side by side in this one run. `COELHO_ACCEL=0` runs the learner on
the public paths (River's own vote) in parts 1-3.

0. Fast path: the learner's ARF vote (`coelho_pipelines.accel.forest_vote`) and River's own
   `predict_proba_one`, side by side on the same tfd events (no services needed).
1. Throughput, per use case: the learner (Kafka consume over 3 partitions, JSON decode and
   validation, features, every online candidate's predict, metrics, decision threshold and
   learn, the leaderboard, drift, live-model captures and Redis/MLflow publishing, snapshots
   every 1,000 events or 30 s) vs. what a River user writes without the platform: a Kafka
   consumer, JSON decode, the same features with River's own transformers, then for every
   candidate predict, the same metrics, learn. Each learner run is compared with the mean of
   the reference runs just before and after it. Target: >= 0.8x. An informative column gives
   the models alone on feature dicts computed beforehand.
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

from coelho_pipelines.accel.fence import accel_set as accel  # noqa: E402
from coelho_pipelines.incremental import live_store  # noqa: E402
from coelho_pipelines.incremental.capture import Capturer  # noqa: E402
from coelho_pipelines.incremental.features import FeaturePipeline  # noqa: E402
from coelho_pipelines.incremental.learner import Learner, Record, feature_pipeline  # noqa: E402
from coelho_pipelines.incremental.runner import (  # noqa: E402
    Endpoints,
    LearnerRun,
    LearnerSettings,
    RunHooks,
)
from coelho_pipelines.kafka_produce import produce_retrying  # noqa: E402
from coelho_pipelines.use_cases import get_spec  # noqa: E402
from coelho_pipelines.use_cases.spec import UseCaseSpec  # noqa: E402

DEFAULT_EVENTS = "tfd=4000,eta=4000,ecci=20000"
PUBLISH_INTERVAL = LearnerSettings().publish_interval_seconds
BUDGET = LearnerSettings().publish_budget


@contextlib.contextmanager
def services() -> Iterator[Endpoints]:
    from coelho.platform.ephemeral import temporary_platform

    with temporary_platform("kafka", "redis", "mlflow") as platform:
        yield Endpoints(
            bootstrap_servers=f"127.0.0.1:{platform.ports['kafka']}",
            redis_url=f"redis://127.0.0.1:{platform.ports['redis']}/0",
            mlflow_tracking_uri=f"http://127.0.0.1:{platform.ports['mlflow']}",
        )


def new_topic(bootstrap: str) -> str:
    from coelho.platform.kafka import ensure_topics

    topic = f"bench_learner_{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], partitions=3)
    return topic


def produce(bootstrap: str, topic: str, spec: UseCaseSpec, events: list[dict]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for event in events:
        produce_retrying(
            producer, topic, json.dumps(event).encode(), str(event[spec.key_field]).encode()
        )
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


# ---------------------------------------------------------------- 0. fast path


def _vote_loop(spec: UseCaseSpec, dataset: list, on: bool) -> tuple[float, float, list]:
    """Every classification candidate predicting (through the learner's vote, fast or public)
    then learning, on the learner's own encodings: (predict seconds, loop seconds, answers)."""
    from coelho_pipelines.accel.forest_vote import ForestVote

    models = [candidate.factory() for candidate in spec.river_candidates]
    with accel(on):
        predictors = [ForestVote.for_model(model) for model in models]
    answers, predicting = [], 0.0
    started = time.perf_counter()
    for xs, y in dataset:
        for model, predict, x in zip(models, predictors, xs, strict=True):
            t = time.perf_counter()
            answers.append(predict(x))
            predicting += time.perf_counter() - t
            model.learn_one(x, y)
    return predicting, time.perf_counter() - started, answers


def fast_path(n: int, rounds: int) -> list[str]:
    """The learner's fast path (the ARF vote, `coelho_pipelines.accel.forest_vote`) against the
    public path (River's `predict_proba_one`), side by side on the same tfd events and the
    learner's encodings, alternating runs; the answers must be identical."""
    spec = get_spec("tfd")
    encode = LearnerEncoding(spec)
    events = list(_take(spec.generator(seed=42), n))
    dataset = [(encode(e), spec.label(e)) for e in events]
    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    answers: dict[bool, list] = {}
    for _ in range(rounds):
        for on in (True, False):
            predict, loop, answers[on] = _vote_loop(spec, dataset, on)
            times[on].append((predict, loop))
    if answers[True] != answers[False]:
        raise RuntimeError("the fast vote and River's differ")
    fast_p, fast_l = (min(t[i] for t in times[True]) for i in (0, 1))
    public_p, public_l = (min(t[i] for t in times[False]) for i in (0, 1))
    return [
        f"0. fast path: the learner's ARF vote (tfd, {n} events, every candidate, best of "
        f"{rounds}; answers identical)",
        "   path     predict ms/event  predict+learn ev/s",
        f"   fast     {fast_p / n * 1000:16.3f}  {n / fast_l:18.0f}",
        f"   public   {public_p / n * 1000:16.3f}  {n / public_l:18.0f}",
        f"   speed-up {public_p / fast_p:15.2f}x  {public_l / fast_l:17.2f}x",
    ]


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
    """Models alone (every candidate the learner runs): predict then learn on feature dicts
    computed beforehand. Informative: no decoding, features or metrics."""
    features = feature_pipeline(spec)
    dataset = [(features.learn_transform(e), spec.label(e)) for e in events]
    models = [candidate.factory() for candidate in spec.river_candidates]
    wall, cpu = time.perf_counter(), time.process_time()
    for model in models:
        _predict_learn(spec, model, dataset)
    return Timing(len(dataset), time.perf_counter() - wall, time.process_time() - cpu)


def _predict_learn(spec: UseCaseSpec, model: object, dataset) -> None:
    predict = model.predict_proba_one if spec.task == "classification" else model.predict_one
    if spec.task == "clustering":
        for x, _ in dataset:
            predict(x)
            model.learn_one(x)
    else:
        for x, y in dataset:
            predict(x)
            model.learn_one(x, y)


class RiverUserFeatures:
    """The spec's features as a River user would compute them: the feature functions, then
    River's own transformers (StandardScaler and OneHotEncoder) where the learner scales and
    encodes (regression, clustering). Customer profiles (ecci) have no River transformer: the
    profile code is the spec's own, as a River user would have to write it."""

    def __init__(self, spec: UseCaseSpec) -> None:
        from river import compose, preprocessing

        self.spec = spec
        self.profile = feature_pipeline(spec) if spec.profile is not None else None
        numeric = [f.name for f in spec.features if f.kind == "numeric"]
        categorical = [f.name for f in spec.features if f.kind == "categorical"]
        self.encoder = None
        if spec.task != "classification" and self.profile is None:
            self.encoder = compose.TransformerUnion(
                compose.Select(*numeric) | preprocessing.StandardScaler(),
                compose.Select(*categorical) | preprocessing.OneHotEncoder(),
            )

    def learn_transform(self, event: dict) -> dict:
        if self.profile is not None:
            return self.profile.learn_transform(event)
        x = {}
        for feature in self.spec.features:
            value = feature.extract(event)
            if value is not None:
                x[feature.name] = int(value) if isinstance(value, bool) else value
        if self.encoder is None:
            return x
        self.encoder.learn_one(x)
        return self.encoder.transform_one(x)


def _same_for_all(spec: UseCaseSpec):
    """River's transformers, one dict shared by every candidate (the River user's loop)."""
    features, k = RiverUserFeatures(spec), len(spec.river_candidates)
    return lambda event: [features.learn_transform(event)] * k


class LearnerEncoding:
    """The learner's own feature pipelines: each candidate gets the dict the learner gives it
    (native or encoded; ecci's customer profile for all)."""

    def __init__(self, spec: UseCaseSpec) -> None:
        from coelho_pipelines.incremental.challengers import _numeric_only

        if spec.profile is not None:
            self.modes = [None] * len(spec.river_candidates)
            self.pipelines = {None: feature_pipeline(spec)}
        else:
            self.modes = [_numeric_only(spec, c) for c in spec.river_candidates]
            self.pipelines = {m: FeaturePipeline(spec, numeric_only=m) for m in set(self.modes)}

    def __call__(self, event: dict) -> list[dict]:
        encoded = {m: p.learn_transform(event) for m, p in self.pipelines.items()}
        return [encoded[m] for m in self.modes]


def reference_loop(
    spec: UseCaseSpec, ends: Endpoints, topic: str, n: int, own_encoding: bool = False
) -> Timing:
    """What a River user writes without the platform (the issue's reference): a Kafka
    consumer, JSON decode, the same features with River's own transformers, then for every
    candidate the learner runs: predict, update the same metrics, learn. Timed from the first
    message to the n-th learned, as the learner is. `own_encoding`: the learner's feature
    pipeline instead of River's transformers, so the models get the very dicts the learner's
    get and the ratio is the platform's overhead alone (River's encoding grows different,
    cheaper or dearer, trees)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": ends.bootstrap_servers,
            "group.id": f"bench-ref-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    encode = LearnerEncoding(spec) if own_encoding else _same_for_all(spec)
    models = [(c.factory(), spec.river_metrics()) for c in spec.river_candidates]
    classify, cluster = spec.task == "classification", spec.task == "clustering"
    learned, wall, cpu = 0, 0.0, 0.0
    try:
        while learned < n:
            for message in consumer.consume(500, timeout=1.0):
                if message.error():
                    continue
                if not learned:
                    wall, cpu = time.perf_counter(), time.process_time()
                event = json.loads(message.value())
                xs, y = encode(event), spec.label(event)
                t = _naive_utc(event[spec.time_field])
                for (model, metrics), x in zip(models, xs, strict=True):
                    _reference_step(model, metrics, x, y, t, classify, cluster)
                learned += 1
    finally:
        consumer.close()
    return Timing(learned - 1, time.perf_counter() - wall, time.process_time() - cpu)


def _reference_step(model, metrics: dict, x: dict, y, t, classify: bool, cluster: bool) -> None:
    """Predict, update every metric (time-rolling ones with the event time), learn."""
    if cluster:
        label = model.predict_one(x)
        for metric in metrics.values():
            _update(metric, t, x, label, model.centers)
        model.learn_one(x)
        return
    if classify:
        proba = model.predict_proba_one(x)
        pred = max(proba, key=proba.get) if proba else False
        for name, metric in metrics.items():
            _update(metric, t, y, proba if name in _PROBA_METRICS else pred)
    else:
        pred = model.predict_one(x)
        for metric in metrics.values():
            _update(metric, t, y, pred)
    model.learn_one(x, y)


def _update(metric, t, *args) -> None:
    """As the learner does: a value outside the metric's domain (RMSLE of a prediction below
    -1) skips that metric for this event."""
    from river import utils

    try:
        if isinstance(metric, utils.TimeRolling):
            metric.update(*args, t=t)
        else:
            metric.update(*args)
    except (ArithmeticError, ValueError):
        pass


def _naive_utc(value: str):
    from datetime import UTC, datetime

    return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)


_PROBA_METRICS = ("ROCAUC", "RollingROCAUC", "LogLoss")


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

    def on_step(_step, learner) -> None:
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
    """Learner runs interleaved with River-user reference loops over the same topic; each
    learner run is compared with the mean of the references just before and after it (the
    machine's load drifts)."""
    lines = [
        "1. throughput: learner (Kafka -> Redis/MLflow, snapshots every 1,000 events or 30 s) vs "
        "a River user's loop (Kafka -> JSON -> features -> predict -> metrics -> learn), "
        "every candidate in both",
        "   use case  events  candidates  reference ev/s  learner ev/s  ratio (wall)  "
        "ratio (CPU)  captures  blocking | models alone ev/s  ratio, learner's encoding",
    ]
    for key, n in counts.items():
        spec = get_spec(key)
        topic = new_topic(ends.bootstrap_servers)
        produce(ends.bootstrap_servers, topic, spec, list(_take(spec.generator(seed=42), n)))
        events = list(_take(spec.generator(seed=42), n))
        reference = [reference_loop(spec, ends, topic, n)]
        same = [reference_loop(spec, ends, topic, n, own_encoding=True)]
        bare = [bare_loop(spec, events)]
        runs = []
        for _ in range(rounds):
            runs.append(learner_throughput(spec, ends, topic, n))
            reference.append(reference_loop(spec, ends, topic, n))
            same.append(reference_loop(spec, ends, topic, n, own_encoding=True))
            bare.append(bare_loop(spec, events))
        for i, run in enumerate(runs):
            ref_rate, ref_cpu = _mean_rates(reference[i : i + 2])
            same_rate, _ = _mean_rates(same[i : i + 2])
            bare_rate, _ = _mean_rates(bare[i : i + 2])
            timing = run["timing"]
            lines.append(
                f"   {key:8s}  {n:6d}  {len(spec.river_candidates):10d}  {ref_rate:14.0f}  "
                f"{timing.rate:12.0f}  {timing.rate / ref_rate:11.2f}x  "
                f"{timing.cpu_rate / ref_cpu:10.2f}x  {run['captures']:8d}  "
                f"{run['capture_share']:7.1%} | {bare_rate:16.0f}  "
                f"{timing.rate / same_rate:24.2f}x"
            )
    lines += [
        "   (CPU: this process's CPU time, all threads; capture children and the Kafka/"
        "Redis/MLflow servers excluded. Target: learner >= 0.8x the reference)",
        "   (last column: the reference loop on the learner's own encoding, so the models"
        " learn the same dicts: the platform's overhead alone)",
        "   (the learner also validates each event, keeps every candidate's decision threshold,"
        " the leaderboard, drift, cluster analytics, and publishes to Redis and MLflow)",
    ]
    return lines


def _mean_rates(timings: list[Timing]) -> tuple[float, float]:
    """Mean wall and CPU rates of the loops timed before and after a learner run."""
    return (
        sum(t.rate for t in timings) / len(timings),
        sum(t.cpu_rate for t in timings) / len(timings),
    )


def _take(iterator, n: int):
    for _, item in zip(range(n), iterator, strict=False):
        yield item


# ---------------------------------------------------------------- 2. size


def _learn_rate(learner: Learner, records: list[Record]) -> float:
    started = time.perf_counter()
    learner.learn_many(records)
    return len(records) / (time.perf_counter() - started)


def _rate_while(learner: Learner, records: list[Record], busy) -> tuple[float, int]:
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
    parser.add_argument("--skip", default="", help="comma list of accel,throughput,size,latency")
    parser.add_argument("--accel-events", type=int, default=3000, help="events for 0. fast path")
    args = parser.parse_args()
    counts = {k: int(v) for k, v in (item.split("=") for item in args.events.split(","))}
    skip = set(filter(None, args.skip.split(",")))
    lines: list[str] = []
    if "accel" not in skip:
        lines += fast_path(args.accel_events, rounds=3)
        print("\n".join(lines), flush=True)
    if {"throughput", "size", "latency"} <= skip:
        print("\n--- summary ---\n" + "\n".join(lines))
        return 0
    with services() as ends:
        if "throughput" not in skip:
            part = throughput(ends, counts, args.rounds)
            print("\n".join(part), flush=True)
            lines += part
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
