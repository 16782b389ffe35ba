"""Producers against the real session Kafka broker (each test on its own fresh topics)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import defaultdict

import orjson
import pytest
from confluent_kafka import Consumer

from coelho.platform import ensure_topics, free_port
from coelho.producer import KafkaSink, Stream, run_streams
from coelho_pipelines.resources.kafka import KafkaResource
from coelho_pipelines.use_cases import all_specs, get_spec

pytestmark = pytest.mark.services

START = "2025-03-03T00:00:00+00:00"
N_EVENTS = 3000


def _fresh_topic(bootstrap: str, key: str) -> str:
    topic = f"test_producer_{key}_{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], partitions=3)
    return topic


def _consume(bootstrap: str, topics: list[str], expected: int, timeout: float = 60.0) -> list:
    """Every message of `topics` (stops once `expected` arrived and partitions hit EOF)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe(topics)
    messages, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, timeout=1.0)
            fresh = [m for m in batch if m.error() is None]
            messages.extend(fresh)
            if len(messages) >= expected and not fresh and consumer.assignment():
                break
    finally:
        consumer.close()
    return messages


def _cli(*args: str, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "coelho.cli", "produce", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **popen)


def test_events_are_consumed_back_complete_keyed_valid_and_spread(kafka_service):
    bootstrap = kafka_service.bootstrap_servers
    specs = [dataclasses.replace(s, topic=_fresh_topic(bootstrap, s.key)) for s in all_specs()]
    streams = [
        Stream(spec, spec.generator(seed=7, start=START), rate=0, count=N_EVENTS) for spec in specs
    ]
    sink = KafkaSink(KafkaResource(bootstrap_servers=bootstrap).producer_config())
    sink.check([spec.topic for spec in specs])
    assert run_streams(streams, sink) == 0
    assert [(s.stats.acked, s.stats.errors) for s in streams] == [(N_EVENTS, 0)] * 3

    messages = _consume(bootstrap, [s.topic for s in specs], 3 * N_EVENTS)
    by_topic = defaultdict(list)
    for message in messages:
        by_topic[message.topic()].append(message)
    for spec in specs:
        received = by_topic[spec.topic]
        assert len(received) == N_EVENTS  # complete, no duplicates
        events = [orjson.loads(m.value()) for m in received]
        expected_ids = {
            e[spec.id_field] for e in spec.generator(seed=7, start=START).take(N_EVENTS)
        }
        assert {e[spec.id_field] for e in events} == expected_ids
        partition_of_key = {}
        for message, event in zip(received, events, strict=True):
            assert message.key() == event[spec.key_field].encode()
            assert partition_of_key.setdefault(message.key(), message.partition()) == (
                message.partition()
            )
            spec.event_model.model_validate(event)
        assert {m.partition() for m in received} == {0, 1, 2}


def test_cli_stdout_prints_valid_json_lines():
    result = _cli("--use-case", "tfd", "--stdout", "--count", "5", "--rate", "0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    model = get_spec("tfd").event_model
    for line in lines:
        model.model_validate(json.loads(line))
    both = _cli("--use-case", "all", "--stdout", "--count", "2", "--rate", "0", "--seed", "3")
    assert both.returncode == 0, both.stderr
    assert len(both.stdout.splitlines()) == 6


def test_cli_same_seed_and_start_give_the_same_lines():
    args = ("--use-case", "ecci", "--stdout", "--count", "50", "--rate", "0", "--start", START)
    assert _cli(*args).stdout == _cli(*args).stdout != ""


def test_cli_unreachable_broker_is_one_line_and_non_zero():
    unused = free_port()
    started = time.monotonic()
    result = _cli(
        "--use-case", "tfd", "--count", "5", "--bootstrap-servers", f"127.0.0.1:{unused}",
        "--connect-timeout", "2", "--metrics-port", "0",
    )  # fmt: skip
    assert result.returncode != 0
    assert time.monotonic() - started < 60
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("coelho produce: cannot reach Kafka at 127.0.0.1:")


def test_cli_missing_topic_is_one_line(kafka_service):
    result = _cli(
        "--use-case", "eta", "--count", "5", "--topic", f"missing_{uuid.uuid4().hex[:6]}",
        "--bootstrap-servers", kafka_service.bootstrap_servers, "--metrics-port", "0",
    )  # fmt: skip
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "missing" in result.stderr and "--create-topics" in result.stderr


def test_cli_produces_serves_metrics_and_stops_cleanly_on_sigterm(kafka_service):
    bootstrap = kafka_service.bootstrap_servers
    topic = _fresh_topic(bootstrap, "tfd")
    metrics_port = free_port()
    command = [
        sys.executable, "-m", "coelho.cli", "produce", "--use-case", "tfd",
        "--rate", "300", "--topic", topic, "--bootstrap-servers", bootstrap,
        "--metrics-port", str(metrics_port), "--progress-interval", "0.2",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        first = process.stderr.readline()  # a progress line once producing runs
        assert re.match(r"tfd [\d,]+ sent", first), first
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        for name in (
            "coelho_producer_messages_sent_total",
            "coelho_producer_send_latency_seconds_bucket",
            "coelho_producer_message_bytes_bucket",
            "coelho_producer_fraud_ratio",
        ):
            assert name in metrics
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    final = rest.strip().splitlines()[-1]
    match = re.search(r"tfd ([\d,]+) sent ([\d,]+) acked", final)
    assert final.startswith("done in") and match, final
    sent, acked = (int(g.replace(",", "")) for g in match.groups())
    assert sent == acked > 100
    assert len(_consume(bootstrap, [topic], acked)) == acked  # flushed: all of it landed
