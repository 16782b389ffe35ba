"""What the web UI reads beyond the area routes: an overview of the products, metric history
with its markers, and the live-update payload. Blocking readers, run in worker threads.

Markers on a metric history:
- `drift`: the learner's drift records (Redis `live_store`), at the events count they were
  detected at;
- `restart`: a learner run resumed (the learner resumes one MLflow run, so a restart shows in its
  metric history as a step that does not increase, or as a pause of more than
  `RESTART_GAP_MS` between two logged points);
- `promotion`: a batch model version registered as champion (`coelho-<uc>-batch` versions).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from coelho_pipelines.use_cases.spec import UseCaseSpec

RESTART_GAP_MS = 60_000
KAFKA_TIMEOUT_SECONDS = 2.0


def iso_ms(value: str | None) -> int | None:
    """Milliseconds since the epoch of an ISO-8601 time (naive = UTC), or None."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def restart_markers(points: Sequence[dict[str, Any]], gap_ms: int = RESTART_GAP_MS) -> list[dict]:
    """Learner restarts seen in one metric's history ([{step, value, timestamp}])."""
    ordered = sorted(points, key=lambda p: (p["timestamp"], p["step"]))
    markers = []
    for before, point in zip(ordered, ordered[1:], strict=False):
        if point["step"] <= before["step"] or point["timestamp"] - before["timestamp"] > gap_ms:
            markers.append(
                {
                    "kind": "restart",
                    "step": point["step"],
                    "timestamp": point["timestamp"],
                    "label": f"learner resumed at {point['step']} events",
                }
            )
    return markers


def drift_markers(records: Sequence[dict[str, Any]]) -> list[dict]:
    """Markers of the learner's drift records (oldest first)."""
    markers = []
    for record in records:
        before, after = record.get("error_before"), record.get("error_after")
        detail = ""
        if isinstance(before, int | float) and isinstance(after, int | float):
            detail = f": error {before:.3g} -> {after:.3g}"
        markers.append(
            {
                "kind": "drift",
                "step": record.get("events_learned"),
                "timestamp": iso_ms(record.get("detected_at")),
                "label": f"drift #{record.get('id')} ({record.get('detector', 'ADWIN')}){detail}",
            }
        )
    return markers


def promotion_markers(versions: Sequence[Any], champion: str | None) -> list[dict]:
    """Markers of registered batch model versions (each registered when it was promoted)."""
    markers = []
    for version in sorted(versions, key=lambda v: int(v.version)):
        current = " (champion)" if str(version.version) == champion else ""
        markers.append(
            {
                "kind": "promotion",
                "step": None,
                "timestamp": int(version.creation_timestamp),
                "label": f"batch model v{version.version} promoted{current}",
            }
        )
    return markers


def registry_versions(tracking_uri: str, spec: UseCaseSpec) -> tuple[list[Any], str | None]:
    """The registered batch model's versions and the champion's version (or [] and None)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from coelho_pipelines.batch import registry

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        versions = list(client.search_model_versions(f"name = '{spec.registered_model}'"))
    except MlflowException:
        return [], None
    champion = registry.champion_version(client, spec)
    return versions, None if champion is None else str(champion.version)


def metric_history(tracking_uri: str, run_id: str, names: Sequence[str]) -> dict[str, list]:
    """MLflow history of each metric of a run: [{step, value, timestamp}], oldest first."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    history = {}
    for name in names:
        points = [
            {"step": m.step, "value": m.value, "timestamp": m.timestamp}
            for m in client.get_metric_history(run_id, name)
        ]
        history[name] = sorted(points, key=lambda p: (p["timestamp"], p["step"]))
    return history


def scalar_names(values: dict[str, Any]) -> list[str]:
    """The metrics that are plain numbers (not matrices, reports or flags)."""
    return [k for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)]


def topic_offsets(bootstrap_servers: str, topic: str, group: str) -> dict[str, Any]:
    """End offset (messages ever written) of a topic and the group's committed offset: the lag.

    Informative only: any Kafka error gives `{"error": ...}` instead of raising.
    """
    try:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": group,
                "enable.auto.commit": False,
                "socket.timeout.ms": int(KAFKA_TIMEOUT_SECONDS * 1000),
            }
        )
        try:
            metadata = consumer.list_topics(topic, timeout=KAFKA_TIMEOUT_SECONDS).topics.get(topic)
            if metadata is None or metadata.error is not None or not metadata.partitions:
                return {"topic": topic, "end_offset": 0, "committed": 0, "lag": 0}
            partitions = [TopicPartition(topic, p) for p in metadata.partitions]
            committed = consumer.committed(partitions, timeout=KAFKA_TIMEOUT_SECONDS)
            end = done = 0
            for part in committed:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, part.partition), timeout=KAFKA_TIMEOUT_SECONDS
                )
                end += high
                done += max(part.offset, low) if part.offset >= 0 else low
            return {"topic": topic, "end_offset": end, "committed": done, "lag": max(0, end - done)}
        finally:
            consumer.close()
    except Exception as error:  # noqa: BLE001 - the overview shows what it can
        return {"topic": topic, "error": str(error)[:200]}


def primary_value(spec: UseCaseSpec, metrics: dict[str, Any] | None) -> float | None:
    """The live model's primary metric, when it is a number."""
    value = (metrics or {}).get(spec.river_primary.name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def champion_summary(spec: UseCaseSpec, runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The champion run's id and primary metric, from `registry.list_runs_best_first`."""
    champion = next((run for run in runs if run.get("champion")), None)
    if champion is None:
        return None
    value = champion.get("metrics", {}).get(spec.batch_primary.name)
    return {
        "run_id": champion["run_id"],
        "name": spec.batch_primary.name,
        "direction": spec.batch_primary.direction,
        "value": value,
        "start_time": champion.get("start_time"),
    }


def iso_now() -> str:
    return datetime.now(UTC).isoformat()
