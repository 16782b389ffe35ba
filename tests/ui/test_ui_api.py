"""The API routes the UI needs, against the real trained platform and a real Dagster webserver."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from ui_support import SECOND_LEARN

from coelho_pipelines.use_cases import use_case_keys
from coelho_serving.app import create_app

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def client(ui_trained: Any, ui_build: Any) -> Any:
    with TestClient(create_app()) as test_client:
        yield test_client


def test_overview_of_every_product(client: TestClient, ui_trained: Any) -> None:
    body = client.get("/api/v1/overview").json()
    assert {uc["key"] for uc in body["use_cases"]} == set(use_case_keys())
    assert set(body["links"]) >= {"dagster", "mlflow", "docs"}
    for uc in body["use_cases"]:
        assert uc["errors"] == [], uc
        assert uc["status"] == "FINISHED"
        assert uc["events_learned"] == SECOND_LEARN
        assert isinstance(uc["live_metric"]["value"], float)
        assert uc["champion"]["run_id"] == ui_trained.batch_runs[uc["key"]]
        # The learner commits its offsets to its group after each durable snapshot.
        topic = uc["topic"]
        assert topic["end_offset"] >= len(ui_trained.events[uc["key"]])  # the session's topic
        assert topic["lag"] == topic["end_offset"] - topic["committed"] >= 0
        assert topic["committed"] >= SECOND_LEARN - 100  # snapshot_every=100


def test_history_has_points_and_the_promotion_marker(client: TestClient, ui_trained: Any) -> None:
    body = client.get("/api/v1/incremental/tfd/history").json()
    assert body["run_id"] == ui_trained.learner_runs["tfd"]
    primary = body["metrics"][body["primary_metric"]["name"]]
    assert len(primary) >= 10
    steps = [p["step"] for p in primary]
    assert max(steps) >= SECOND_LEARN - 25
    promotions = [m for m in body["markers"] if m["kind"] == "promotion"]
    assert len(promotions) == 1 and "(champion)" in promotions[0]["label"]
    # Promoted between the two learner runs: inside the history's time span.
    times = [p["timestamp"] for p in primary]
    assert min(times) < promotions[0]["timestamp"] < max(times)


def test_stream_sends_the_learner_state(client: TestClient) -> None:
    with client.stream("GET", "/api/v1/incremental/eta/stream?limit=1&interval=0.2") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    frames = [f for f in text.split("\n\n") if f.startswith("event: update")]
    assert len(frames) == 1
    payload = json.loads(frames[0].split("data: ", 1)[1])
    assert payload["status"]["state"] == "FINISHED"
    assert int(payload["status"]["events_learned"]) == SECOND_LEARN
    assert "MAE" in payload["metrics"]


def test_retrain_launches_and_reports_a_dagster_run(client: TestClient, dagster_web: str) -> None:
    launched = client.post("/api/v1/batch/eta/retrain")
    assert launched.status_code == 200, launched.text
    run = launched.json()
    assert run["job"] == "eta_batch_training"
    assert run["url"] == f"{dagster_web}/runs/{run['run_id']}"
    status = client.get(f"/api/v1/batch/eta/retrain/{run['run_id']}").json()
    assert status["run_id"] == run["run_id"] and status["job"] == "eta_batch_training"
    assert status["status"] in {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "SUCCESS"}
    unknown = client.get("/api/v1/batch/eta/retrain/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404


def test_retrain_without_dagster_is_a_clear_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coelho.platform import free_port

    monkeypatch.setenv("COELHO_DAGSTER_URL", f"http://127.0.0.1:{free_port()}")
    response = client.post("/api/v1/batch/tfd/retrain")
    assert response.status_code == 503
    assert "Dagster is not reachable" in response.json()["detail"]


def test_root_links_to_the_ui_and_the_services(client: TestClient, dagster_web: str) -> None:
    links = client.get("/").json()["links"]
    assert links["ui"].endswith("/ui/")
    assert links["dagster"] == dagster_web
    ui = client.get("/ui/")
    assert ui.status_code == 200 and "<html" in ui.text
    assert httpx.URL(links["mlflow"]).host == "127.0.0.1"
