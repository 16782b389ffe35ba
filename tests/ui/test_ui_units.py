"""Pure logic of the UI's API additions (markers, summaries) and the static mount of the UI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from coelho_pipelines.use_cases import all_specs
from coelho_serving import ui_data
from coelho_serving.ui_routes import mount_ui

SPECS = {spec.key: spec for spec in all_specs()}


def test_iso_ms_reads_aware_and_naive_times() -> None:
    assert ui_data.iso_ms("1970-01-01T00:00:01+00:00") == 1000
    assert ui_data.iso_ms("1970-01-01T00:00:02") == 2000  # naive = UTC
    assert ui_data.iso_ms("yesterday") is None
    assert ui_data.iso_ms(None) is None


def test_restart_markers_from_a_step_going_back_or_a_long_pause() -> None:
    points = [
        {"step": 100, "value": 0.1, "timestamp": 1_000},
        {"step": 200, "value": 0.2, "timestamp": 2_000},
        {"step": 150, "value": 0.2, "timestamp": 3_000},  # resumed from an older snapshot
        {"step": 250, "value": 0.3, "timestamp": 4_000},
        {"step": 300, "value": 0.3, "timestamp": 4_000 + ui_data.RESTART_GAP_MS + 1},  # pause
        {"step": 400, "value": 0.4, "timestamp": 4_000 + ui_data.RESTART_GAP_MS + 500},
    ]
    markers = ui_data.restart_markers(list(reversed(points)))  # order does not matter
    assert [m["step"] for m in markers] == [150, 300]
    assert all(m["kind"] == "restart" for m in markers)
    assert ui_data.restart_markers(points[:2]) == []


def test_drift_markers_carry_position_time_and_errors() -> None:
    record = {
        "id": 3,
        "events_learned": 1200,
        "error_before": 0.1,
        "error_after": 0.3,
        "detected_at": "2026-01-01T00:00:00+00:00",
        "detector": "ADWIN",
    }
    (marker,) = ui_data.drift_markers([record])
    assert marker["step"] == 1200
    assert marker["timestamp"] == ui_data.iso_ms(record["detected_at"])
    assert "drift #3" in marker["label"] and "0.1 -> 0.3" in marker["label"]


@dataclass
class Version:  # the two fields of an MLflow ModelVersion the markers read
    version: str
    creation_timestamp: int


def test_promotion_markers_in_version_order_with_the_champion_named() -> None:
    markers = ui_data.promotion_markers([Version("2", 2000), Version("1", 1000)], champion="2")
    assert [m["timestamp"] for m in markers] == [1000, 2000]
    assert markers[-1]["label"] == "batch model v2 promoted (champion)"
    assert "champion" not in markers[0]["label"]


def test_primary_and_champion_summaries() -> None:
    tfd = SPECS["tfd"]
    assert ui_data.primary_value(tfd, {tfd.river_primary.name: 0.5}) == 0.5
    assert ui_data.primary_value(tfd, {tfd.river_primary.name: None}) is None
    assert ui_data.primary_value(tfd, None) is None
    runs = [
        {"run_id": "a", "metrics": {tfd.batch_primary.name: 0.7}, "champion": False},
        {"run_id": "b", "metrics": {tfd.batch_primary.name: 0.6}, "champion": True},
    ]
    summary = ui_data.champion_summary(tfd, runs)
    assert summary is not None and summary["run_id"] == "b" and summary["value"] == 0.6
    assert ui_data.champion_summary(tfd, runs[:1]) is None
    assert ui_data.scalar_names({"a": 1, "b": True, "c": {"x": 1}, "d": 0.5}) == ["a", "d"]


def test_topic_offsets_report_an_unreachable_kafka_instead_of_raising() -> None:
    from coelho.platform import free_port

    result = ui_data.topic_offsets(f"127.0.0.1:{free_port()}", "nope", "coelho-x-incremental")
    assert result["topic"] == "nope" and "error" in result


def _app(build: Path) -> TestClient:
    app = FastAPI()
    mount_ui(app, build)
    return TestClient(app)


def test_mount_serves_prerendered_pages_by_their_path(tmp_path: Path) -> None:
    (tmp_path / "tfd").mkdir()
    (tmp_path / "index.html").write_text("<h1>overview</h1>")
    (tmp_path / "tfd" / "sql.html").write_text("<h1>tfd sql</h1>")
    client = _app(tmp_path)
    assert client.get("/ui/").text == "<h1>overview</h1>"
    assert client.get("/ui/tfd/sql").text == "<h1>tfd sql</h1>"
    assert client.get("/ui/tfd/nothing").status_code == 404
    redirect = client.get("/ui", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == "/ui/"


def test_mount_without_a_build_says_how_to_build(tmp_path: Path) -> None:
    response = _app(tmp_path / "missing").get("/ui/")
    assert response.status_code == 503
    assert "make ui" in response.text
