"""The learner against real Kafka, Redis and MLflow: order, resume, outages, drift.

Every test has its own topic, consumer group, MLflow experiment and Redis namespace.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest
import redis
from incremental_helpers import (
    endpoints,
    generate,
    make_topic,
    produce,
    produce_events,
    settings,
    thresholded,
)

from coelho_pipelines import telemetry
from coelho_pipelines.batch.drift_retraining import build_drift_sensor
from coelho_pipelines.incremental import live_store
from coelho_pipelines.incremental.features import FeaturePipeline
from coelho_pipelines.incremental.runner import LearnerRun, RunHooks
from coelho_pipelines.incremental.snapshot import SnapshotStore
from coelho_pipelines.naming import MLFLOW_PARADIGM_TAG, MLFLOW_USE_CASE_TAG, retraining_job_name
from coelho_pipelines.resources import LakehouseResource, RedisResource
from coelho_pipelines.use_cases import get_spec
from coelho_pipelines.use_cases.spec import PromotionPolicy

pytestmark = pytest.mark.services
TFD, ETA, ECCI = get_spec("tfd"), get_spec("eta"), get_spec("ecci")
CHILD = Path(__file__).with_name("learner_child.py")


def _counter(metric, *labels: str) -> float:
    return metric.labels(*labels)._value.get()


def _committed(bootstrap: str, group: str, topic: str, partitions: int = 3) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=10)}
    finally:
        consumer.close()


def test_learns_every_partition_prequentially_like_river_and_skips_bad_events(
    kafka_service, redis_up, mlflow_service
) -> None:
    from river import evaluate
    from river.metrics.base import Metrics

    bootstrap = kafka_service.bootstrap_servers
    topic = make_topic(bootstrap)
    events = generate(TFD, 400, seed=21, fraud_rate=0.1)
    produce_events(bootstrap, topic, TFD, events[:200])
    bad = [b"{broken", json.dumps(events[0] | {"currency": "XYZ"}).encode(), b"null"]
    produce(bootstrap, topic, [(b"bad", value) for value in bad])
    produce_events(bootstrap, topic, TFD, events[200:])
    run_settings = settings(topic, snapshot_every=150)
    order: list[str] = []
    frozen: set[bool] = set()

    def on_step(step, _learner) -> None:
        if step.event is not None:
            order.append(step.event[TFD.id_field])
        frozen.add(gc.get_freeze_count() > 0)

    bad_before = _counter(telemetry.LEARNER_BAD_EVENTS, "tfd")
    run = LearnerRun(
        TFD,
        endpoints(kafka_service, redis_up, mlflow_service),
        run_settings,
        hooks=RunHooks(on_step=on_step),
    )
    summary = run.run()

    assert summary.stop_reason == "idle"
    assert summary.events_learned == 400 and summary.bad_events == 3
    assert frozen == {True} and gc.get_freeze_count() == 0  # start-up heap frozen while learning
    assert _counter(telemetry.LEARNER_BAD_EVENTS, "tfd") - bad_before == 3
    assert sorted(order) == sorted(e[TFD.id_field] for e in events)
    assert {e["user_id"] for e in events[:50]}  # keyed messages spread over partitions:
    assert len(summary.snapshot.offsets) == 3 and sum(summary.snapshot.offsets.values()) == 403

    # River's progressive validation of the served model (its online threshold deciding the
    # labels) on the events in the learner's order; label and probability metrics apart.
    by_id = {e[TFD.id_field]: e for e in events}
    features = FeaturePipeline(TFD)
    dataset = [(features.learn_transform(by_id[i]), by_id[i]["is_fraud"]) for i in order]
    scalars = {
        k: m
        for k, m in TFD.river_metrics().items()
        if k not in ("ConfusionMatrix", "ClassificationReport", "RollingROCAUC", "RollingFBeta")
    }
    assert summary.metrics["decision_threshold"] != 0.5  # the threshold moved off argmax
    for labels in (True, False):
        group = [m for m in scalars.values() if m.requires_labels is labels]
        evaluate.progressive_val_score(dataset, thresholded(TFD.river_model()), Metrics(group))
    expected = {k: m.get() for k, m in scalars.items()}
    assert {k: summary.metrics[k] for k in expected} == expected

    client = redis.Redis.from_url(redis_up.url)
    ns = run_settings.redis_namespace
    status = live_store.read_status(client, "tfd", ns)
    assert status["state"] == "FINISHED" and status["events_learned"] == "400"
    assert status["mlflow_run_id"] == summary.mlflow_run_id
    assert status["model_events"] == "400" and int(status["model_bytes"]) > 1000
    # The live model's offsets: the next offset per partition (400 events + 3 bad messages).
    model_offsets = json.loads(status["model_offsets"])
    assert model_offsets == {str(p): o for p, o in summary.snapshot.offsets.items()}
    metrics = live_store.read_metrics(client, "tfd", ns)
    assert metrics["FBeta"] == summary.metrics["FBeta"]
    assert (
        sum(map(sum, metrics["ConfusionMatrix"]["matrix"])) == metrics["ConfusionMatrix"]["total"]
    )
    version, model = live_store.load_live_model(client, "tfd", ns)
    assert version == live_store.live_model_version(client, "tfd", ns) >= 1
    assert model.events_learned == 400 and set(model.predict(events[0])) == {
        "fraud_probability",
        "prediction",
        "decision_threshold",
    }
    assert model.predict(events[0])["decision_threshold"] == summary.metrics["decision_threshold"]
    assert live_store.random_sample(client, "tfd", ns)[TFD.id_field] in by_id

    store = SnapshotStore(mlflow_service.tracking_uri, TFD, run_settings.experiment)
    mlflow_run = store.find_run()
    assert mlflow_run.info.run_name == "ARFClassifier" and mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.tags[MLFLOW_PARADIGM_TAG] == "incremental"
    assert mlflow_run.data.tags[MLFLOW_USE_CASE_TAG] == "tfd"
    history = store.client.get_metric_history(mlflow_run.info.run_id, "FBeta")
    assert [m.step for m in history][-1] == 400 and {100, 200, 300} <= {m.step for m in history}
    loaded = store.load_latest()
    assert loaded.info.events_learned == 400
    assert loaded.bundle.predict(events[5]) == model.predict(events[5])
    committed = _committed(bootstrap, run_settings.consumer_group, topic)
    assert committed == summary.snapshot.offsets


def _child(args: dict, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHILD), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=str(CHILD.parent),
    )


def test_resume_after_kill_9_equals_one_uninterrupted_run(
    kafka_service, redis_up, mlflow_service
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = make_topic(bootstrap)
    n = 800
    events = generate(TFD, n, seed=31, fraud_rate=0.1)
    produce_events(bootstrap, topic, TFD, events)
    probes = generate(TFD, 40, seed=99, fraud_rate=0.3)
    ends = endpoints(kafka_service, redis_up, mlflow_service)

    reference = LearnerRun(TFD, ends, settings(topic, until_events=n, snapshot_every=10_000))
    assert reference.run().events_learned == n

    interrupted = settings(topic, snapshot_every=250)
    child = _child(
        {
            "use_case": "tfd",
            "endpoints": dataclasses.asdict(ends),
            "settings": dataclasses.asdict(interrupted),
            "kill_at": 600,
            "after_snapshot": 250,
        },
        dict(os.environ),
    )
    assert child.returncode == -9, child.stderr[-3000:]
    killed = json.loads(child.stdout.strip().splitlines()[-1])
    client = redis.Redis.from_url(redis_up.url)
    status = live_store.read_status(client, "tfd", interrupted.redis_namespace)
    assert status["state"] == "LIVE"  # nobody said goodbye

    resumed = LearnerRun(TFD, ends, dataclasses.replace(interrupted, until_events=n))
    summary = resumed.run()
    assert summary.resumed_from == killed["snapshot"] and 250 <= killed["snapshot"] < 600
    assert summary.events_learned == n and summary.events_this_run == n - killed["snapshot"]
    a, b = reference.learner, resumed.learner
    assert [b.bundle.predict(p) for p in probes] == [a.bundle.predict(p) for p in probes]
    assert b.metric_values() == a.metric_values()
    assert b.progress.offsets == a.progress.offsets
    store = SnapshotStore(mlflow_service.tracking_uri, TFD, interrupted.experiment)
    run = store.find_run()
    steps = [m.step for m in store.client.get_metric_history(run.info.run_id, "FBeta")]
    assert max(steps) == n and steps.count(100) == 1  # one MLflow run, history continued
    assert live_store.read_status(client, "tfd", interrupted.redis_namespace)["state"] == (
        "FINISHED"
    )


def _without_times(board: dict) -> dict:
    """A leaderboard dict without the promotions' wall-clock times."""
    promotions = [{k: v for k, v in p.items() if k != "at"} for p in board["promotions"]]
    return {**board, "promotions": promotions}


