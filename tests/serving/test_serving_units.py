"""Pure-logic tests of the serving layer: cache, typed requests, errors, security, config.

No services: the model cache is driven with fake probe/load functions (named as such).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
import sys
import threading
import time
from datetime import UTC

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from pydantic import ValidationError

from coelho_pipelines.settings import Settings
from coelho_pipelines.use_cases import all_specs, get_spec, use_case_keys
from coelho_serving import schemas
from coelho_serving.app import create_app
from coelho_serving.cache import ModelCache
from coelho_serving.config import ServingConfig
from coelho_serving.errors import not_found_detail, validation_message
from coelho_serving.services.common import require_finite


class FakeSource:
    """A fake model source: a version counter and a slow loader that counts its calls."""

    def __init__(self, version: int | None = 1, load_seconds: float = 0.0) -> None:
        self.version = version
        self.load_seconds = load_seconds
        self.probes = 0
        self.loads = 0
        self.threads: set[str] = set()

    def probe(self) -> int | None:
        self.probes += 1
        return self.version

    def load(self, version: int) -> str:
        self.loads += 1
        self.threads.add(threading.current_thread().name)
        time.sleep(self.load_seconds)
        return f"model-v{version}"


def _get(cache: ModelCache, source: FakeSource, max_age: float = 0.0):
    return cache.get(
        "k", use_case="tfd", source="live", max_age=max_age, probe=source.probe, load=source.load
    )


def test_concurrent_requests_share_one_load_off_the_event_loop() -> None:
    cache, source = ModelCache(), FakeSource(load_seconds=0.2)
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def scenario() -> list:
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        entries = await asyncio.gather(*(_get(cache, source) for _ in range(10)))
        stop.set()
        await task
        return entries

    entries = asyncio.run(scenario())
    assert source.loads == 1
    assert {entry.model for entry in entries} == {"model-v1"}
    assert ticks > 3, "the event loop was blocked while the model loaded"
    assert threading.main_thread().name not in source.threads


def test_reload_only_when_the_version_changes() -> None:
    cache, source = ModelCache(), FakeSource()

    async def scenario() -> list[str]:
        models = [(await _get(cache, source)).model for _ in range(3)]
        source.version = 2
        models.append((await _get(cache, source)).model)
        models.append((await _get(cache, source)).model)
        return models

    assert asyncio.run(scenario()) == ["model-v1"] * 3 + ["model-v2"] * 2
    assert source.loads == 2
    assert source.probes == 5


def test_fresh_entries_are_not_probed_and_missing_models_are_none() -> None:
    cache, source = ModelCache(), FakeSource()

    async def scenario() -> None:
        await _get(cache, source, max_age=3600)
        await _get(cache, source, max_age=3600)
        assert source.probes == 1
        source.version = None
        assert await _get(cache, source) is None
        assert cache.peek("k") is None
        probes = source.probes
        source.version = 5
        assert await _get(cache, source, max_age=3600) is None  # absence is cached too
        assert source.probes == probes
        assert (await _get(cache, source, max_age=0)).model == "model-v5"

    asyncio.run(scenario())


def test_cache_is_bounded() -> None:
    cache = ModelCache(max_entries=2)

    async def scenario() -> None:
        for key in ("a", "b", "c"):
            await cache.get_immutable(key, use_case="tfd", source="run", load=lambda key=key: key)

    asyncio.run(scenario())
    assert cache.peek("a") is None and cache.peek("c") is not None


def test_request_fields_are_what_the_features_read() -> None:
    tfd = {f.name for f in schemas.request_fields(get_spec("tfd"))}
    assert {"amount", "device_info", "timestamp", "cvv_provided"} <= tfd
    assert not tfd & {"transaction_id", "user_id", "is_fraud", "location", "ip_address"}
    eta = {f.name for f in schemas.request_fields(get_spec("eta"))}
    assert {"origin", "destination", "weather", "hour_of_day"} <= eta
    assert "simulated_actual_travel_time_seconds" not in eta
    ecci = {f.name for f in schemas.request_fields(get_spec("ecci"))}
    assert {"price", "device_info", "referrer_url", "timestamp"} <= ecci
    assert not ecci & {"search_query", "location", "segment"}
    # ecci answers the customer's segment: the customer is required, the event id optional
    assert {"customer_id", "event_id"} <= ecci
    fields = {f.name: f for f in schemas.request_fields(get_spec("ecci"))}
    assert not fields["customer_id"].nullable and fields["event_id"].nullable


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.key)
def test_a_generated_event_is_a_valid_request(spec) -> None:
    try:
        event = next(iter(spec.generator(seed=3)))
    except ImportError:
        pytest.fail(f"{spec.key} generator is missing")
    request = schemas.request_model(spec).model_validate(event)
    features = spec.extract_features(request.event())
    assert features == spec.extract_features(event)


def test_bad_requests_name_the_field() -> None:
    model = schemas.request_model(get_spec("tfd"))
    example = schemas.example_request(get_spec("tfd"))
    with pytest.raises(ValidationError) as error:
        model.model_validate({**example, "amount": -5, "currency": "XXX"})
    message = validation_message(error.value.errors())
    assert "amount" in message and "currency" in message


def test_timestamps_are_normalised_to_utc() -> None:
    model = schemas.request_model(get_spec("tfd"))
    example = schemas.example_request(get_spec("tfd"))
    request = model.model_validate({**example, "timestamp": "2024-05-01T10:30:00+02:00"})
    assert request.event()["timestamp"].hour == 8
    assert get_spec("tfd").extract_features(request.event())["hour_of_day"] == 8


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.key)
def test_request_events_convert_exactly_the_timestamps(spec) -> None:
    """`event()` converts only the datetime fields: the same dict as converting every value."""
    model = schemas.request_model(spec)
    paths = schemas.datetime_paths(model)
    names = {field.name for field in schemas.request_fields(spec)}
    assert paths == (((spec.time_field,),) if spec.time_field in names else ())
    offsets = ("+02:00", "-05:30", "Z", "")
    for i, event in enumerate(itertools.islice(spec.generator(seed=3), 40)):
        if spec.time_field in names:
            stamp = str(event[spec.time_field])[:19]
            event = {**event, spec.time_field: stamp + offsets[i % len(offsets)]}
        request = model.model_validate(event)
        assert request.event() == schemas._to_utc(request.model_dump())
        for path in paths:
            value = request.event()
            for part in path:
                value = value[part]
            assert value.tzinfo == UTC


def test_prediction_bodies_per_task() -> None:
    tfd = schemas.prediction_body(get_spec("tfd"), 0.7, "mlflow", 3)
    assert tfd == {
        "fraud_probability": 0.7, "prediction": 1, "model_source": "mlflow", "model_version": "3"
    }  # fmt: skip
    eta = schemas.prediction_body(get_spec("eta"), 321.5, "live", 1)
    assert eta["estimated_travel_time_seconds"] == 321.5
    assert schemas.prediction_body(get_spec("ecci"), 2, "live", 1)["cluster"] == 2
    for spec in all_specs():
        schemas.response_model(spec).model_validate(schemas.prediction_body(spec, 0.5, "live", 1))


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_prediction_is_a_422_not_a_null(value: float) -> None:
    eta = schemas.prediction_body(get_spec("eta"), value, "live", 1)
    with pytest.raises(HTTPException) as raised:
        require_finite(eta)
    assert raised.value.status_code == 422
    assert "estimated_travel_time_seconds" in raised.value.detail
    finite = schemas.prediction_body(get_spec("eta"), 321.5, "live", 1)
    assert require_finite(finite) is finite


def test_not_found_messages() -> None:
    keys = ["ecci", "eta", "tfd"]
    assert "valid: ecci, eta, tfd" in not_found_detail("/api/v1/batch/nope/runs", keys)
    assert "unknown API area" in not_found_detail("/api/v1/nope/tfd", keys)
    assert "see /docs" in not_found_detail("/api/v1/batch/tfd/nope", keys)
    client = TestClient(create_app(_config()))
    assert client.get("/api/v1/incremental/eta/report").json()["detail"] == (
        "/incremental/<uc>/report is only for: tfd"
    )
    response = client.get("/api/v1/sql/nope/schema")
    valid = "valid: " + ", ".join(use_case_keys())
    assert response.status_code == 404 and valid in response.json()["detail"]


def _config(**overrides) -> ServingConfig:
    settings = Settings(
        home=None,  # type: ignore[arg-type]
        lakehouse_uri="/nonexistent",
        kafka_bootstrap_servers="127.0.0.1:1",
        redis_url="redis://127.0.0.1:1/0",
        mlflow_tracking_uri="http://127.0.0.1:1",
        api_key=overrides.pop("api_key", None),
    )
    return ServingConfig(settings=settings, dependency_timeout_seconds=0.5, **overrides)


def test_api_key_guards_everything_but_health_metrics_and_docs() -> None:
    client = TestClient(create_app(_config(api_key="s3cret")))
    assert client.get("/").status_code == 401
    assert "missing X-API-Key" in client.get("/api/v1/batch/tfd/runs").json()["detail"]
    assert client.get("/", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/redoc").status_code == 200
    assert client.get("/health").status_code in (200, 503)


def test_cors_explicit_origins_with_credentials_wildcard_without() -> None:
    preflight = {"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"}
    explicit = TestClient(create_app(_config(cors_origins=("http://ui.example",))))
    response = explicit.options("/api/v1/tfd", headers=preflight)
    assert response.headers["access-control-allow-origin"] == "http://ui.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    other = explicit.options("/", headers={**preflight, "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    wildcard = TestClient(create_app(_config(cors_origins=("*",))))
    response = wildcard.options("/", headers=preflight)
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


def test_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COELHO_CORS_ORIGINS", " http://a , http://b ,")
    monkeypatch.setenv("COELHO_HEALTH_REQUIRED", "redis,mlflow")
    config = ServingConfig.from_env()
    assert config.cors_origins == ("http://a", "http://b")
    assert config.required == ("redis", "mlflow")
    monkeypatch.setenv("COELHO_HEALTH_REQUIRED", "redis,postgres")
    with pytest.raises(ValueError, match="postgres"):
        ServingConfig.from_env()


def test_health_reports_every_dependency_and_503_when_a_required_one_is_down() -> None:
    client = TestClient(create_app(_config()))
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert set(body["dependencies"]) == {"kafka", "redis", "mlflow", "lakehouse"}
    assert body["dependencies"]["redis"]["ok"] is False
    assert "snapshot" in body["dependencies"]["redis"]["impact"]


def test_predict_bodies_are_validated_before_any_model_is_touched() -> None:
    """No service is reachable here: every answer below comes from body/query validation."""
    client = TestClient(create_app(_config()))
    event = schemas.example_request(get_spec("tfd"))
    for area in ("incremental", "batch"):
        path = f"/api/v1/{area}/tfd/predict"
        text = client.post(path, content=json.dumps(event), headers={"Content-Type": "text/plain"})
        assert text.status_code == 422
        assert "Content-Type: application/json" in text.json()["message"]
        not_utf8 = client.post(
            path, content=b'{"amount": "\xff"}', headers={"Content-Type": "application/json"}
        )
        assert not_utf8.status_code == 422 and not_utf8.json()["message"].startswith("body:")
        wrong = client.post(path, json={**event, "amount": "lots"})
        assert wrong.status_code == 422
        assert wrong.json()["detail"][0]["loc"] == ["body", "amount"]
    for run_id in ("", "a" * 65):
        response = client.post("/api/v1/batch/tfd/predict", params={"run_id": run_id}, json=event)
        assert response.status_code == 422 and "run_id" in response.json()["message"]


def test_predict_routes_document_their_typed_body_and_run_id() -> None:
    document = TestClient(create_app(_config())).get("/openapi.json").json()
    components = document["components"]["schemas"]
    for spec in all_specs():
        name = schemas.request_model(spec).__name__
        for area in ("incremental", "batch"):
            operation = document["paths"][f"/api/v1/{area}/{spec.key}/predict"]["post"]
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body == {"$ref": f"#/components/schemas/{name}"}
            assert {"200", "422"} <= set(operation["responses"])
        assert set(components[name]["properties"]) == {f.name for f in schemas.request_fields(spec)}
        refs = re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(components[name]))
        assert refs and all(ref in components for ref in refs)
    batch = document["paths"]["/api/v1/batch/tfd/predict"]["post"]
    assert [parameter["name"] for parameter in batch["parameters"]] == ["run_id"]


def test_docs_are_served_without_a_cdn() -> None:
    client = TestClient(create_app(_config()))
    page = client.get("/docs").text
    assert "/docs-static/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert client.get(f"/docs-static/{asset}").status_code == 200
    assert "cdn" not in client.get("/redoc").text.lower()


def test_serving_imports_no_dagster() -> None:
    code = (
        "import sys; from coelho_serving.app import create_app; create_app(); "
        "import coelho.commands.serve; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'dagster']; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class FakeBatchModel:
    """A fake batch scorer: doubles numbers, fails on strings, records each call's size."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.calls: list[int] = []

    def __call__(self, items: list) -> list:
        self.calls.append(len(items))
        time.sleep(self.seconds)
        if any(isinstance(item, str) for item in items):
            raise ValueError("not a number")
        return [item * 2 for item in items]


