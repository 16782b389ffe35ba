"""Pure logic of the producer loop: pacing, counts, metrics, and never dropping on a full queue.

Uses `LinesSink` on an in-memory buffer and a fake confluent producer (named as such); the
real broker tests are in `test_kafka.py`.
"""

from __future__ import annotations

import io
import threading

import orjson
from prometheus_client import REGISTRY

from coelho.producer import KafkaSink, LinesSink, Stream, run_streams
from coelho_pipelines.use_cases import get_spec

START = "2025-03-03T00:00:00+00:00"


def _stream(key: str, count: int | None, rate: float = 0.0, seed: int = 1) -> Stream:
    spec = get_spec(key)
    return Stream(spec, spec.generator(seed=seed, start=START), rate=rate, count=count)


def test_count_is_exact_per_stream_and_lines_are_the_generated_events():
    out = io.BytesIO()
    streams = [_stream("tfd", 1234), _stream("eta", 7), _stream("ecci", 0)]
    assert run_streams(streams, LinesSink(out)) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 1234 + 7
    assert [s.stats.sent for s in streams] == [1234, 7, 0]
    assert [s.stats.acked for s in streams] == [1234, 7, 0]
    expected = get_spec("eta").generator(seed=1, start=START).take(7)
    eta_lines = [orjson.loads(line) for line in lines if b'"trip_id"' in line]
    assert eta_lines == expected


def test_rate_paces_the_stream():
    stream = _stream("eta", None, rate=200.0)
    stop = threading.Event()
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    run_streams([stream], LinesSink(io.BytesIO()), stop)
    timer.cancel()
    # ~200 events in ~1 s: pacing, not a burst of batches (bounds are loose on a busy machine).
    assert 100 <= stream.stats.sent <= 260


def test_due_is_bounded_by_batch_count_and_schedule():
    stream = _stream("tfd", 10, rate=100.0)
    stream.started = 0.0
    assert stream.due(0.0) == 1
    assert stream.due(0.05) == 6
    assert stream.due(100.0) == 10  # capped by the remaining count
    unpaced = _stream("tfd", None)
    assert unpaced.due(0.0) == 500


def test_prometheus_metrics_follow_the_stream():
    def value(name: str, labels: dict | None = None) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    labels = {"use_case": "tfd"}
    sent_before = value("coelho_producer_messages_sent_total", labels)
    size_before = value("coelho_producer_message_bytes_count", labels)
    streams = [_stream("tfd", 3000), _stream("ecci", 500)]
    run_streams(streams, LinesSink(io.BytesIO()))
    assert value("coelho_producer_messages_sent_total", labels) - sent_before == 3000
    assert value("coelho_producer_message_bytes_count", labels) - size_before == 3000
    fraud_ratio = value("coelho_producer_fraud_ratio")
    assert fraud_ratio == streams[0].stats.positives / 3000
    assert 0 < fraud_ratio < 0.05
    assert value("coelho_producer_active_sessions") == streams[1].generator.active_sessions > 0


class FakeFullQueueProducer:
    """Fake confluent producer whose local queue is full for the first `full_for` calls."""

    def __init__(self, full_for: int) -> None:
        self.full_for = full_for
        self.accepted: list[tuple[str, bytes, bytes]] = []
        self.polls = 0

    def produce(self, topic, value, key, on_delivery=None):
        if self.full_for > 0:
            self.full_for -= 1
            raise BufferError("Local: Queue full")
        self.accepted.append((topic, key, value))

    def poll(self, timeout=0):
        self.polls += 1
        return 0

    def flush(self, timeout=0):
        return 0


def test_a_full_queue_is_served_and_retried_never_dropped():
    sink = KafkaSink({"bootstrap.servers": "127.0.0.1:1"})
    sink.producer = FakeFullQueueProducer(full_for=5)
    stream = _stream("tfd", 20)
    run_streams([stream], sink)
    assert len(sink.producer.accepted) == 20 == stream.stats.sent
    assert sink.producer.polls >= 5
    keys = [key for _, key, _ in sink.producer.accepted]
    values = [orjson.loads(value) for _, _, value in sink.producer.accepted]
    assert keys == [v["user_id"].encode() for v in values]


def test_a_stop_request_ends_a_retry_on_a_full_queue():
    stop = threading.Event()
    sink = KafkaSink({"bootstrap.servers": "127.0.0.1:1"}, stop)
    sink.producer = FakeFullQueueProducer(full_for=10**9)
    stream = _stream("tfd", 5)
    threading.Timer(0.3, stop.set).start()
    run_streams([stream], sink, stop)
    assert stream.stats.sent == 0  # nothing counted that Kafka never accepted


def test_local_histogram_exports_what_observe_would():
    from prometheus_client import CollectorRegistry, Histogram

    from coelho.producer import LocalHistogram

    registry = CollectorRegistry()
    direct = Histogram("direct", "d", ["uc"], buckets=(1, 10, 100), registry=registry)
    bulk = Histogram("bulk", "b", ["uc"], buckets=(1, 10, 100), registry=registry)
    local = LocalHistogram(bulk.labels(uc="x"))
    values = [0.5, 1, 1.0001, 10, 99, 100, 150, 3, 0]
    for value in values:
        direct.labels(uc="x").observe(value)
        local.observe(value)
    local.publish()
    local.publish()  # publishing twice adds nothing

    def samples(name):
        return {
            (s.name.removeprefix(name), s.labels.get("le")): s.value
            for metric in registry.collect()
            if metric.name == name
            for s in metric.samples
            if not s.name.endswith("_created")
        }

    assert samples("direct") == samples("bulk")
    assert samples("bulk")[("_count", None)] == len(values)