def test_resume_after_kill_9_restores_the_leaderboard_and_the_served_leader(
    kafka_service, redis_up, mlflow_service
) -> None:
    quick = {"margin": 0.0, "min_gap": 0.02, "sustain_events": 200, "check_every": 50,
             "min_events": 200}  # fmt: skip
    spec = dataclasses.replace(TFD, river_promotion=PromotionPolicy(**quick))
    bootstrap = kafka_service.bootstrap_servers
    topic = make_topic(bootstrap)
    n = 2000
    events = generate(spec, n, seed=12, fraud_rate=0.1)
    produce_events(bootstrap, topic, spec, events)
    probes = generate(spec, 40, seed=98, fraud_rate=0.3)
    ends = endpoints(kafka_service, redis_up, mlflow_service)

    reference = LearnerRun(spec, ends, settings(topic, until_events=n, snapshot_every=10_000))
    assert reference.run().events_learned == n
    first = reference.learner.leaderboard.promotions[0]
    assert first.events_learned <= n - 600  # room for a snapshot between it and the kill
    interrupted = settings(topic, snapshot_every=250)
    child = _child(
        {
            "use_case": "tfd",
            "endpoints": dataclasses.asdict(ends),
            "settings": dataclasses.asdict(interrupted),
            "kill_at": n - 100,
            # Snapshots land where captures allow, not on exact counts: wait for the first
            # one that holds the promotion (a snapshot each 250 events leaves several).
            "after_snapshot": first.events_learned + 1,
            "promotion": quick,
        },
        dict(os.environ),
    )
    assert child.returncode == -9, child.stderr[-3000:]
    killed = json.loads(child.stdout.strip().splitlines()[-1])
    assert first.events_learned < killed["snapshot"] < n  # the snapshot holds a promotion

    resumed = LearnerRun(spec, ends, dataclasses.replace(interrupted, until_events=n))
    summary = resumed.run()
    assert summary.resumed_from == killed["snapshot"] and summary.events_learned == n
    a, b = reference.learner, resumed.learner
    assert _without_times(b.leaderboard.to_dict()) == _without_times(a.leaderboard.to_dict())
    assert b.bundle.candidate == a.bundle.candidate == a.leaderboard.served
    assert b.bundle.decision_threshold == a.bundle.decision_threshold
    assert [b.bundle.predict(p) for p in probes] == [a.bundle.predict(p) for p in probes]
    assert b.metric_values() == a.metric_values()
    # recorded: Redis leaderboard and status, MLflow tag and promotion metric
    client = redis.Redis.from_url(redis_up.url)
    stored = live_store.read_leaderboard(client, "tfd", interrupted.redis_namespace)
    assert stored["served"] == a.leaderboard.served and stored["events_learned"] == n
    assert [p["served"] for p in stored["promotions"]] == [
        p.served for p in a.leaderboard.promotions
    ]
    status = live_store.read_status(client, "tfd", interrupted.redis_namespace)
    assert status["served_candidate"] == a.leaderboard.served
    assert float(status["decision_threshold"]) == a.bundle.decision_threshold
    store = SnapshotStore(mlflow_service.tracking_uri, spec, interrupted.experiment)
    run = store.find_run()
    assert run.data.tags["coelho.served_candidate"] == a.leaderboard.served
    steps = [m.step for m in store.client.get_metric_history(run.info.run_id, "promotion")]
    assert sorted(set(steps)) == [p.events_learned for p in a.leaderboard.promotions]


