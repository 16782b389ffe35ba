"""Both predict endpoints through the model states: none, live, snapshot fallback, Redis down.

The models come from the real pipeline (`trained`: Kafka -> Delta -> Dagster batch assets ->
MLflow registry; Kafka -> River learner -> Redis + MLflow snapshot).
"""

from __future__ import annotations

from typing import Any

import pytest

from coelho_pipelines import naming
from coelho_pipelines.incremental import live_store
from coelho_pipelines.use_cases import all_specs

KEYS = [spec.key for spec in all_specs()]
PREDICTION_KEY = {"tfd": "fraud_probability", "eta": "estimated_travel_time_seconds",
                  "ecci": "cluster"}  # fmt: skip


def _predict(client: Any, area: str, key: str, event: dict, **params: Any) -> Any:
    return client.post(f"/api/v1/{area}/{key}/predict", json=event, params=params)


@pytest.mark.parametrize("key", KEYS)
def test_before_training_both_predicts_are_503_no_model(trained: Any, key: str) -> None:
    for area in ("incremental", "batch"):
        status, body = trained.before[(area, key)]
        assert status == 503, (area, body)
        assert "no model trained yet" in body["detail"]


@pytest.mark.parametrize("key", KEYS)
def test_end_to_end(stack: Any, trained: Any, key: str) -> None:
    """Produced -> ingested into Delta -> batch champion + incremental learner -> both predicts
    answer, each from its own source; the lakehouse holds what was produced."""
    event = trained.events[key][-1]
    with stack.client() as client:
        rows = client.post(f"/api/v1/sql/{key}/query", json={"query": "SELECT count(*) FROM data"})
        incremental = _predict(client, "incremental", key, event)
        batch = _predict(client, "batch", key, event)
        status = client.get(f"/api/v1/incremental/{key}/status").json()
    assert rows.json()["rows"][0][0] >= len(trained.events[key])
    assert status["run_id"] == trained.learner_runs[key]
    assert (incremental.status_code, incremental.json()["model_source"]) == (200, "live")
    assert (batch.status_code, batch.json()["model_source"]) == (200, "mlflow")
    assert batch.json()["model_version"] == trained.champion_versions[key]


@pytest.mark.parametrize("key", KEYS)
def test_live_model_from_redis(stack: Any, trained: Any, key: str) -> None:
    version = live_store.live_model_version(stack.redis(), key)
    assert version is not None
    with stack.client() as client:
        response = _predict(client, "incremental", key, trained.events[key][5])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_source"] == "live"
    assert body["model_version"] == str(version)
    assert PREDICTION_KEY[key] in body


@pytest.mark.parametrize("key", KEYS)
def test_batch_predict_serves_exactly_the_registered_models_outputs(
    stack: Any, trained: Any, key: str
) -> None:
    """The API's compiled fast path answers what the champion's `predict_frame` computes,
    for single requests and for concurrent ones (micro-batched into one call)."""
    import concurrent.futures

    from coelho_pipelines.batch import registry
    from coelho_pipelines.use_cases import get_spec

    spec = get_spec(key)
    model = registry.load_model(
        stack.mlflow_uri, f"models:/{spec.registered_model}/{trained.champion_versions[key]}"
    )
    events = trained.events[key][-60:]
    column = "probability" if spec.task == "classification" else "prediction"
    if spec.profile is not None:  # ecci: each customer's profile from the raw table + event
        from coelho_pipelines.batch.profiles import serving_rows
        from coelho_pipelines.models.encoding import FeatureLayout

        rows = serving_rows(spec, events, naming.raw_table_uri(stack.lakehouse, spec))
        frame = FeatureLayout.of(spec.model_features).frame_from_rows(rows)
        expected = model.predict_frame(frame)[column].tolist()
    else:
        expected = registry.predict_frame(model, spec, events)[column].tolist()
    with stack.client() as client:
        single = [_predict(client, "batch", key, event).json() for event in events[:30]]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            together = list(pool.map(lambda e: _predict(client, "batch", key, e).json(), events))
    field = PREDICTION_KEY[key]
    assert [body[field] for body in single] == expected[:30]
    assert [body[field] for body in together] == expected


@pytest.mark.parametrize("key", KEYS)
def test_batch_champion_and_run_id(stack: Any, trained: Any, key: str) -> None:
    event = trained.events[key][7]
    with stack.client() as client:
        champion = _predict(client, "batch", key, event)
        by_run = _predict(client, "batch", key, event, run_id=trained.batch_runs[key])
        unknown = _predict(client, "batch", key, event, run_id="0123456789abcdef")
        other = next(k for k in KEYS if k != key)
        foreign = _predict(client, "batch", key, event, run_id=trained.batch_runs[other])
    assert champion.status_code == 200, champion.text
    assert champion.json()["model_source"] == "mlflow"
    assert champion.json()["model_version"] == trained.champion_versions[key]
    assert by_run.status_code == 200, by_run.text
    assert by_run.json()["model_version"] == trained.batch_runs[key]
    assert by_run.json()[PREDICTION_KEY[key]] == champion.json()[PREDICTION_KEY[key]]
    assert unknown.status_code == 404 and "0123456789abcdef" in unknown.json()["detail"]
    assert foreign.status_code == 404 and trained.batch_runs[other] in foreign.json()["detail"]