def test_micro_batching_coalesces_concurrent_requests_and_isolates_bad_rows() -> None:
    from coelho_serving.batching import MicroBatcher

    batcher, model = MicroBatcher(max_batch=8), FakeBatchModel()

    async def scenario() -> list:
        items = [*range(20), "bad"]
        return await asyncio.gather(
            *(batcher.submit("m", model, item) for item in items), return_exceptions=True
        )

    results = asyncio.run(scenario())
    assert results[:20] == [i * 2 for i in range(20)]
    assert isinstance(results[20], ValueError)
    assert max(model.calls) == 8  # bounded batches
    assert sum(1 for size in model.calls if size > 1) <= 4  # 21 rows in a handful of calls
    lone = asyncio.run(batcher.submit("m", model, 21))
    assert lone == 42 and model.calls[-1] == 1


def test_cheap_models_are_scored_on_the_loop_still_batched_and_slow_ones_in_a_thread() -> None:
    import threading

    from coelho_serving.batching import MicroBatcher

    batcher = MicroBatcher(max_batch=8, inline_below_seconds=0.01)
    cheap, slow = FakeBatchModel(seconds=0.0), FakeBatchModel(seconds=0.05)
    threads: dict[str, set[str]] = {"cheap": set(), "slow": set()}

    def on(name: str, model: FakeBatchModel):
        def predict(items: list) -> list:
            threads[name].add(threading.current_thread().name)
            return model(items)

        return predict

    async def scenario() -> tuple[list, list]:
        loop_thread = threading.current_thread().name
        first = await batcher.submit("cheap", on("cheap", cheap), 1)  # cost unknown: a thread
        assert threads["cheap"] and loop_thread not in threads["cheap"]
        threads["cheap"].clear()
        fast = await asyncio.gather(
            *(batcher.submit("cheap", on("cheap", cheap), i) for i in range(10))
        )
        await batcher.submit("slow", on("slow", slow), 1)
        slow_out = await asyncio.gather(
            *(batcher.submit("slow", on("slow", slow), i) for i in range(3))
        )
        assert threads["cheap"] == {loop_thread}  # measured cheap: scored on the loop
        assert loop_thread not in threads["slow"]  # 50 ms calls stay off the loop
        return [first, *fast], slow_out

    fast, slow_out = asyncio.run(scenario())
    assert fast == [2, *(i * 2 for i in range(10))]
    assert slow_out == [0, 2, 4]
    assert cheap.calls[1:] == [8, 2]  # inline, and still one call per queued batch
    assert batcher.inline_calls == 2


