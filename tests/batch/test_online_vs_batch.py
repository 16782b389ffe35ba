"""`<uc>/online_vs_batch` on a small real stream: Kafka -> Delta -> batch champion and a real
learner snapshot, then newer events; both models must be scored on exactly the newer rows.

Each test uses its own spec key and Kafka topic (unique asset keys, experiment, registered
model and raw table). The window rule itself is also checked on a hand-made raw table.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from deltalake import write_deltalake
from fastapi.testclient import TestClient

from coelho_pipelines import naming
from coelho_pipelines.batch import comparison as cmp
from coelho_pipelines.batch import evaluation, registry
from coelho_pipelines.batch.online_vs_batch import build_online_vs_batch_asset
from coelho_pipelines.incremental.snapshot import load_latest_snapshot
from coelho_pipelines.lakehouse.tables import PARTITION_COLUMN, ensure_table, raw_schema
from coelho_pipelines.lakehouse.tables import events_to_arrow as raw_rows
from coelho_pipelines.resources import LakehouseResource, MlflowResource
from coelho_serving import app as app_module

from .conftest import isolated_spec

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))

pytestmark = pytest.mark.services

LEARNED = 600  # events both models learn from
NEWER = 300  # events after them: the comparison window
START = "2026-01-01T06:00:00+00:00"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GENERATOR_OPTIONS: dict[str, dict[str, Any]] = {"tfd": {"fraud_rate": 0.1}}


def _events(key: str, spec: Any, n: int) -> list[dict[str, Any]]:
    options = {"start": START, **GENERATOR_OPTIONS.get(key, {})}
    return list(itertools.islice(spec.generator(seed=5, **options), n))


def _stack(kafka: Any, redis: Any, mlflow: Any, lakehouse: Path) -> Any:
    """What `serving_pipeline`'s steps read from a stack."""
    lakehouse.mkdir(parents=True, exist_ok=True)
    return dataclasses.make_dataclass("Stack", ["env", "lakehouse", "mlflow_uri", "redis_url"])(
        {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}, str(lakehouse),
        mlflow.tracking_uri, redis.url,
    )  # fmt: skip


def _produce(bootstrap_servers: str, spec: Any, events: list[dict]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True})
    for event in events:
        producer.produce(
            spec.topic, key=str(event[spec.key_field]).encode(), value=json.dumps(event).encode()
        )
    assert producer.flush(60) == 0


def _materialize(spec: Any, lakehouse: str, mlflow_uri: str, instance: Any) -> Any:
    asset = build_online_vs_batch_asset(spec)
    return dg.materialize(
        [asset],
        resources={
            "lakehouse": LakehouseResource(uri=lakehouse),
            "mlflow": MlflowResource(tracking_uri=mlflow_uri),
        },
        instance=instance,
        run_config={"ops": {asset.op.name: {"config": {"max_rows": 5000, "min_rows": 20}}}},
    )


class Registered:
    """Extra use cases for this module (pickled live models find their spec by key, and the
    API serves every use case)."""

    def __init__(self) -> None:
        from coelho_pipelines import use_cases

        self.specs = list(use_cases.all_specs())
        self.patch = pytest.MonkeyPatch()
        for module in (use_cases, app_module):
            self.patch.setattr(module, "all_specs", lambda: tuple(self.specs))
        self.patch.setenv("COELHO_MODEL_SIGNING_KEY", "online-vs-batch-tests")

    def add(self, spec: Any) -> Any:
        self.specs.append(spec)
        return spec


@pytest.fixture(scope="module")
def registered() -> Iterator[Registered]:
    registry_ = Registered()
    yield registry_
    registry_.patch.undo()


@dataclasses.dataclass
class Compared:
    """One use case through the real pipeline, then `<uc>/online_vs_batch` materialized."""

    spec: Any
    stack: Any
    newer: list[dict[str, Any]]
    metadata: dict[str, Any]


