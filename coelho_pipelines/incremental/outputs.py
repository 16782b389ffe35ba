"""The learner's writers: background threads for Redis and MLflow, so learning never waits.

- `RedisPublisher`: live model (latest capture wins), status, metrics, samples, drift
  records. On a Redis error it counts the failure (LEARNER_ERRORS kind=redis), backs off and
  retries, keeping only the newest model; learning goes on meanwhile.
- `MlflowRecorder`: metrics (step = events learned; the steps of up to a second go in one
  call), snapshots (the newest pending one wins) and tags. A snapshot is durable once its
  tag is written; `take_durable` hands those to the learning thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import Any

from coelho_pipelines import telemetry
from coelho_pipelines.incremental import live_store
from coelho_pipelines.incremental.capture import Capture
from coelho_pipelines.incremental.learner import Learner
from coelho_pipelines.incremental.snapshot import SnapshotInfo, SnapshotStore
from coelho_pipelines.use_cases.spec import UseCaseSpec

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 5.0


def _backoff(failures: int) -> float:
    return min(MAX_BACKOFF_SECONDS, 0.2 * 2 ** min(failures, 5))


class _Worker:
    """A daemon thread that processes work until closed; subclasses implement `_work`."""

    name = "worker"
    wait_timeout: float | None = None  # re-check `_pending` this often (time-based work)

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._flushing = False
        self.failures = 0
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _pending(self) -> bool:
        raise NotImplementedError

    def _work(self) -> bool:
        """Do one unit of work; False on a failure (the caller backs off)."""
        raise NotImplementedError

    def _loop(self) -> None:
        consecutive = 0
        while True:
            with self._cond:
                while not self._pending() and not self._closed:
                    self._cond.wait(self.wait_timeout)
                if self._closed and not self._pending():
                    return
                self._busy = True
            ok = False
            try:
                ok = self._work()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
            if ok:
                consecutive = 0
            else:
                consecutive += 1
                with self._cond:
                    if self._closed:
                        return
                    self._cond.wait(_backoff(consecutive))

    def notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._busy and not self._pending()

    def flush(self, timeout: float) -> bool:
        """Wait until everything pending is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing = True
            self._cond.notify_all()
            try:
                while self._busy or self._pending():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(min(remaining, 0.2))
            finally:
                self._flushing = False
        return True

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)


class RedisPublisher(_Worker):
    """Writes the live model, status, metrics and drift records to Redis."""

    name = "coelho-redis-publisher"

    def __init__(self, spec: UseCaseSpec, url: str, namespace: str, learner: Learner) -> None:
        import redis

        super().__init__()
        self.spec = spec
        self.keys = live_store.Keys(spec.key, namespace)
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.learner = learner
        self._model: Capture | None = None
        self._light: dict[str, Any] | None = None
        self._status: dict[str, Any] | None = None
        self._drifts: deque[dict[str, Any]] = deque()
        self.published: list[tuple[int, int]] = []  # (version, events) of recent publishes
        self.last_version = 0

    def _pending(self) -> bool:
        return bool(self._model or self._light or self._status or self._drifts)

    def offer_model(self, capture: Capture) -> None:
        with self._cond:
            previous, self._model = self._model, capture
            self._cond.notify_all()
        if previous is not None:
            previous.release()  # superseded before it was written

    def offer_light(self, payload: dict[str, Any]) -> None:
        with self._cond:
            self._light = payload
            self._cond.notify_all()

    def offer_status(self, **fields: Any) -> None:
        with self._cond:
            self._status = {**(self._status or {}), **fields}
            self._cond.notify_all()

    def add_drift(self, record: dict[str, Any]) -> None:
        with self._cond:
            self._drifts.append(record)
            self._cond.notify_all()

    @property
    def model_pending(self) -> bool:
        with self._cond:
            return self._model is not None

    def _work(self) -> bool:
        with self._cond:
            capture, light, status = self._model, self._light, self._status
            drifts = list(self._drifts)
        try:
            if capture is not None:
                self._publish(capture)
                with self._cond:
                    if self._model is capture:
                        self._model = None
                capture.release()
            if drifts:
                for record in drifts:
                    live_store.record_drift(self.client, self.keys, record)
                    with self._cond:
                        self._drifts.popleft()
            if light is not None:
                self._write_light(light)
                with self._cond:
                    if self._light is light:
                        self._light = None
            if status is not None:
                live_store.write_status(self.client, self.keys, **status)
                with self._cond:
                    if self._status is status:
                        self._status = None
            return True
        except Exception as exc:  # noqa: BLE001 - any Redis/network error: retry later
            self.failures += 1
            telemetry.LEARNER_ERRORS.labels(self.spec.key, "redis").inc()
            log.warning("Redis publish failed (%s); learning continues, retrying", exc)
            return False

    def _publish(self, capture: Capture) -> None:
        blob = capture.bundle_path.read_bytes()
        floor = max(self.last_version, capture.model_version)
        version = live_store.publish_model(self.client, self.keys, blob, floor)
        self.last_version = version
        self.learner.progress.model_version = max(self.learner.progress.model_version, version)
        self.published.append((version, capture.events_learned))
        del self.published[:-100]
        live_store.write_status(
            self.client,
            self.keys,
            model_version=version,
            model_events=capture.events_learned,
            model_offsets=json.dumps({str(p): o for p, o in capture.offsets.items()}),
            model_bytes=len(blob),
        )
        telemetry.LEARNER_PUBLISH_LATENCY.labels(self.spec.key).observe(
            time.monotonic() - capture.started
        )
        telemetry.LEARNER_PUBLISH_BYTES.labels(self.spec.key).set(len(blob))

    def _write_light(self, light: dict[str, Any]) -> None:
        live_store.write_metrics(
            self.client,
            self.keys,
            light["metrics"],
            light.get("clusters"),
            light.get("samples"),
            light.get("leaderboard"),
        )
        live_store.write_status(self.client, self.keys, **light["status"])


