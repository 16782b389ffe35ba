"""Every endpoint on the trained platform: the right answer, and the right 4xx for bad input.

Bad inputs never produce a 500: the TestClient re-raises server errors, so one would fail here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from coelho_pipelines.use_cases import all_specs, get_spec, use_case_keys

KEYS = [spec.key for spec in all_specs()]


@pytest.fixture(scope="module")
def client(stack: Any, trained: Any) -> Any:
    with stack.client() as test_client:
        yield test_client


@pytest.fixture(scope="module")
def second_tfd_run(stack: Any, trained: Any) -> str:
    """A weaker tfd batch run (3 trees), logged and evaluated but not registered."""
    from serving_pipeline import train_extra_run

    return train_extra_run(stack, get_spec("tfd"), iterations=3)


# -- system ---------------------------------------------------------------------------------


def test_root_links_and_docs(client: Any) -> None:
    body = client.get("/").json()
    assert body["links"]["docs"].endswith("/docs")
    assert set(body["use_cases"]) == set(KEYS)
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/incremental/tfd/report" in paths
    assert "/api/v1/incremental/eta/report" not in paths
    assert "/api/v1/batch/ecci/clusters/{feature}" in paths


def test_health_reports_each_dependency(client: Any) -> None:
    response = client.get("/health")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["dependencies"]) == {"kafka", "redis", "mlflow", "lakehouse"}
    assert all(dep["ok"] for dep in body["dependencies"].values()), body
    assert body["status"] == "ok"


def test_prometheus_metrics_by_route_use_case_and_source(client: Any, trained: Any) -> None:
    client.post("/api/v1/incremental/eta/predict", json=trained.events["eta"][0])
    client.post("/api/v1/batch/eta/predict", json=trained.events["eta"][0])
    client.post("/api/v1/sql/eta/query", json={"query": "DROP TABLE data"})
    text = client.get("/metrics").text
    assert 'route="/api/v1/incremental/eta/predict"' in text
    assert 'route="/api/v1/batch/{uc}/runs/{run_id}/metrics"' not in text
    assert 'coelho_api_predictions_total{source="live",use_case="eta"}' in text
    assert 'coelho_api_predictions_total{source="champion",use_case="eta"}' in text
    assert "coelho_api_model_load_seconds_bucket" in text
    assert "coelho_api_model_cache_hits_total" in text
    assert 'coelho_api_sql_errors_total{use_case="eta"}' in text
    assert "coelho_api_sql_duration_seconds_bucket" in text


def test_unknown_use_case_lists_the_valid_ones(client: Any) -> None:
    for method, path in [
        ("get", "/api/v1/incremental/fraud/status"),
        ("post", "/api/v1/incremental/fraud/predict"),
        ("get", "/api/v1/batch/xyz/runs"),
        ("post", "/api/v1/sql/xyz/query"),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == 404
        assert response.json()["detail"].endswith("valid: " + ", ".join(use_case_keys()))
    assert "only for: tfd" in client.get("/api/v1/incremental/eta/report").json()["detail"]
    assert "only for: ecci" in client.get("/api/v1/batch/tfd/clusters").json()["detail"]


# -- incremental ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_status(client: Any, trained: Any, key: str) -> None:
    body = client.get(f"/api/v1/incremental/{key}/status").json()
    assert body["status"] == "FINISHED"
    assert body["run_id"] == trained.learner_runs[key]
    assert body["events_learned"] >= 400
    assert body["last_update"].endswith("+00:00")


@pytest.mark.parametrize("key", KEYS)
def test_metrics_current_and_history(client: Any, key: str) -> None:
    spec = get_spec(key)
    current = client.get(f"/api/v1/incremental/{key}/metrics").json()
    assert spec.river_primary.name in current["metrics"]
    assert "history" not in current
    full = client.get(f"/api/v1/incremental/{key}/metrics", params={"history": "true"}).json()
    history = full["history"][spec.river_primary.name]
    assert len(history) >= 2
    assert [point["step"] for point in history] == sorted(point["step"] for point in history)
    bad = client.get(f"/api/v1/incremental/{key}/metrics", params={"history": "maybe"})
    assert bad.status_code == 422 and "history" in bad.json()["message"]


@pytest.mark.parametrize("key", KEYS)
def test_leaderboard_names_every_candidate_and_the_served_one(client: Any, key: str) -> None:
    spec = get_spec(key)
    body = client.get(f"/api/v1/incremental/{key}/leaderboard").json()
    names = [c.name for c in spec.river_candidates]
    assert [c["name"] for c in body["candidates"]] == names
    assert body["metric"]["name"] == spec.leaderboard_rule.name
    assert body["served"] in names and body["events_learned"] >= 400
    assert [c["name"] for c in body["candidates"] if c["served"]] == [body["served"]]
    assert sorted(c["rank"] for c in body["candidates"]) == list(range(1, len(names) + 1))
    assert isinstance(body["promotions"], list)
    status = client.get(f"/api/v1/incremental/{key}/status").json()
    assert status["served_candidate"] == body["served"]
    if spec.task == "classification":
        threshold = status["decision_threshold"]
        assert 0.0 < threshold <= 1.0 and body["decision_threshold"] == threshold
        metrics = client.get(f"/api/v1/incremental/{key}/metrics").json()["metrics"]
        assert metrics["decision_threshold"] == threshold
        sample = client.get(f"/api/v1/incremental/{key}/sample").json()
        answer = client.post(f"/api/v1/incremental/{key}/predict", json=sample).json()
        assert answer["decision_threshold"] == threshold
        assert answer["prediction"] == int(answer["fraud_probability"] >= threshold)
    else:
        assert body["decision_threshold"] is None and "decision_threshold" not in status


def test_tfd_report(client: Any) -> None:
    body = client.get("/api/v1/incremental/tfd/report").json()
    assert body["confusion_matrix"]["labels"] == [0, 1]
    assert sum(map(sum, body["confusion_matrix"]["matrix"])) >= 300
    assert set(body["classification_report"]) >= {"classes", "macro", "weighted", "accuracy"}


@pytest.mark.parametrize("area", ["incremental", "batch"])
def test_ecci_clusters(client: Any, area: str) -> None:
    counts = client.get(f"/api/v1/{area}/ecci/clusters").json()["samples_per_cluster"]
    assert counts and all(n > 0 for n in counts.values())
    by_device = client.get(f"/api/v1/{area}/ecci/clusters/device_type").json()
    assert by_device["feature"] == "device_type"
    assert set(by_device["clusters"]) <= set(counts)
    values = {v for per in by_device["clusters"].values() for v in per}
    assert values <= {"Mobile", "Desktop", "Tablet"}
    if area == "batch":  # the champion over its whole training set
        total = sum(sum(per.values()) for per in by_device["clusters"].values())
        assert total == sum(counts.values())
    unknown = client.get(f"/api/v1/{area}/ecci/clusters/price")
    assert unknown.status_code == 404
    assert "valid: event_type" in unknown.json()["detail"]


@pytest.mark.parametrize("key", KEYS)
def test_sample_is_a_valid_prediction_request(client: Any, key: str) -> None:
    sample = client.get(f"/api/v1/incremental/{key}/sample").json()
    assert get_spec(key).id_field in sample
    for area in ("incremental", "batch"):
        response = client.post(f"/api/v1/{area}/{key}/predict", json=sample)
        assert response.status_code == 200, response.text


def test_learner_state_of_a_use_case_never_learned_is_404(stack: Any, client: Any) -> None:
    from coelho_pipelines.incremental import live_store

    redis = stack.redis()
    keys = live_store.Keys("eta")
    names = (keys.status, keys.metrics, keys.samples, keys.leaderboard)
    saved = {name: redis.dump(name) for name in names}
    redis.delete(*saved)
    try:
        for path in ("status", "metrics", "sample", "leaderboard"):
            response = client.get(f"/api/v1/incremental/eta/{path}")
            assert response.status_code == 404, path
            assert "eta" in response.json()["detail"]
    finally:
        for name, blob in saved.items():
            redis.restore(name, 0, blob, replace=True)


def test_ecci_batch_answer_is_the_customers_segment_after_the_event(
    stack: Any, client: Any, trained: Any
) -> None:
    """The batch champion scores the customer's profile: the history in the raw table (the
    ingested events, computed here by the learner's python profile store) plus this event."""
    from coelho_pipelines.batch import registry
    from coelho_pipelines.incremental.profiles import ProfileStore
    from coelho_pipelines.models.encoding import FeatureLayout

    spec = get_spec("ecci")
    events = trained.events["ecci"]
    store = ProfileStore(spec.profile)
    for event in events:
        store.update(event["customer_id"], [f.extract(event) for f in spec.profile.features])
    champion = registry.load_champion(stack.mlflow_uri, spec)
    layout = FeatureLayout.of(spec.model_features)
    counts: dict[str, int] = {}
    for event in events:
        counts[event["customer_id"]] = counts.get(event["customer_id"], 0) + 1
    regulars = [c for c, n in sorted(counts.items()) if n >= 3][:5]
    assert regulars
    for customer in regulars:
        event = {**events[-1], "event_id": f"new-{customer}", "customer_id": customer}
        expected = store.peek(customer, [f.extract(event) for f in spec.profile.features])
        row = dict(zip(spec.profile.feature_names, expected.values(), strict=True))
        want = int(champion.model.predict_frame(layout.frame_from_rows([row]))["prediction"][0])
        answer = client.post("/api/v1/batch/ecci/predict", json=event)
        assert answer.status_code == 200, answer.text
        assert answer.json()["cluster"] == want, customer