@pytest.fixture(scope="module")
def pipelines(
    registered: Registered, kafka_service: Any, redis_service: Any, mlflow_service: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], Compared]:  # fmt: skip
    """`get(key)`: the use case's stream learned by both models, then newer events ingested
    and compared (built once per key): Kafka -> Delta -> batch champion (from the Delta table)
    and a real learner snapshot of the first `LEARNED` events; then `NEWER` events."""
    from serving_pipeline import ingest_all, learn, train_batch

    from coelho.platform.kafka import ensure_topics

    built: dict[str, Compared] = {}

    def get(key: str) -> Compared:
        if key in built:
            return built[key]
        redis_service.start()
        spec = isolated_spec(key)
        spec = registered.add(
            dataclasses.replace(spec, topic=f"{spec.topic}_{uuid.uuid4().hex[:8]}")
        )
        ensure_topics(kafka_service.bootstrap_servers, [spec.topic])
        lakehouse = tmp_path_factory.mktemp(f"compare-{key}") / "lakehouse"
        stack = _stack(kafka_service, redis_service, mlflow_service, lakehouse)
        events = _events(key, spec, LEARNED + NEWER)
        learned, newer = events[:LEARNED], events[LEARNED:]
        _produce(kafka_service.bootstrap_servers, spec, learned)
        ingest_all(stack, spec, LEARNED)
        train_batch(stack, spec, visualizations=False)
        learn(stack, spec, LEARNED)
        _produce(kafka_service.bootstrap_servers, spec, newer)
        ingest_all(stack, spec, NEWER)
        with dg.instance_for_test() as instance:
            result = _materialize(spec, stack.lakehouse, stack.mlflow_uri, instance)
        assert result.success
        [materialization] = result.get_asset_materialization_events()
        metadata = {k: v.value for k, v in materialization.materialization.metadata.items()}
        built[key] = Compared(spec, stack, newer, metadata)
        return built[key]

    return get


@pytest.mark.parametrize("key", ["tfd", "eta", "ecci"])
def test_both_models_are_scored_on_the_same_unseen_rows(
    key: str, pipelines: Callable[[str], Compared]
) -> None:
    compared = pipelines(key)
    spec, stack, newer, metadata = (
        compared.spec, compared.stack, compared.newer, compared.metadata
    )  # fmt: skip
    assert metadata["window_rows"] == NEWER
    assert metadata["eligible_rows"] == NEWER

    # The same rows, through both models, as the asset scored them (no other row: no leakage).
    comparison = cmp.compare(spec, stack.mlflow_uri, naming.raw_table_uri(stack.lakehouse, spec),
                             {}, max_rows=5000, min_rows=20)  # fmt: skip
    newer_ids = [event[spec.id_field] for event in newer]
    assert sorted(comparison.scores.ids) == sorted(newer_ids)
    by_id = {event[spec.id_field]: event for event in newer}
    ordered = [by_id[i] for i in comparison.scores.ids]
    snapshot = load_latest_snapshot(stack.mlflow_uri, spec)
    champion = registry.load_champion(stack.mlflow_uri, spec)
    live_key = cmp.live_output_key(spec)
    live = [snapshot.bundle.predict(event) for event in ordered]
    batch = registry.predict_frame(champion.model, spec, ordered)
    if spec.task == "classification":
        assert comparison.scores.probability["live"] == pytest.approx([a[live_key] for a in live])
        assert comparison.scores.prediction["live"] == [a["prediction"] for a in live]
        assert comparison.scores.probability["batch"] == pytest.approx(
            batch["probability"].tolist()
        )
        labels = [event[spec.label_field] for event in ordered]
        expected = evaluation.classification_metrics(
            labels, [a[live_key] for a in live], y_pred=[a["prediction"] for a in live]
        )
        assert metadata["live_fbeta"] == pytest.approx(expected["fbeta"])
    else:
        assert comparison.scores.prediction["live"] == pytest.approx([a[live_key] for a in live])
        assert comparison.scores.prediction["batch"] == pytest.approx(batch["prediction"].tolist())
    if spec.task == "regression":
        labels = [event[spec.label_field] for event in ordered]
        expected = evaluation.regression_metrics(labels, batch["prediction"].tolist())
        assert metadata["batch_mae"] == pytest.approx(expected["mae"])
    if spec.task == "clustering":
        assert -1.0 <= metadata["adjusted_rand_index"] <= 1.0
        assert "live_silhouette" in metadata or "batch_silhouette" in metadata

    # Logged to MLflow as a comparison run: the document the API serves.
    document = cmp.latest_comparison(stack.mlflow_uri, spec)
    assert document is not None and document["run_id"] == metadata["run_id"]
    assert document["window"]["rows"] == NEWER
    assert document["live"]["events_learned"] == LEARNED
    assert document["batch"]["version"] == champion.version
    primary = spec.batch_primary.name
    [row] = [r for r in document["metrics"] if r["metric"] == primary]
    assert row["primary"] and row["live"] == pytest.approx(metadata.get(f"live_{primary}"))


def _client(monkeypatch: pytest.MonkeyPatch, mlflow_uri: str, lakehouse: str) -> TestClient:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("COELHO_LAKEHOUSE_URI", lakehouse)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("COELHO_API_KEY", raising=False)
    return TestClient(app_module.create_app())