class MlflowRecorder(_Worker):
    """Logs metrics and writes snapshots to the learner's MLflow run."""

    name = "coelho-mlflow-recorder"
    MAX_METRICS_PER_CALL = 900
    METRICS_EVERY_SECONDS = 1.0  # metric steps are batched: at most one call per second
    wait_timeout = 0.25

    def __init__(self, spec: UseCaseSpec, store: SnapshotStore, run_id: str, slot: int) -> None:
        super().__init__()
        self.spec = spec
        self.store = store
        self.run_id = run_id
        self.next_slot = slot
        self._metrics: deque[tuple[int, dict[str, float]]] = deque()
        self._snapshot: Capture | None = None
        self._tags: dict[str, str] = {}
        self._texts: dict[str, str] = {}  # artifact file -> text (the newest wins)
        self._durable: deque[SnapshotInfo] = deque()
        self._metrics_at = 0.0
        self.dropped_metric_sets = 0

    def _pending(self) -> bool:
        if self._snapshot is not None or self._tags or self._texts:
            return True
        if not self._metrics:
            return False
        due = time.monotonic() - self._metrics_at >= self.METRICS_EVERY_SECONDS
        return due or self._flushing or self._closed

    def add_metrics(self, step: int, values: dict[str, float]) -> None:
        with self._cond:
            self._metrics.append((step, values))
            while len(self._metrics) > 10_000:  # MLflow away for long: keep the newest
                self._metrics.popleft()
                self.dropped_metric_sets += 1
            self._cond.notify_all()

    def add_snapshot(self, capture: Capture) -> None:
        with self._cond:
            previous, self._snapshot = self._snapshot, capture
            self._cond.notify_all()
        if previous is not None:
            previous.release()

    def set_tag(self, key: str, value: str) -> None:
        with self._cond:
            self._tags[key] = value
            self._cond.notify_all()

    def set_text(self, artifact_file: str, text: str) -> None:
        """Write a text artifact (e.g. the leaderboard) to the run; the newest text wins."""
        with self._cond:
            self._texts[artifact_file] = text
            self._cond.notify_all()

    @property
    def snapshot_pending(self) -> bool:
        with self._cond:
            return self._snapshot is not None

    def take_durable(self) -> list[SnapshotInfo]:
        with self._cond:
            out = list(self._durable)
            self._durable.clear()
        return out

    def _work(self) -> bool:
        try:
            self._write_snapshot()
            self._write_metrics()
            self._write_tags()
            self._write_texts()
            return True
        except Exception as exc:  # noqa: BLE001 - MLflow down or failing: retry later
            self.failures += 1
            telemetry.LEARNER_ERRORS.labels(self.spec.key, "mlflow").inc()
            log.warning("MLflow write failed (%s); learning continues, retrying", exc)
            return False

    def _write_snapshot(self) -> None:
        with self._cond:
            capture = self._snapshot
            if capture is None:
                return
            # The writer's own reference: a newer snapshot may replace this one meanwhile, and
            # add_snapshot then drops the slot's reference; the files must outlive the upload.
            capture.retain()
        try:
            info = SnapshotInfo(
                slot=self.next_slot,
                events_learned=capture.events_learned,
                offsets=capture.offsets,
                written_at=live_store.now_iso(),
                model_version=capture.model_version,
            )
            self.store.write(self.run_id, capture.directory, info)
            telemetry.LEARNER_SNAPSHOT_LATENCY.labels(self.spec.key).observe(
                time.monotonic() - capture.started
            )
            self.next_slot = 1 - self.next_slot
            with self._cond:
                still_pending = self._snapshot is capture
                if still_pending:
                    self._snapshot = None
                self._durable.append(info)
            if still_pending:
                capture.release()  # the slot's reference
        finally:
            capture.release()

    def _write_metrics(self) -> None:
        with self._cond:
            pending = list(self._metrics)
        if not pending:
            return
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        batch, taken = [], 0
        for step, values in pending:
            if batch and len(batch) + len(values) > self.MAX_METRICS_PER_CALL:
                break
            batch.extend(Metric(k, v, timestamp, step) for k, v in values.items())
            taken += 1
        self.store.client.log_batch(self.run_id, metrics=batch, synchronous=True)
        with self._cond:
            for _ in range(taken):
                self._metrics.popleft()
            if not self._metrics:
                self._metrics_at = time.monotonic()

    def _write_tags(self) -> None:
        with self._cond:
            tags = dict(self._tags)
        for key, value in tags.items():
            self.store.client.set_tag(self.run_id, key, value)
            with self._cond:
                if self._tags.get(key) == value:
                    del self._tags[key]

    def _write_texts(self) -> None:
        with self._cond:
            texts = dict(self._texts)
        for artifact_file, text in texts.items():
            self.store.client.log_text(self.run_id, text, artifact_file)
            with self._cond:
                if self._texts.get(artifact_file) == text:
                    del self._texts[artifact_file]
