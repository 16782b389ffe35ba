"""Real Kafka, real Delta: exactly once across kill -9, poison messages, bounded passes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from fake_events import fake_events
from ingest_helpers import private_spec, produce_events, produce_values

from coelho_pipelines import naming
from coelho_pipelines.ingestion.pipeline import ingest
from coelho_pipelines.lakehouse.tables import app_id, raw_schema
from coelho_pipelines.resources import KafkaResource, LakehouseResource

pytestmark = pytest.mark.services
COELHO = str(Path(sys.executable).with_name("coelho"))


def _table(lakehouse: LakehouseResource, name: str):
    return DeltaTable(lakehouse.table_uri(name)).to_pyarrow_table()


def _poison(i: int) -> bytes:
    kinds = [
        b"{not json",
        b'{"transaction_id": 5}',
        b"\xc3\x28 invalid utf-8",
        orjson.dumps({"hello": "world"}),
        b"x" * 300_000,
    ]
    return kinds[i % len(kinds)]


def test_kill_minus_nine_neither_loses_nor_duplicates(
    kafka: KafkaResource, lakehouse: LakehouseResource, tmp_path: Path
) -> None:
    spec = private_spec("tfd", kafka.bootstrap_servers)
    n_events, n_poison = 6_000, 30
    events = fake_events(spec, n_events, seed=17)
    produce_events(kafka.bootstrap_servers, spec, events[: n_events // 2])
    produce_values(kafka.bootstrap_servers, spec.topic, [_poison(i) for i in range(n_poison)])
    produce_events(kafka.bootstrap_servers, spec, events[n_events // 2 :])
    log_dir = Path(lakehouse.table_uri(naming.raw_table_name(spec))) / "_delta_log"
    command = [
        COELHO, "ingest", "--use-case", "tfd", "--topic", spec.topic, "--batch-size", "250",
        "--bootstrap-servers", kafka.bootstrap_servers, "--lakehouse", lakehouse.uri, "--quiet",
    ]  # fmt: skip
    rng = random.Random(1234)
    partial_counts = []
    for _kill in range(3):
        commits_before = len(list(log_dir.glob("*.json"))) if log_dir.exists() else 0
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        target = commits_before + rng.randint(1, 4)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if log_dir.exists() and len(list(log_dir.glob("*.json"))) >= target:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.15))  # land anywhere: consuming, validating, committing
        assert process.poll() is None, "the pass ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        partial_counts.append(_table(lakehouse, naming.raw_table_name(spec)).num_rows)
    assert any(0 < count < n_events for count in partial_counts), partial_counts
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stderr

    rows = _table(lakehouse, naming.raw_table_name(spec))
    assert rows.num_rows == n_events
    ids = rows.column(spec.id_field)
    assert pc.count_distinct(ids).as_py() == n_events
    assert set(ids.to_pylist()) == {e[spec.id_field] for e in events}
    dead = _table(lakehouse, naming.dead_letter_table_name(spec))
    assert dead.num_rows == n_poison
    coordinates = set(zip(dead.column("kafka_partition").to_pylist(),
                          dead.column("kafka_offset").to_pylist(), strict=True))  # fmt: skip
    assert len(coordinates) == n_poison
    end_offsets = kafka.end_offsets(spec.topic)
    assert sum(end_offsets.values()) == n_events + n_poison
    assert kafka.watermarks(spec.topic) == {p: (0, end) for p, end in end_offsets.items()}
    table = DeltaTable(lakehouse.table_uri(naming.raw_table_name(spec)))
    assert {p: table.transaction_version(app_id(spec.topic, p)) for p in end_offsets} == end_offsets
    assert (
        "0 events and 0 dead letters"
        in subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    )


def test_poison_lands_in_dead_letters_and_neighbours_in_the_table(
    kafka: KafkaResource, lakehouse: LakehouseResource
) -> None:
    spec = private_spec("ecci", kafka.bootstrap_servers)
    good = fake_events(spec, 40, seed=3)
    bad_type = dict(good[0], price="cheap")
    missing = {k: v for k, v in good[1].items() if k != "customer_id"}
    poison = [
        (b'{"event_id": "a",', "invalid JSON"),
        (orjson.dumps(bad_type), "field price: expected float, got string"),
        (orjson.dumps(missing), "field customer_id: missing"),
        (b"z" * 400_000, "payload too large"),
        (b'{"event_id": "\xff\xfe"}', "invalid UTF-8"),
        (orjson.dumps(dict(good[2], quantity=9)), "field quantity: 9 above maximum 4"),
    ]
    values, keys = [], []
    for i, event in enumerate(good[3:]):
        values.append(orjson.dumps(event))
        keys.append(event["customer_id"].encode())
        if i < len(poison):
            values.append(poison[i][0])
            keys.append(b"poison-key")
    produce_values(kafka.bootstrap_servers, spec.topic, values, keys, partition=1)
    result = ingest(spec, kafka, lakehouse)
    assert result.events == len(good) - 3
    assert result.dead_letters == len(poison)
    rows = _table(lakehouse, naming.raw_table_name(spec))
    assert rows.schema == raw_schema(spec)
    assert sorted(rows.column("event_id").to_pylist()) == sorted(e["event_id"] for e in good[3:])
    dead = _table(lakehouse, naming.dead_letter_table_name(spec)).to_pylist()
    reasons = sorted(d["reason"] for d in dead)
    for _raw, expected in poison:
        assert any(expected in reason for reason in reasons), (expected, reasons)
    assert {d["raw_key"] for d in dead} == {b"poison-key"}
    assert {d["raw_value"] for d in dead} == {p[0] for p in poison}
    # every message has exactly one home: a row or a dead letter, at its own offset
    offsets = sorted(rows.column("kafka_offset").to_pylist() + [d["kafka_offset"] for d in dead])
    assert offsets == list(range(len(values)))


def test_max_events_bounds_a_pass_and_the_next_resumes(
    kafka: KafkaResource, lakehouse: LakehouseResource
) -> None:
    spec = private_spec("eta", kafka.bootstrap_servers)
    produce_events(kafka.bootstrap_servers, spec, fake_events(spec, 900, seed=5))
    first = ingest(spec, kafka, lakehouse, max_events=200, batch_size=64)
    assert first.messages_read == 200 and first.events == 200
    assert sum(r.size for r in first.ranges) == 200
    assert first.commits >= 4  # batches of <= 64 messages
    second = ingest(spec, kafka, lakehouse)
    assert second.events == 700
    assert [r.start for r in second.ranges] == [first.committed_offsets[p] for p in (0, 1, 2)]
    assert _table(lakehouse, naming.raw_table_name(spec)).num_rows == 900
    assert sum(second.lag.values()) == 0