def test_the_api_serves_the_latest_comparison(
    pipelines: Callable[[str], Compared], monkeypatch: pytest.MonkeyPatch
) -> None:
    compared = pipelines("tfd")
    spec, metadata = compared.spec, compared.metadata
    with _client(monkeypatch, compared.stack.mlflow_uri, compared.stack.lakehouse) as client:
        response = client.get(f"/api/v1/batch/{spec.key}/comparison")
        plot = client.get(f"/api/v1/batch/{spec.key}/comparison/plot")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["run_id"] == metadata["run_id"]
    assert body["use_case"] == spec.key
    assert body["window"]["rows"] == NEWER
    assert body["primary_metric"] == {"name": "fbeta", "direction": "max"}
    [primary] = [row for row in body["metrics"] if row["primary"]]
    assert primary["metric"] == "fbeta"
    assert primary["live"] == pytest.approx(metadata["live_fbeta"])
    assert primary["batch"] == pytest.approx(metadata["batch_fbeta"])
    assert body["leader"] == metadata["leader"] == primary["better"]
    assert plot.status_code == 200
    assert plot.headers["content-type"] == "image/png"
    assert plot.content.startswith(PNG_MAGIC)


def test_the_api_says_when_there_is_no_comparison(
    registered: Registered, mlflow_service: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = registered.add(isolated_spec("ecci"))
    with _client(monkeypatch, mlflow_service.tracking_uri, str(tmp_path)) as client:
        response = client.get(f"/api/v1/batch/{spec.key}/comparison")
        plot = client.get(f"/api/v1/batch/{spec.key}/comparison/plot")
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert f"no online-vs-batch comparison for {spec.key} yet" in detail
    assert f"{spec.key}/online_vs_batch" in detail
    assert plot.status_code == 404 and plot.json()["detail"] == detail


def test_no_model_yet_skips_with_the_reason(
    mlflow_service: Any, tmp_path: Path, instance: Any
) -> None:
    spec = isolated_spec("eta")
    asset = build_online_vs_batch_asset(spec)
    result = _materialize(spec, str(tmp_path / "lakehouse"), mlflow_service.tracking_uri, instance)
    assert result.success
    assert result.get_asset_materialization_events() == []
    observations = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    ]
    assert [o.asset_key for o in observations] == [asset.key]
    assert "no live model snapshot" in observations[0].metadata["skipped"].value
    assert cmp.latest_comparison(mlflow_service.tracking_uri, spec) is None


def _raw_table(spec: Any, uri: str, rows: list[tuple[int, int, str]]) -> None:
    """Raw rows (partition, offset, event time) of otherwise generated events."""
    events = list(itertools.islice(spec.generator(seed=3, start=START), len(rows)))
    for event, (_, _, time) in zip(events, rows, strict=True):
        event[spec.time_field] = time
    table = raw_rows(spec, events, [r[0] for r in rows], [r[1] for r in rows])
    write_deltalake(ensure_table(uri, raw_schema(spec), [PARTITION_COLUMN]), table, mode="append")


def test_the_window_holds_only_rows_neither_model_learned(tmp_path: Path) -> None:
    spec = isolated_spec("eta")
    uri = str(tmp_path / "raw")
    rows = [
        (0, 0, "2026-01-01T10:00:00+00:00"),  # learned by the live model
        (0, 1, "2026-01-01T12:00:00+00:00"),  # learned by the live model
        (0, 2, "2026-01-01T13:00:00+00:00"),  # new to both
        (1, 5, "2026-01-01T11:00:00+00:00"),  # not learned live, but in the champion's window
        (1, 6, "2026-01-02T09:00:00+00:00"),  # new to both (a later day)
        (2, 0, "2026-01-01T14:00:00+00:00"),  # a partition the snapshot never read: new
    ]
    _raw_table(spec, uri, rows)
    cutoff = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)  # the champion's last training event
    window = cmp.select_window(spec, uri, {}, {0: 2, 1: 0}, cutoff, max_rows=10)
    times = [e[spec.time_field] for e in window.events]
    assert window.eligible_rows == 3 and window.raw_rows == len(rows)
    assert times == sorted(times)
    assert [datetime.fromisoformat(t) for t in times] == [
        datetime(2026, 1, 1, 13, tzinfo=UTC),
        datetime(2026, 1, 1, 14, tzinfo=UTC),
        datetime(2026, 1, 2, 9, tzinfo=UTC),
    ]
    newest = cmp.select_window(spec, uri, {}, {0: 2, 1: 0}, cutoff, max_rows=2)
    assert [e[spec.time_field] for e in newest.events] == times[1:]
    assert newest.eligible_rows == 3
    nothing_learned = cmp.select_window(spec, uri, {}, {}, cutoff, max_rows=10)
    assert nothing_learned.rows == 4  # every row after the cutoff


