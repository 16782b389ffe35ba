"""produce_retrying: a full local queue is waited out, never dropped (pure logic, fake producer)."""

from __future__ import annotations

import threading

from coelho_pipelines.kafka_produce import produce_retrying


class FakeQueueProducer:
    """Fake confluent producer: the local queue is full for the first `full_for` calls."""

    def __init__(self, full_for: int) -> None:
        self.full_for = full_for
        self.calls: list[tuple[tuple, dict]] = []
        self.poll_timeouts: list[float] = []

    def produce(self, topic, *args, **kwargs):
        if self.full_for > 0:
            self.full_for -= 1
            raise BufferError("Local: Queue full")
        self.calls.append(((topic, *args), kwargs))

    def poll(self, timeout=0.0):
        self.poll_timeouts.append(timeout)
        return 0


def test_a_full_queue_is_polled_then_the_message_is_queued_once():
    producer = FakeQueueProducer(full_for=3)
    assert produce_retrying(producer, "t", b"v", b"k", poll_seconds=0.2) is True
    assert producer.calls == [(("t", b"v", b"k"), {})]
    assert producer.poll_timeouts == [0.2, 0.2, 0.2]


def test_partition_and_delivery_callback_are_passed_only_when_given():
    def report(err, msg) -> None: ...

    producer = FakeQueueProducer(full_for=0)
    produce_retrying(producer, "t", b"v", partition=2, on_delivery=report)
    produce_retrying(producer, "t", b"w")
    assert producer.calls == [
        (("t", b"v", None), {"partition": 2, "on_delivery": report}),
        (("t", b"w", None), {}),
    ]


def test_a_stop_during_a_full_queue_returns_false_without_queueing():
    stop = threading.Event()
    stop.set()
    producer = FakeQueueProducer(full_for=1)
    assert produce_retrying(producer, "t", b"v", stop=stop) is False
    assert producer.calls == []
    assert produce_retrying(producer, "t", b"v", stop=stop) is True
    assert len(producer.calls) == 1