# -- predictions: bad inputs ------------------------------------------------------------------


def _bad_payloads(key: str, event: dict[str, Any]) -> list[tuple[dict | str, str]]:
    numeric = {"tfd": "amount", "eta": "estimated_distance_km", "ecci": "time_on_page_seconds"}
    enum = {"tfd": "currency", "eta": "weather", "ecci": "event_type"}
    field = numeric[key]
    nested = "device_info" if key != "eta" else "origin"
    return [
        ({**event, field: "lots"}, field),  # wrong type
        ({**event, field: -1}, field),  # out of range
        ({**event, enum[key]: "Martian"}, enum[key]),  # not one of the choices
        ({k: v for k, v in event.items() if k != field}, field),  # missing
        ({**event, nested: {"nope": 1}}, nested),  # nested object wrong
        ({**event, "timestamp": "yesterday-ish"}, "timestamp")
        if key != "eta"
        else ({**event, "hour_of_day": 24}, "hour_of_day"),
        ([event], "body"),  # not an object
        ("{not json", "body"),
    ]


@pytest.mark.parametrize("area", ["incremental", "batch"])
@pytest.mark.parametrize("key", KEYS)
def test_bad_prediction_requests_are_422_naming_the_field(
    client: Any, trained: Any, area: str, key: str
) -> None:
    for payload, field in _bad_payloads(key, trained.events[key][0]):
        if isinstance(payload, str):
            response = client.post(
                f"/api/v1/{area}/{key}/predict",
                content=payload,
                headers={"Content-Type": "application/json"},
            )
        else:
            response = client.post(f"/api/v1/{area}/{key}/predict", json=payload)
        assert response.status_code == 422, (payload, response.text)
        assert field in response.json()["message"], (field, response.json()["message"])