def test_learning_continues_while_redis_is_down_and_the_model_appears_after(
    kafka_service, redis_up, mlflow_service
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = make_topic(bootstrap)
    events = generate(ECCI, 1500, seed=41)
    produce_events(bootstrap, topic, ECCI, events)
    run_settings = settings(topic, snapshot_every=500)
    client = redis.Redis.from_url(redis_up.url, socket_connect_timeout=2)
    seen: dict[str, int] = {}

    def on_step(_step, learner) -> None:
        if learner.events_learned == 1:
            redis_up.stop()
        elif learner.events_learned == 1000:
            seen["published_while_down"] = len(run.publisher.published)
            redis_up.start()

    failures_before = _counter(telemetry.LEARNER_ERRORS, "ecci", "redis")
    run = LearnerRun(
        ECCI,
        endpoints(kafka_service, redis_up, mlflow_service),
        run_settings,
        hooks=RunHooks(on_step=on_step),
    )
    try:
        summary = run.run()
    finally:
        redis_up.start()
    assert summary.events_learned == 1500 and summary.stop_reason == "idle"
    assert summary.redis_failures >= 1
    assert _counter(telemetry.LEARNER_ERRORS, "ecci", "redis") > failures_before
    assert seen["published_while_down"] == 0
    assert summary.snapshot.events_learned == 1500  # MLflow kept working meanwhile
    ns = run_settings.redis_namespace
    version, model = live_store.load_live_model(client, "ecci", ns)
    assert version >= 1 and model.events_learned == 1500
    status = live_store.read_status(client, "ecci", ns)
    assert status["state"] == "FINISHED" and status["model_events"] == "1500"


def test_drift_is_recorded_and_reaches_the_retraining_sensor(
    kafka_service, redis_up, mlflow_service, tmp_path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = make_topic(bootstrap, partitions=1)  # generator order, so drift_at is exact
    # The generator's own concept drift (`--drift-at`: phished accounts used from their
    # owners' devices, for travel and bank transfers) lifts the served model's error beyond
    # its own recent past (30% fraud, so the fraud group fills fast). The leader (logistic
    # regression) is promoted at ~1,400 events and the monitor's references restart then.
    drift_at = 3000
    events = generate(TFD, 6000, seed=13, fraud_rate=0.3, drift_at=drift_at)
    produce_events(bootstrap, topic, TFD, events)
    run_settings = settings(topic, drift_warmup_events=1000, snapshot_every=2000)
    drifts_before = _counter(telemetry.LEARNER_DRIFTS, "tfd")
    summary = LearnerRun(
        TFD, endpoints(kafka_service, redis_up, mlflow_service), run_settings
    ).run()
    assert summary.drifts >= 1
    assert _counter(telemetry.LEARNER_DRIFTS, "tfd") - drifts_before == summary.drifts

    client = redis.Redis.from_url(redis_up.url)
    ns = run_settings.redis_namespace
    records = live_store.read_drifts(client, "tfd", 0, ns)
    assert len(records) == summary.drifts
    assert [r["id"] for r in records] == list(range(1, len(records) + 1))
    after = [r for r in records if r["events_learned"] > drift_at]
    assert after, records  # the concept change is caught
    first = after[0]
    assert first["error_after"] > first["error_before"]
    assert first["mlflow_run_id"] == summary.mlflow_run_id
    store = SnapshotStore(mlflow_service.tracking_uri, TFD, run_settings.experiment)
    run = store.find_run()
    assert (
        json.loads(run.data.tags["coelho.last_drift"])["events_learned"] >= first["events_learned"]
    )
    marks = store.client.get_metric_history(run.info.run_id, "drift_detected")
    assert first["events_learned"] in {m.step for m in marks}

    # The sensor reads the drift; with no raw events in this lakehouse it says why it does
    # not retrain (tests/batch/test_batch_automation.py covers the request itself).
    sensor = build_drift_sensor(TFD, namespace=ns)
    resources = {
        "redis": RedisResource(url=redis_up.url),
        "lakehouse": LakehouseResource(uri=str(tmp_path / "lakehouse")),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance, resources=resources)
        result = sensor.evaluate_tick(context)
        assert not result.run_requests
        assert f"the latest at {records[-1]['events_learned']} events" in result.skip_message
        assert "not retraining: no raw events yet" in result.skip_message
        assert sensor.job_name == retraining_job_name(get_spec("tfd"))
        assert result.cursor == str(records[-1]["id"])
        again = dg.build_sensor_context(
            instance=instance, resources=resources, cursor=result.cursor
        )
        result = sensor.evaluate_tick(again)
        assert not result.run_requests and "no new drift" in result.skip_message


def test_a_new_run_clears_the_previous_stop_reason(redis_up) -> None:
    client = redis.Redis.from_url(redis_up.url)
    keys = live_store.Keys("tfd", f"test-clear-{uuid.uuid4().hex[:8]}")
    live_store.write_status(client, keys, state=live_store.FINISHED, stop_reason="idle")
    assert live_store.read_status(client, "tfd", keys.namespace)["stop_reason"] == "idle"
    live_store.write_status(client, keys, state=live_store.LIVE, stop_reason="", drifts=None)
    status = live_store.read_status(client, "tfd", keys.namespace)
    assert status["state"] == "LIVE" and "stop_reason" not in status and "drifts" not in status


def test_the_reader_knows_when_it_reached_the_head_of_the_stream(kafka_service) -> None:
    """`at_head` (a fetch found less than a batch) lets a slow stream's learner publish every
    interval instead of every 100 events."""
    from coelho_pipelines.incremental.consumer import TopicReader

    bootstrap = kafka_service.bootstrap_servers
    topic = make_topic(bootstrap, partitions=1)
    produce_events(bootstrap, topic, TFD, generate(TFD, 200, seed=3))
    with TopicReader(bootstrap, topic, f"test-{uuid.uuid4().hex[:8]}", batch_size=50) as reader:
        seen, heads = 0, []
        for record in reader.records():
            heads.append(reader.at_head)
            seen += record is not None
            if seen == 200 and reader.at_head:
                break
    assert seen == 200
    assert False in heads  # fetches of the backlog were full batches
    assert heads[-1] is True
