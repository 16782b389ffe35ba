"""Pure logic of the local platform: service registry, broker config, client env, the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from coelho.commands.status import render_table
from coelho.platform import Platform, PlatformError, ServiceStatus, parse_services
from coelho.platform.kafka import RETENTION_MS, broker_properties
from coelho.platform.manager import SERVICES, service_names
from coelho.platform.process import ProcessRecord, RunDir, last_log_line
from coelho.platform.service import Context
from coelho_pipelines import settings


def test_registry_names_are_unique_and_ports_have_defaults() -> None:
    assert service_names() == ["kafka", "redis", "mlflow", "dagster", "api", "producers"]
    for service in SERVICES:
        for key in service.port_keys():
            assert key in settings.DEFAULT_PORTS
        for dependency in service.depends_on:
            assert service_names().index(dependency) < service_names().index(service.name)


def test_parse_services_keeps_registry_order_and_rejects_unknown_names() -> None:
    assert parse_services("redis, kafka") == ["kafka", "redis"]
    assert parse_services(None) == service_names()
    with pytest.raises(PlatformError, match="unknown service 'zookeeper'; valid: kafka"):
        parse_services("kafka,zookeeper")


def test_broker_is_one_kraft_node_on_loopback(tmp_path: Path) -> None:
    ctx = Context(tmp_path, tmp_path / "lib", tmp_path, {"kafka": 19092, "kafka_controller": 19093})
    props = broker_properties(ctx)
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["auto.create.topics.enable"] == "false"
    assert props["log.dirs"] == str(tmp_path / "kafka" / "data")
    assert int(props["log.retention.ms"]) == RETENTION_MS == 604_800_000


def test_client_env_points_at_the_platform_ports(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "elsewhere:9092")
    monkeypatch.delenv("COELHO_LAKEHOUSE_URI", raising=False)
    platform = Platform(tmp_path, ports={"kafka": 1111, "redis": 2222, "mlflow": 3333})
    env = platform.context(["redis", "mlflow"]).client_env
    assert env["REDIS_URL"] == "redis://127.0.0.1:2222/0"
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:3333"
    # Kafka is neither requested nor running here: the user's own setting is kept.
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "elsewhere:9092"
    assert env["COELHO_HOME"] == str(tmp_path.resolve())
    assert env["COELHO_LAKEHOUSE_URI"] == str(tmp_path.resolve() / "lakehouse")
    assert env["COELHO_KAFKA_PORT"] == "1111"


def test_stale_records_are_forgotten(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    record = ProcessRecord("redis", 2**22 + 7, 1.0, 6379, "redis://x", "log", "now", ["x"])
    run_dir.write(record)
    assert (tmp_path / "run" / "redis.pid").read_text().strip() == str(record.pid)
    platform = Platform(tmp_path)
    assert platform.record("redis") is None
    assert not (tmp_path / "run" / "redis.json").exists()
    assert platform.status(["redis"])[0].state == "stopped"


def test_last_log_line_skips_our_markers(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("first\nError: port taken\n\n=== coelho: starting at now: x\n")
    assert last_log_line(log) == "Error: port taken"
    assert last_log_line(tmp_path / "missing.log") == ""


def test_status_table_lists_memory_and_total() -> None:
    rows = [
        ServiceStatus("kafka", "healthy", "127.0.0.1:9092", 10, 300 * 2**20, Path("k.log")),
        ServiceStatus("api", "unavailable", "http://x", None, None, Path("a.log"), "no serve"),
    ]
    text = render_table(rows).splitlines()
    assert text[0].split() == ["SERVICE", "STATE", "URL", "PID", "MEMORY", "LOG"]
    assert text[1].split() == ["kafka", "healthy", "127.0.0.1:9092", "10", "300", "MiB", "k.log"]
    assert "1 running, total resident memory 300 MiB" in text
    assert "api: no serve" in text


def test_kafka_cluster_ids_never_start_like_an_option() -> None:
    from coelho.platform.kafka import _new_cluster_id

    ids = [_new_cluster_id() for _ in range(2000)]
    assert all(cluster_id[0].isalnum() and len(cluster_id) == 22 for cluster_id in ids)
    assert len(set(ids)) == len(ids)


def test_a_throwaway_platform_gets_a_free_port_per_service_and_the_shared_jars(
    monkeypatch, tmp_path: Path
) -> None:
    from coelho.platform.ephemeral import free_port_platform, shared_kafka_lib
    from coelho.platform.manager import SERVICES

    monkeypatch.delenv("COELHO_KAFKA_LIB", raising=False)
    monkeypatch.delenv("COELHO_HOME", raising=False)
    assert shared_kafka_lib(tmp_path) == tmp_path / ".coelho" / "lib" / "kafka"
    monkeypatch.setenv("COELHO_HOME", str(tmp_path / "home"))
    assert shared_kafka_lib(tmp_path) == tmp_path / "home" / "lib" / "kafka"
    monkeypatch.setenv("COELHO_KAFKA_LIB", str(tmp_path / "jars"))
    assert shared_kafka_lib(tmp_path) == tmp_path / "jars"

    platform = free_port_platform(tmp_path / "state", project_dir=tmp_path)
    keys = {key for service in SERVICES for key in service.port_keys()}
    assert set(platform.ports) == keys
    assert len(set(platform.ports.values())) == len(keys)
    assert platform.kafka_lib == tmp_path / "jars" and platform.tie_to_parent