def test_snapshot_fallback_when_redis_has_no_live_model(stack: Any, trained: Any) -> None:
    redis = stack.redis()
    names = [n for k in KEYS for n in (live_store.Keys(k).model, live_store.Keys(k).model_version)]
    saved = {name: redis.dump(name) for name in names}
    try:
        redis.delete(*names)
        with stack.client() as client:
            for key in KEYS:
                response = _predict(client, "incremental", key, trained.events[key][1])
                assert response.status_code == 200, response.text
                assert response.json()["model_source"] == "mlflow"
                assert trained.learner_runs[key] in response.json()["model_version"]
    finally:
        for name, blob in saved.items():
            redis.restore(name, 0, blob, replace=True)


def test_tampered_live_model_is_refused(stack: Any, trained: Any) -> None:
    redis = stack.redis()
    keys = live_store.Keys("eta")
    original = redis.get(keys.model)
    version = int(redis.get(keys.model_version))
    try:
        tampered = original[:-10] + b"0123456789"
        redis.set(keys.model, tampered)
        redis.set(keys.model_version, version + 1000)
        with stack.client() as client:
            response = _predict(client, "incremental", "eta", trained.events["eta"][2])
            assert response.status_code == 200, response.text
            assert response.json()["model_source"] == "mlflow"
            redis.set(keys.model, b"\x80\x04unsigned pickle")
            response = _predict(client, "incremental", "eta", trained.events["eta"][2])
            assert response.json()["model_source"] == "mlflow"
    finally:
        redis.set(keys.model, original)
        redis.set(keys.model_version, version)


def test_reload_only_on_version_change(stack: Any, trained: Any) -> None:
    from coelho_pipelines import signing

    redis = stack.redis()
    keys = live_store.Keys("tfd")
    event = trained.events["tfd"][3]
    with stack.client() as client:
        services = client.app.state.services
        first = _predict(client, "incremental", "tfd", event).json()
        _predict(client, "incremental", "tfd", event)
        loads = services.cache.loads
        _version, bundle = live_store.load_live_model(redis, "tfd")
        new_version = live_store.publish_model(redis, keys, signing.dumps(bundle))
        second = _predict(client, "incremental", "tfd", event).json()
        _predict(client, "incremental", "tfd", event)
        assert services.cache.loads == loads + 1
    assert second["model_version"] == str(new_version) != first["model_version"]
    assert second["model_source"] == "live"


def test_redis_down_falls_back_to_snapshot_and_health_says_so(
    stack: Any, trained: Any, redis_service: Any
) -> None:
    with stack.client() as client:
        assert client.get("/health").json()["dependencies"]["redis"]["ok"] is True
        redis_service.stop()
        try:
            for key in KEYS:
                response = _predict(client, "incremental", key, trained.events[key][4])
                assert response.status_code == 200, response.text
                assert response.json()["model_source"] == "mlflow"
            health = client.get("/health")
            status = client.get("/api/v1/incremental/tfd/status")
            batch = _predict(client, "batch", "tfd", trained.events["tfd"][4])
        finally:
            redis_service.start()
        recovered = _predict(client, "incremental", "tfd", trained.events["tfd"][4])
    body = health.json()
    assert health.status_code == 200  # Redis is optional: the API still predicts
    assert body["status"] == "degraded"
    assert body["dependencies"]["redis"]["ok"] is False
    assert "snapshot" in body["dependencies"]["redis"]["impact"]
    assert body["models"]["tfd"]["incremental"]["source"] == "mlflow"
    assert status.status_code == 503 and "Redis is unavailable" in status.json()["detail"]
    assert batch.status_code == 200
    assert recovered.json()["model_source"] == "live"


def test_models_signed_with_another_key_are_refused(
    stack: Any, trained: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API that does not share the learner's key loads neither the live model nor the
    snapshot: a clear 503, never an unverified pickle (nor a 500)."""
    monkeypatch.setenv("COELHO_MODEL_SIGNING_KEY", "not-the-learners-key")
    with stack.client() as client:
        response = _predict(client, "incremental", "tfd", trained.events["tfd"][0])
    assert response.status_code == 503
    assert "snapshot was refused" in response.json()["detail"]
    assert "signature" in response.json()["detail"]
