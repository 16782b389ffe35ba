"""Continuous ingestion: a Dagster run that commits within seconds, reports materializations and
check results while it runs, compacts, ends when its lease lapses or on SIGTERM, and stays
exactly once across kill -9 of its process (real Kafka, real Delta, real Dagster instances)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import orjson
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from fake_events import fake_events
from ingest_helpers import private_spec, produce_events, produce_values

from coelho_pipelines import naming
from coelho_pipelines.ingestion.assets import (
    build_ingestion_asset,
    build_ingestion_job,
    ingestion_tags,
    raw_events_key,
)
from coelho_pipelines.ingestion.checks import CHECK_NAMES
from coelho_pipelines.keeper import HEARTBEAT_TAG, KEEPER_TAG, LEASE_TAG, keep_alive
from coelho_pipelines.lakehouse.tables import app_id
from coelho_pipelines.naming import ingestion_job_name, ingestion_op_name
from coelho_pipelines.naming import ingestion_sensor_name as sensor_name
from coelho_pipelines.resources import KafkaResource, LakehouseResource

pytestmark = pytest.mark.services
CHILD = Path(__file__).with_name("continuous_child.py")


def _recent(events: list[dict], time_field: str) -> list[dict]:
    now = datetime.now(UTC)
    return [
        dict(e, **{time_field: (now - timedelta(seconds=len(events) - i)).isoformat()})
        for i, e in enumerate(events)
    ]


def _rows(lakehouse: LakehouseResource, name: str) -> int:
    uri = lakehouse.table_uri(name)
    if not DeltaTable.is_deltatable(uri):
        return 0
    return DeltaTable(uri).to_pyarrow_table(columns=["kafka_offset"]).num_rows


def _wait_rows(lakehouse: LakehouseResource, name: str, n: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    rows = _rows(lakehouse, name)
    while rows < n and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = _rows(lakehouse, name)
    return rows


def test_continuous_run_reports_checks_compacts_and_ends_when_its_lease_lapses(
    kafka: KafkaResource, lakehouse: LakehouseResource
) -> None:
    spec = private_spec("tfd", kafka.bootstrap_servers)
    events = _recent(fake_events(spec, 500, seed=21), spec.time_field)
    produce_events(kafka.bootstrap_servers, spec, events[:300])
    produce_values(kafka.bootstrap_servers, spec.topic, [b"{broken"] * 5)
    asset = build_ingestion_asset(spec)
    defs = dg.Definitions(
        assets=[asset],
        jobs=[build_ingestion_job(spec, asset)],
        resources={"kafka": kafka, "lakehouse": lakehouse},
    )
    job = defs.resolve_job_def(ingestion_job_name(spec))
    config = {"continuous": True, "commit_interval_seconds": 0.2, "batch_size": 100,
              "report_interval_seconds": 0.5, "checks_interval_seconds": 0.5,
              "compact_every_commits": 3}  # fmt: skip
    seen: dict[str, object] = {}

    def drive(instance: dg.DagsterInstance) -> None:
        """While the run ingests: more events, then let its lease lapse (switch turned off)."""
        seen["first"] = _wait_rows(lakehouse, naming.raw_table_name(spec), 300)
        produce_events(kafka.bootstrap_servers, spec, events[300:])
        seen["second"] = _wait_rows(lakehouse, naming.raw_table_name(spec), 500)
        time.sleep(3.0)  # a few report and check cycles
        [run] = instance.get_runs()
        seen["heartbeat"] = run.tags.get(HEARTBEAT_TAG)
        # freshness reaches the event log while the run is still going
        seen["materialized"] = instance.get_latest_materialization_event(raw_events_key(spec))
        instance.add_run_tags(run.run_id, {LEASE_TAG: f"{time.time() - 1:.0f}"})

    with dg.instance_for_test() as instance:
        driver = threading.Thread(target=drive, args=(instance,), daemon=True)
        driver.start()
        result = job.execute_in_process(
            run_config={"ops": {ingestion_op_name(spec): {"config": config}}},
            instance=instance,
            tags={**ingestion_tags(spec), LEASE_TAG: f"{time.time() + 600:.0f}"},
        )
        driver.join(timeout=30)
        assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
    assert result.success
    assert seen["first"] == 300 and seen["second"] == 500 and seen["heartbeat"]
    assert seen["materialized"] is not None and seen["materialized"].run_id == result.run_id
    raw = [
        m.metadata
        for m in result.asset_materializations_for_node(ingestion_op_name(spec))
        if m.asset_key.to_user_string() == "tfd/raw_events"
    ]
    assert len(raw) >= 3  # reports while running, and the last one
    assert all(m["continuous"].value for m in raw)
    # reports cover disjoint stretches: together they account for every event exactly once
    assert sum(m["events_committed"].value for m in raw) == 500
    assert sum(m["dead_letters_committed"].value for m in raw) == 5
    assert raw[-1]["lag"].value == 0 and raw[-1]["compactions"].value >= 1
    outcomes = {}
    for evaluation in result.get_asset_check_evaluations():
        outcomes.setdefault(evaluation.check_name, evaluation.passed)
    assert set(outcomes) == set(CHECK_NAMES)
    assert outcomes["event_ids_unique"] and outcomes["schema_matches_spec"]
    table = DeltaTable(lakehouse.table_uri(naming.raw_table_name(spec)))
    ids = table.to_pyarrow_table().column(spec.id_field)
    assert len(ids) == 500 and pc.count_distinct(ids).as_py() == 500
    # compaction left fewer live files than commits, with the offsets intact
    assert len(table.file_uris()) < sum(m["commits"].value for m in raw)
    ends = kafka.end_offsets(spec.topic)
    assert {p: table.transaction_version(app_id(spec.topic, p)) for p in ends} == ends


def _child(args: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(CHILD), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(CHILD.parent),
        env=dict(os.environ),
    )


def _poison(i: int) -> bytes:
    return [b"{nope", orjson.dumps({"hello": "world"}), b"\xc3\x28"][i % 3]


def test_kill_minus_nine_of_continuous_runs_neither_loses_nor_duplicates(
    kafka: KafkaResource, lakehouse: LakehouseResource, tmp_path: Path
) -> None:
    spec = private_spec("tfd", kafka.bootstrap_servers)
    n_events, n_poison, kills = 4_000, 12, 3
    events = fake_events(spec, n_events, seed=23)
    chunks = [events[i :: kills + 1] for i in range(kills + 1)]
    produce_events(kafka.bootstrap_servers, spec, chunks[0])
    produce_values(kafka.bootstrap_servers, spec.topic, [_poison(i) for i in range(n_poison)])
    instance_dir = tmp_path / "dagster"
    instance_dir.mkdir()
    keeper = sensor_name(spec)
    args = {
        "use_case": "tfd", "topic": spec.topic, "bootstrap_servers": kafka.bootstrap_servers,
        "lakehouse": lakehouse.uri, "instance_dir": str(instance_dir),
        "config": {"commit_interval_seconds": 0.05, "batch_size": 150,
                   "report_interval_seconds": 1.0, "checks_interval_seconds": 0,
                   "compact_every_commits": 7},
        "tags": {**ingestion_tags(spec), KEEPER_TAG: keeper,
                 LEASE_TAG: f"{time.time() + 3600:.0f}"},
    }  # fmt: skip
    log_dir = Path(lakehouse.table_uri(naming.raw_table_name(spec))) / "_delta_log"
    rng = random.Random(4321)
    partial = []
    for kill in range(kills):
        commits_before = len(list(log_dir.glob("*.json"))) if log_dir.exists() else 0
        child = _child(args)
        target = commits_before + rng.randint(2, 6)
        # more events arrive while it runs, so kills land amid reading, decoding, committing
        producer = threading.Thread(
            target=produce_events, args=(kafka.bootstrap_servers, spec, chunks[kill + 1])
        )
        producer.start()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and child.poll() is None:
            if log_dir.exists() and len(list(log_dir.glob("*.json"))) >= target:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        assert child.poll() is None, child.communicate()[1][-3000:]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        producer.join(timeout=60)
        partial.append(_rows(lakehouse, naming.raw_table_name(spec)))
    assert any(0 < rows < n_events for rows in partial), partial

    # the killed runs stay STARTED; the keeper sees them silent, fails them and asks for one
    instance = dg.DagsterInstance.local_temp(tempdir=str(instance_dir))
    runs = instance.get_runs()
    assert len(runs) == kills and {r.status for r in runs} == {dg.DagsterRunStatus.STARTED}
    tick = keep_alive(instance, keeper, ingestion_job_name(spec), ingestion_tags(spec),
                      now=time.time() + 3600)  # fmt: skip
    assert isinstance(tick, dg.RunRequest) and tick.tags[KEEPER_TAG] == keeper
    assert {r.status for r in instance.get_runs()} == {dg.DagsterRunStatus.FAILURE}

    # the replacement resumes from the committed versions and ends on SIGTERM, cleanly
    child = _child(args)
    rows = _wait_rows(lakehouse, naming.raw_table_name(spec), n_events, timeout=240)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["success"] is False  # interrupted: canceled
    # gracefully: in the op, or (interrupt landing in Dagster's own code) before the exit
    graceful = ("continuous ingestion stopped (signal)", "stopping the work gracefully")
    assert any(line in err for line in graceful), err[-3000:]
    assert rows == n_events
    table = DeltaTable(lakehouse.table_uri(naming.raw_table_name(spec)))
    ids = table.to_pyarrow_table().column(spec.id_field)
    assert len(ids) == n_events and pc.count_distinct(ids).as_py() == n_events
    assert set(ids.to_pylist()) == {e[spec.id_field] for e in events}
    dead = DeltaTable(lakehouse.table_uri(naming.dead_letter_table_name(spec))).to_pyarrow_table()
    assert dead.num_rows == n_poison
    coordinates = set(zip(dead.column("kafka_partition").to_pylist(),
                          dead.column("kafka_offset").to_pylist(), strict=True))  # fmt: skip
    assert len(coordinates) == n_poison
    ends = kafka.end_offsets(spec.topic)
    assert sum(ends.values()) == n_events + n_poison
    assert {p: table.transaction_version(app_id(spec.topic, p)) for p in ends} == ends


def test_coelho_ingest_continuous_runs_headless_until_sigterm(
    kafka: KafkaResource, lakehouse: LakehouseResource
) -> None:
    spec = private_spec("eta", kafka.bootstrap_servers)
    events = fake_events(spec, 300, seed=29)
    produce_events(kafka.bootstrap_servers, spec, events[:100])
    coelho = str(Path(sys.executable).with_name("coelho"))
    command = [
        coelho, "ingest", "--use-case", "eta", "--topic", spec.topic, "--continuous",
        "--commit-interval", "0.2", "--bootstrap-servers", kafka.bootstrap_servers,
        "--lakehouse", lakehouse.uri, "--quiet",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_rows(lakehouse, naming.raw_table_name(spec), 100) == 100
        produce_events(kafka.bootstrap_servers, spec, events[100:])  # arrives while it runs
        assert _wait_rows(lakehouse, naming.raw_table_name(spec), 300) == 300
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-2000:]
    assert "300 events and 0 dead letters" in out
    raw = DeltaTable(lakehouse.table_uri(naming.raw_table_name(spec))).to_pyarrow_table()
    ids = raw.column(spec.id_field)
    assert sorted(ids.to_pylist()) == sorted(e[spec.id_field] for e in events)