def test_window_events_are_the_ingested_events(tmp_path: Path) -> None:
    """A raw row comes back as the event that was ingested (nested fields, times as text)."""
    spec = isolated_spec("tfd")
    uri = str(tmp_path / "raw")
    events = list(itertools.islice(spec.generator(seed=9, start=START), 5))
    write_deltalake(ensure_table(uri, raw_schema(spec), [PARTITION_COLUMN]),
                    raw_rows(spec, events, [0] * 5, list(range(5))), mode="append")  # fmt: skip
    cutoff = datetime(2000, 1, 1, tzinfo=UTC)
    window = cmp.select_window(spec, uri, {}, {}, cutoff, max_rows=10)
    assert [spec.extract_features(e) for e in window.events] == [
        spec.extract_features(e) for e in events
    ]


def test_the_leader_follows_the_primary_metric_direction() -> None:
    """Pure logic: mae is lower-better, fbeta higher-better; undefined values name no leader."""
    eta, tfd = isolated_spec("eta"), isolated_spec("tfd")
    assert cmp.leader(eta, 300.0, 250.0) == "batch"
    assert cmp.leader(tfd, 0.7, 0.6) == "live"
    assert cmp.leader(tfd, 0.5, 0.5) == "tie"
    assert cmp.leader(tfd, None, 0.5) is None
    rows = cmp.metric_rows(eta, {"live": {"mae": 300.0, "r2": float("nan")},
                                 "batch": {"mae": 250.0, "r2": 0.9}})  # fmt: skip
    assert [r["metric"] for r in rows][:2] == ["mae", "rmse"]
    assert rows[0] == {"metric": "mae", "live": 300.0, "batch": 250.0, "primary": True,
                       "better": "batch"}  # fmt: skip
    r2 = next(r for r in rows if r["metric"] == "r2")
    assert r2["live"] is None and r2["batch"] == 0.9


def test_clusterings_are_scored_on_one_model_free_encoding() -> None:
    """Pure logic: the same events give the same matrix whatever the models; a clustering that
    follows a feature scores a higher silhouette than one that ignores it."""
    spec = isolated_spec("ecci")
    events = list(itertools.islice(spec.generator(seed=4, start=START), 400))
    matrix = cmp.feature_matrix(spec, events)
    assert matrix.shape[0] == len(events)
    assert abs(matrix[:, : len(spec.numeric_features)].mean()) < 1e-9  # z-scored numerics
    devices = {"Mobile": 0, "Desktop": 1, "Tablet": 2}
    by_device = [devices[e["device_info"]["device_type"]] for e in events]
    arbitrary = [i % 3 for i in range(len(events))]
    assert cmp.silhouette(matrix, by_device) > cmp.silhouette(matrix, arbitrary)
    assert math.isnan(cmp.silhouette(matrix, [0] * len(events)))  # one cluster: undefined


def test_it_refreshes_every_half_hour_once_its_upstreams_exist() -> None:
    """Its own automation condition, evaluated as the sensor does (no run is launched)."""
    from datetime import timedelta

    from coelho_pipelines.batch.online_vs_batch import build_online_vs_batch_defs
    from coelho_pipelines.naming import online_vs_batch_sensor_name as sensor_name

    spec = isolated_spec("tfd")
    part = build_online_vs_batch_defs(spec)
    [asset] = part.assets
    [sensor] = part.sensors
    assert sensor.name == sensor_name(spec)
    defs = dg.Definitions(
        assets=[asset],
        sensors=[sensor],
        resources={"lakehouse": LakehouseResource(uri="unused"),
                   "mlflow": MlflowResource(tracking_uri="http://127.0.0.1:9")},
    )  # fmt: skip
    first = datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        cursor = None

        def requested(minutes: int) -> bool:
            nonlocal cursor
            result = dg.evaluate_automation_conditions(
                defs=defs, instance=instance, cursor=cursor,
                evaluation_time=first + timedelta(minutes=minutes),
            )  # fmt: skip
            cursor = result.cursor
            return result.total_requested > 0

        assert not any(requested(m) for m in range(0, 45, 5))  # upstreams missing
        for key in asset.dependency_keys:
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        times = [m for m in range(45, 225, 5) if requested(m)]
    clock = [(first + timedelta(minutes=m)).strftime("%H:%M") for m in times]
    # The 10:30 tick passed while upstreams were missing: it runs as soon as they exist, then
    # at every tick.
    assert clock == ["10:50", "11:00", "11:30", "12:00", "12:30", "13:00", "13:30"]