_CORRUPTIONS = (None, "text", 10**7, -(10**7) + 0.5, True, {"nested": 1}, 2.5, 3)


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.key)
def test_the_api_refuses_exactly_what_ingestion_would_dead_letter(spec) -> None:
    """One corrupted request field at a time: a request is refused (422) iff ingestion's
    validator refuses the event. Aside: timestamps (a naive one means UTC to the API), whole
    floats for ints (`3.0`, an integer to the API's JSON Schema) and the fields a request may
    leave out that an event may not (ecci's event id)."""
    import random

    from coelho_pipelines.events.validate import EventValidator

    model, validator = schemas.request_model(spec), EventValidator(spec)
    in_events = {f.name: f for f in spec.fields}
    fields = [
        f
        for f in schemas.request_fields(spec)
        if f.type != "timestamp" and f.nullable == in_events[f.name].nullable
    ]
    rng = random.Random(11)
    refused = 0
    for event in itertools.islice(spec.generator(seed=5), 300):
        field = rng.choice(fields)
        holder, name = event, field.name
        if field.children and rng.random() < 0.5:
            holder, name = event[field.name], rng.choice(field.children).name
        holder[name] = rng.choice(_CORRUPTIONS)
        expected = validator.validate(event)
        try:
            model.model_validate(event)
            got = None
        except ValidationError as error:
            got = validation_message(error.errors())
        assert (got is None) == (expected is None), (field.name, holder[name], expected, got)
        refused += got is not None
    assert refused > 100  # the corruptions did refuse requests


def test_a_whole_float_is_an_int_to_the_api_as_its_schema_says() -> None:
    spec = get_spec("tfd")
    model, example = schemas.request_model(spec), schemas.example_request(spec)
    assert model.model_validate({**example, "account_age_days": 30.0}).account_age_days == 30
    with pytest.raises(ValidationError, match="account_age_days"):
        model.model_validate({**example, "account_age_days": True})