def test_predictions_ignore_fields_that_are_not_features(client: Any, trained: Any) -> None:
    event = trained.events["tfd"][0]
    plain = client.post("/api/v1/batch/tfd/predict", json=event).json()
    noisy = client.post(
        "/api/v1/batch/tfd/predict", json={**event, "is_fraud": 1, "note": "x"}
    ).json()
    assert noisy["fraud_probability"] == plain["fraud_probability"]


def test_batch_run_id_validation(client: Any, trained: Any) -> None:
    event = trained.events["eta"][0]
    too_long = client.post("/api/v1/batch/eta/predict", json=event, params={"run_id": "a" * 65})
    assert too_long.status_code == 422 and "run_id" in too_long.json()["message"]
    hostile = client.post(
        "/api/v1/batch/eta/predict", json=event, params={"run_id": "../../etc/passwd"}
    )
    assert hostile.status_code == 404 and "../../etc/passwd" in hostile.json()["detail"]


# -- batch runs, metrics, plots ---------------------------------------------------------------


def test_runs_best_first_with_the_champion_marked(
    client: Any, trained: Any, second_tfd_run: str
) -> None:
    body = client.get("/api/v1/batch/tfd/runs").json()
    assert body["primary_metric"] == {"name": "fbeta", "direction": "max"}
    runs = body["runs"]
    assert {run["run_id"] for run in runs} >= {trained.batch_runs["tfd"], second_tfd_run}
    values = [run["metrics"].get("fbeta", float("-inf")) for run in runs]
    assert values == sorted(values, reverse=True)
    champions = [run["run_id"] for run in runs if run["champion"]]
    assert champions == [trained.batch_runs["tfd"]] == [body["champion_run_id"]]


def test_run_metrics(client: Any, trained: Any, second_tfd_run: str) -> None:
    run_id = trained.batch_runs["eta"]
    body = client.get(f"/api/v1/batch/eta/runs/{run_id}/metrics").json()
    assert set(get_spec("eta").batch_metrics) <= set(body["metrics"])
    assert body["primary_metric"]["name"] == "mae"
    other = client.post(
        "/api/v1/batch/tfd/predict",
        json=trained.events["tfd"][0],
        params={"run_id": second_tfd_run},
    )
    assert other.status_code == 200 and other.json()["model_version"] == second_tfd_run
    for bad in ("0123456789abcdef0123456789abcdef", trained.batch_runs["tfd"], "x y"):
        response = client.get(f"/api/v1/batch/eta/runs/{bad}/metrics")
        assert response.status_code == 404, bad
        assert "unknown run" in response.json()["detail"]


