"""One bounded learner run: Kafka in, prequential learning, Redis and MLflow out.

The learning thread only learns and takes captures (a fork, see `capture`); Redis and
MLflow are written by two background threads, so a slow or absent Redis/MLflow never
blocks learning:
- `RedisPublisher`: live model (latest capture wins), status, metrics, samples, drift
  records; on a Redis error it counts the failure (LEARNER_ERRORS kind=redis), backs off
  and retries, keeping only the newest model.
- `MlflowRecorder`: metrics every `metrics_every` events (step = events learned, batched
  into as few calls as possible), snapshots every `snapshot_every` events and at the end,
  drift markers. A snapshot becomes durable when its tag is written; the learning thread
  then reports it (`on_snapshot`) and commits its offsets to the consumer group.

When to capture a snapshot or a model to publish is `capture_policy`'s pure decision. A
forked capture is waited for on a short-lived thread, which hands the live model to the
publisher (and the snapshot to the recorder) and its outcome back to the learning loop through
a queue: only the learning thread changes the run's state.

The run ends at `max_duration_seconds` (a long maximum: a learner run lives for hours),
after `idle_timeout_seconds` without events once caught up (0: never), at `until_events`
learned events (tests, benchmarks), or when `should_stop` says so (Dagster run termination,
the keeper sensor's lease expiring); it then takes a final snapshot, publishes the model,
sets the status to FINISHED and waits for both to be written.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from coelho_pipelines import telemetry
from coelho_pipelines.incremental import live_store, promotions
from coelho_pipelines.incremental.capture import Capture, CaptureMode, Capturer
from coelho_pipelines.incremental.capture_policy import (
    SNAPSHOT,
    CapturePolicy,
    Kind,
    snapshot_due_by_schedule,
)
from coelho_pipelines.incremental.heap import frozen_heap
from coelho_pipelines.incremental.learner import ALREADY_LEARNED, Learner, Record, Step
from coelho_pipelines.incremental.outputs import MlflowRecorder, RedisPublisher
from coelho_pipelines.incremental.settings import LearnerSettings
from coelho_pipelines.incremental.snapshot import LAST_DRIFT_TAG, SnapshotInfo, SnapshotStore
from coelho_pipelines.use_cases.spec import UseCaseSpec

log = logging.getLogger(__name__)

LIGHT_UPDATE_SECONDS = 1.0
LAG_EVERY_SECONDS = 5.0

__all__ = [  # LearnerSettings and the schedule are re-exported: callers import them from here
    "Endpoints",
    "LearnerRun",
    "LearnerSettings",
    "RunHooks",
    "RunSummary",
    "snapshot_due_by_schedule",
]


@dataclass(frozen=True)
class Endpoints:
    bootstrap_servers: str
    redis_url: str
    mlflow_tracking_uri: str


@dataclass
class RunHooks:
    """Callbacks into the caller (all run on the learning thread)."""

    on_snapshot: Callable[[SnapshotInfo, dict[str, float]], None] | None = None
    on_step: Callable[[Step, Learner], None] | None = None
    should_stop: Callable[[], bool] | None = None
    log: Callable[[str], None] | None = None


@dataclass
class RunSummary:
    stop_reason: str
    events_learned: int
    events_this_run: int
    bad_events: int
    snapshot: SnapshotInfo | None
    mlflow_run_id: str
    metrics: dict[str, float]
    seconds: float
    learning_seconds: float
    capture_blocking_seconds: float
    captures: int
    drifts: int
    redis_failures: int
    mlflow_failures: int
    resumed_from: int


class LearnerRun:
    """One bounded run of a use case's learner (see the module docstring): sets up the
    collaborators, runs the learning loop, always shuts them down."""

    def __init__(
        self,
        spec: UseCaseSpec,
        endpoints: Endpoints,
        settings: LearnerSettings | None = None,
        dagster_run_id: str | None = None,
        hooks: RunHooks | None = None,
    ) -> None:
        self.spec = spec
        self.endpoints = endpoints
        self.settings = settings or LearnerSettings()
        self.dagster_run_id = dagster_run_id
        self.hooks = hooks or RunHooks()
        self.uc = spec.key
        self.learner: Learner | None = None
        self.snapshot: SnapshotInfo | None = None  # the latest durable snapshot
        self.mlflow_run_id: str | None = None
        self.publisher: RedisPublisher | None = None

    def say(self, message: str) -> None:
        log.info(message)
        if self.hooks.log:
            self.hooks.log(message)

    def _restore(self, store: SnapshotStore) -> tuple[Learner, SnapshotInfo | None]:
        loaded = store.load_latest()
        warmup = self.settings.drift_warmup_events
        if loaded is None:
            self.say(f"{self.uc}: no snapshot yet, learning from the start of the topic")
            return Learner(self.spec, drift_warmup_events=warmup), None
        self.say(
            f"{self.uc}: resuming from the snapshot at {loaded.info.events_learned} events "
            f"(offsets {loaded.info.offsets})"
        )
        return Learner(self.spec, loaded.bundle, loaded.progress), loaded.info

    def run(self) -> RunSummary:
        from coelho_pipelines.incremental.consumer import LagMonitor, TopicReader, consumer_group

        s = self.settings
        store = SnapshotStore(self.endpoints.mlflow_tracking_uri, self.spec, s.experiment)
        learner, info = self._restore(store)
        self.learner, self.snapshot = learner, info
        run_id = store.open_run(self.dagster_run_id)
        self.mlflow_run_id = run_id
        publisher = RedisPublisher(self.spec, self.endpoints.redis_url, s.redis_namespace, learner)
        self.publisher = publisher
        recorder = MlflowRecorder(self.spec, store, run_id, 0 if info is None else 1 - info.slot)
        capturer = Capturer(s.capture_mode)
        reader = TopicReader(
            self.endpoints.bootstrap_servers,
            s.topic or self.spec.topic,
            s.consumer_group or consumer_group(self.uc),
            start_offsets=dict(learner.progress.offsets),
        )
        loop = _Loop(self, learner, reader, publisher, recorder, capturer, run_id)
        lag = LagMonitor(
            self.endpoints.bootstrap_servers,
            reader.topic,
            learner.progress.offsets,
            telemetry.LEARNER_LAG.labels(self.uc).set,
            LAG_EVERY_SECONDS,
        )
        publisher.start()
        recorder.start()
        lag.start()
        telemetry.LEARNER_RUNNING.labels(self.uc).set(1)
        publisher.offer_status(
            state=live_store.LIVE,
            mlflow_run_id=run_id,
            dagster_run_id=self.dagster_run_id or "",
            events_learned=learner.events_learned,
            stop_reason="",  # the previous run's, if any
        )
        reason = "error"
        try:
            reader.open()
            if reader.expired:
                telemetry.LEARNER_ERRORS.labels(self.uc, "expired").inc(reader.expired)
                self.say(f"{self.uc}: {reader.expired} events expired before they were learned")
            with frozen_heap():
                reason = loop.run()
        except Exception:
            reason = "error"
            raise
        except BaseException:  # KeyboardInterrupt, DagsterExecutionInterruptedError
            reason = "interrupted"
            raise
        finally:
            try:
                loop.finish(reason)
            finally:
                telemetry.LEARNER_RUNNING.labels(self.uc).set(0)
                lag.stop()
                reader.close()
                publisher.close()
                recorder.close()
                capturer.close()
        return loop.summary(reason)


@dataclass(frozen=True)
class _Outcome:
    """A finished capture, handed from the capture thread to the learning loop."""

    kind: Kind
    ok: bool
    total_cost: float | None  # blocking + a forked child's pickling, when known


def _deliver(
    capture: Capture, kind: Kind, publisher: RedisPublisher, recorder: MlflowRecorder, uc: str
) -> _Outcome:
    """Wait for a capture and hand it on: the model to Redis, a snapshot also to MLflow (both
    take it thread-safely). Runs on the capture thread for a fork: touches no loop state."""
    try:
        ok = capture.wait()
    except ChildProcessError as exc:
        ok, capture.error = False, repr(exc)
    if not ok:
        telemetry.LEARNER_ERRORS.labels(uc, "capture").inc()
        log.warning("state capture failed: %s", capture.error)
        capture.retain()
        capture.release()
        return _Outcome(kind, False, None)
    snapshot = kind == SNAPSHOT
    capture.retain(2 if snapshot else 1)
    publisher.offer_model(capture)
    if snapshot:
        recorder.add_snapshot(capture)
    cost = None
    if capture.pid is not None and capture.pickle_seconds is not None:
        cost = capture.blocking_seconds + capture.pickle_seconds
    return _Outcome(kind, True, cost)


@dataclass
class _LoopState:
    resumed_from: int
    started: float = field(default_factory=time.monotonic)
    last_event_at: float = 0.0
    learning_seconds: float = 0.0
    metrics_at: int = 0
    tick_at: float = 0.0
    tick_events: int = 0
    light_events: int = -1
    capture_blocking: float = 0.0
    captures: int = 0
    snapshots: int = 0
    drifts: int = 0

    def __post_init__(self) -> None:
        self.metrics_at = self.resumed_from
        self.tick_events = self.resumed_from


class _Loop:
    """The learning thread: learns each record, reports, takes the captures the policy asks
    for, and applies their outcomes (the only writer of the run's state)."""

    def __init__(
        self,
        run: LearnerRun,
        learner: Learner,
        reader: Any,
        publisher: RedisPublisher,
        recorder: MlflowRecorder,
        capturer: Capturer,
        mlflow_run_id: str,
    ) -> None:
        self.owner = run
        self.settings = run.settings
        self.uc = run.uc
        self.learner = learner
        self.reader = reader
        self.publisher = publisher
        self.recorder = recorder
        self.capturer = capturer
        self.mlflow_run_id = mlflow_run_id
        self.st = _LoopState(resumed_from=learner.events_learned)
        self.policy = CapturePolicy.resuming_at(self.settings, learner.events_learned)
        self.outcomes: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()

    # ------------------------------------------------------------------ the loop

    def run(self) -> str:
        s, st, learner, policy = self.settings, self.st, self.learner, self.policy
        start = time.monotonic()
        st.last_event_at = start
        on_step = self.owner.hooks.on_step
        should_stop = self.owner.hooks.should_stop
        progress = learner.progress
        records: Iterable[Record | None] = self.reader.records()
        if s.until_events and learner.events_learned >= s.until_events:
            return "until_events"
        for record in records:
            now = time.monotonic()
            if record is not None:
                t0 = time.perf_counter()
                step = learner.learn(record)
                st.learning_seconds += time.perf_counter() - t0
                st.last_event_at = now
                if step.error is not None:
                    if step.error != ALREADY_LEARNED:
                        telemetry.LEARNER_BAD_EVENTS.labels(self.uc).inc()
                elif step.drift is not None:
                    self._drift(step)
                if step.promotion is not None:
                    self._promoted(step)
                if on_step is not None:
                    on_step(step, learner)
                if s.until_events and learner.events_learned >= s.until_events:
                    return "until_events"
                if progress.events_learned - st.metrics_at >= s.metrics_every:
                    self._metrics()
            elif self._idle(now):
                return "idle"
            if policy.in_flight is not None:
                self._settle_finished()
            if policy.could_be_due(progress.events_learned, now):
                self._maybe_capture(now)
            if now - st.tick_at >= LIGHT_UPDATE_SECONDS or record is None:
                if now - st.tick_at >= LIGHT_UPDATE_SECONDS:
                    self._tick(now)
                if now - start >= s.max_duration_seconds:
                    return "max_duration"
                if should_stop is not None and should_stop():
                    return "stopped"
        return "end_of_stream"

    def _idle(self, now: float) -> bool:
        """Caught up and nothing new for `idle_timeout_seconds` (never when that is 0)."""
        timeout = self.settings.idle_timeout_seconds
        return timeout > 0 and self.reader.caught_up and now - self.st.last_event_at >= timeout

    # ------------------------------------------------------------------ reporting

    def _drift(self, step: Step) -> None:
        import json

        assert step.drift is not None
        record = {
            **step.drift.to_dict(),
            "use_case": self.uc,
            "mlflow_run_id": self.mlflow_run_id,
            "dagster_run_id": self.owner.dagster_run_id or "",
            "offsets": {str(p): o for p, o in self.learner.progress.offsets.items()},
        }
        self.st.drifts += 1
        telemetry.LEARNER_DRIFTS.labels(self.uc).inc()
        self.publisher.add_drift(record)
        self.recorder.add_metrics(step.drift.events_learned, {"drift_detected": 1.0})
        self.recorder.set_tag(LAST_DRIFT_TAG, json.dumps(record, default=str))
        self.owner.say(f"{self.uc}: drift detected at {step.drift.events_learned} events: {record}")

    def _promoted(self, step: Step) -> None:
        assert step.promotion is not None
        promotions.record_promotion(
            self.uc, step.promotion, self.learner, self.publisher, self.recorder
        )
        self.owner.say(f"{self.uc}: promoted {step.promotion.to_dict()}")

    def _metrics(self) -> None:
        learner, spec = self.learner, self.owner.spec
        progress = learner.progress
        values = learner.metric_scalars()
        values["bad_events"] = float(progress.bad_events)
        self.recorder.add_metrics(progress.events_learned, values)
        self.st.metrics_at = progress.events_learned
        promotions.update_gauges(self.uc, learner)
        primary = values.get(spec.river_primary.name)
        if primary is not None:
            telemetry.LEARNER_PRIMARY_METRIC.labels(self.uc, spec.river_primary.name).set(primary)

    def _light_payload(self, state: str) -> dict[str, Any]:
        learner, snapshot = self.learner, self.owner.snapshot
        progress = learner.progress
        metrics = learner.metric_values()
        metrics["events_learned"] = progress.events_learned
        metrics["updated_at"] = live_store.now_iso()
        return {
            "metrics": metrics,
            "clusters": progress.analytics.to_dict() if progress.analytics is not None else None,
            "samples": list(progress.recent),
            "leaderboard": promotions.leaderboard_payload(learner),
            "status": {
                **promotions.status_fields(learner),
                "state": state,
                "events_learned": progress.events_learned,
                "bad_events": progress.bad_events,
                "drifts": progress.drift.n_drifts,
                "snapshot_events": snapshot.events_learned if snapshot else 0,
            },
        }

    def _tick(self, now: float) -> None:
        """Once a second: throughput, Redis metrics, durable snapshots."""
        st, progress = self.st, self.learner.progress
        elapsed = now - st.tick_at if st.tick_at else 0.0
        learned = progress.events_learned - st.tick_events
        if learned:
            telemetry.LEARNER_EVENTS.labels(self.uc).inc(learned)
            if elapsed > 0:
                telemetry.LEARNER_EVENTS_PER_SECOND.labels(self.uc).set(learned / elapsed)
        st.tick_at, st.tick_events = now, progress.events_learned
        if progress.events_learned != st.light_events:
            self.publisher.offer_light(self._light_payload(live_store.LIVE))
            st.light_events = progress.events_learned
        self._durable()

    def _durable(self) -> None:
        hooks = self.owner.hooks
        for info in self.recorder.take_durable():
            self.owner.snapshot = info
            self.st.snapshots += 1
            self.publisher.offer_status(snapshot_events=info.events_learned)
            promotions.record_leaderboard(self.learner, self.recorder)
            try:
                self.reader.commit(info.offsets)
            except Exception:  # noqa: BLE001 - the snapshot holds the offsets anyway
                telemetry.LEARNER_ERRORS.labels(self.uc, "kafka").inc()
            if hooks.on_snapshot:
                hooks.on_snapshot(info, self.learner.metric_scalars())

    # ------------------------------------------------------------------ captures

    def _maybe_capture(self, now: float) -> None:
        kind = self.policy.decide(
            self.learner.events_learned,
            now,
            at_head=self.reader.at_head,
            snapshot_pending=self.recorder.snapshot_pending,
            model_pending=self.publisher.model_pending,
        )
        if kind is not None:
            self._capture(kind)

    def _capture(self, kind: Kind, mode: CaptureMode | None = None) -> None:
        """Take a capture; an inline one is delivered at once, a fork by a capture thread
        that puts the outcome on `outcomes` for the loop to settle."""
        learner = self.learner
        capture = self.capturer.capture(learner.bundle, learner.progress, kind == SNAPSHOT, mode)
        self.st.captures += 1
        self.st.capture_blocking += capture.blocking_seconds
        self.policy.started(kind, capture.started, capture.events_learned, capture.blocking_seconds)
        deliver = (capture, kind, self.publisher, self.recorder, self.uc)
        if capture.pid is None:
            self._settle(_deliver(*deliver))
            return

        def wait_and_deliver() -> None:
            try:
                outcome = _deliver(*deliver)
            except Exception:  # never leave the loop waiting for this capture
                log.exception("delivering a state capture failed")
                outcome = _Outcome(kind, False, None)
            self.outcomes.put(outcome)

        threading.Thread(target=wait_and_deliver, name="coelho-capture", daemon=True).start()

    def _settle(self, outcome: _Outcome) -> None:
        self.policy.settled(outcome.kind, outcome.ok, outcome.total_cost)

    def _settle_finished(self) -> None:
        """Apply the outcomes the capture thread handed over (never blocks)."""
        while True:
            try:
                self._settle(self.outcomes.get_nowait())
            except queue.Empty:
                return

    # ------------------------------------------------------------------ the end

    def finish(self, reason: str) -> None:
        s, run = self.settings, self.owner
        if self.policy.in_flight is not None:
            with contextlib.suppress(queue.Empty):  # the capture thread waits for its child
                self._settle(self.outcomes.get(timeout=s.final_flush_seconds))
        durable = run.snapshot.events_learned if run.snapshot else 0
        # After an error or an asynchronous interrupt the last event may be half learned:
        # no final snapshot then; the next run resumes from the last good one.
        learned = self.learner.events_learned
        clean = reason not in ("error", "interrupted")
        if clean and learned > 0 and learned != durable:
            self._capture(SNAPSHOT, mode="inline")
        if learned != self.st.metrics_at:
            self._metrics()
        self.publisher.offer_light(self._light_payload(live_store.FINISHED))
        self.publisher.offer_status(state=live_store.FINISHED, stop_reason=reason)
        recorder_ok = self.recorder.flush(s.final_flush_seconds)
        self._durable()
        if not recorder_ok:
            run.say(f"{self.uc}: MLflow did not take the final snapshot in time")
        if not self.publisher.flush(min(30.0, s.final_flush_seconds)):
            run.say(f"{self.uc}: Redis unavailable at the end; live model not updated")
        try:
            self.recorder.store.finish(self.mlflow_run_id)
        except Exception as exc:  # noqa: BLE001 - the run stays RUNNING in MLflow, harmless
            telemetry.LEARNER_ERRORS.labels(self.uc, "mlflow").inc()
            run.say(f"{self.uc}: could not mark the MLflow run finished: {exc}")
        run.say(
            f"{self.uc}: learner stopped ({reason}) at {learned} events, "
            f"snapshot at {run.snapshot.events_learned if run.snapshot else 0}"
        )

    def summary(self, reason: str) -> RunSummary:
        learner, st = self.learner, self.st
        return RunSummary(
            stop_reason=reason,
            events_learned=learner.events_learned,
            events_this_run=learner.events_learned - st.resumed_from,
            bad_events=learner.progress.bad_events,
            snapshot=self.owner.snapshot,
            mlflow_run_id=self.mlflow_run_id,
            metrics=learner.metric_scalars(),
            seconds=time.monotonic() - st.started,
            learning_seconds=st.learning_seconds,
            capture_blocking_seconds=st.capture_blocking,
            captures=st.captures,
            drifts=st.drifts,
            redis_failures=self.publisher.failures,
            mlflow_failures=self.recorder.failures,
            resumed_from=st.resumed_from,
        )