def test_visualizations_list_and_png(client: Any, trained: Any) -> None:
    from serving_pipeline import PLOTTED

    run_id = trained.batch_runs[PLOTTED]
    plots = client.get(f"/api/v1/batch/{PLOTTED}/runs/{run_id}/visualizations").json()
    listed = {(p["tab"], p["name"]) for p in plots["visualizations"]}
    assert ("regression", "residuals") in listed
    png = client.get(f"/api/v1/batch/{PLOTTED}/runs/{run_id}/visualizations/regression/residuals")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    base = f"/api/v1/batch/{PLOTTED}/runs/{run_id}/visualizations"
    for path, fragment in [
        (f"{base}/regression/no_such_plot", "no_such_plot"),
        (f"{base}/classification/roc_curve", "unknown tab"),
        (f"{base}/regression/..%2F..%2Fmodel", ""),
        (f"/api/v1/batch/{PLOTTED}/runs/feedface/visualizations", "unknown run"),
    ]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert fragment in response.json()["detail"]


# -- sql --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_sql_schema_and_query(client: Any, trained: Any, key: str) -> None:
    spec = get_spec(key)
    schema = client.get(f"/api/v1/sql/{key}/schema").json()
    assert schema["row_count"] == trained.ingested[key]
    assert spec.id_field in schema["columns"]
    assert len(schema["types"]) == len(schema["columns"])
    body = client.post(
        f"/api/v1/sql/{key}/query",
        json={"query": f"SELECT {spec.id_field} FROM data ORDER BY 1", "limit": 5},
    ).json()
    assert body["columns"] == [spec.id_field]
    assert body["row_count"] == 5 and body["truncated"] is True
    assert body["execution_time_ms"] >= 0
    count = client.post(f"/api/v1/sql/{key}/query", json={"query": "SELECT count(*) FROM data"})
    assert count.json()["rows"] == [[trained.ingested[key]]]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("DROP TABLE data", "only SELECT"),
        ("SELECT 1; DELETE FROM data", "exactly one statement"),
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM '/etc/passwd'", "unknown table"),
        ("COPY data TO '/tmp/x.csv'", "only SELECT"),
        ("SELECT * FROM other_table", "unknown table"),
        ("SELEC nonsense", "does not parse"),
        ("INSTALL httpfs", "only SELECT"),
        ("SELECT no_such_column FROM data", "query failed"),
    ],
)
def test_hostile_or_broken_sql_is_400_with_the_reason(client: Any, query: str, reason: str) -> None:
    response = client.post("/api/v1/sql/tfd/query", json={"query": query})
    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]


def test_sql_request_validation(client: Any) -> None:
    for payload, field in [
        ({"query": ""}, "query"),
        ({"query": "SELECT 1", "limit": 0}, "limit"),
        ({"query": "SELECT 1", "limit": 10**9}, "limit"),
        ({"query": 42}, "query"),
        ({"sql": "SELECT 1"}, "query"),
    ]:
        response = client.post("/api/v1/sql/eta/query", json=payload)
        assert response.status_code == 422, payload
        assert field in response.json()["message"]


def test_sql_on_a_table_not_ingested_is_404(stack: Any, tmp_path: Any) -> None:
    with stack.client(settings=_settings_with_lakehouse(stack, str(tmp_path))) as client:
        response = client.get("/api/v1/sql/tfd/schema")
        query = client.post("/api/v1/sql/tfd/query", json={"query": "SELECT 1 FROM data"})
    assert response.status_code == 404 and "nothing ingested" in response.json()["detail"]
    assert query.status_code == 404


def _settings_with_lakehouse(stack: Any, uri: str) -> Any:
    from dataclasses import replace

    return replace(stack.config().settings, lakehouse_uri=uri)


# -- security ---------------------------------------------------------------------------------


def test_api_key_on_the_real_app(stack: Any, trained: Any) -> None:
    from dataclasses import replace

    settings = replace(stack.config().settings, api_key="k3y")
    event = trained.events["eta"][0]
    with stack.client(settings=settings) as client:
        denied = client.post("/api/v1/incremental/eta/predict", json=event)
        allowed = client.post(
            "/api/v1/incremental/eta/predict", json=event, headers={"X-API-Key": "k3y"}
        )
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
        schema = client.get("/openapi.json").json()
    assert denied.status_code == 401
    assert allowed.status_code == 200
    assert "APIKeyHeader" in json.dumps(schema["components"]["securitySchemes"])
