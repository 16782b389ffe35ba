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

Snapshots go every `snapshot_every` events or `snapshot_interval_seconds`, whichever comes
later (a fast learner catching up does not fork a snapshot every second; a slow stream still
gets one every 1,000 events).

Publishing happens every `publish_every` events or `publish_interval_seconds`, whichever
comes later (at the stream's head, i.e. a fetch found less than a batch, every
`publish_interval_seconds`: a slow stream's 100 events take 10 s), and never more often
than keeps publishing under `publish_budget` (10%) of
the time: a capture costs the learning thread the fork (or the inline pickle) and costs the
machine the child's pickling, which competes with learning for CPU, so both are budgeted.
Only publish captures set that budget: a snapshot also pickles every candidate and the
progress (seconds for a forest), and it has its own schedule.

The run ends at `max_duration_seconds` (a long maximum: a learner run lives for hours),
after `idle_timeout_seconds` without events once caught up (0: never), at `until_events`
learned events (tests, benchmarks), or when `should_stop` says so (Dagster run termination,
the keeper sensor's lease expiring); it then takes a final snapshot, publishes the model,
sets the status to FINISHED and waits for both to be written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from coelho_pipelines import telemetry
from coelho_pipelines.incremental import live_store, promotions
from coelho_pipelines.incremental.capture import Capture, CaptureMode, Capturer
from coelho_pipelines.incremental.drift import DEFAULT_WARMUP_EVENTS
from coelho_pipelines.incremental.heap import frozen_heap
from coelho_pipelines.incremental.learner import ALREADY_LEARNED, Learner, Record, Step
from coelho_pipelines.incremental.outputs import MlflowRecorder, RedisPublisher
from coelho_pipelines.incremental.snapshot import SnapshotInfo, SnapshotStore
from coelho_pipelines.use_cases.spec import UseCaseSpec

log = logging.getLogger(__name__)

LIGHT_UPDATE_SECONDS = 1.0
LAG_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class LearnerSettings:
    """How one learner run behaves (the Dagster op config maps onto this)."""

    max_duration_seconds: float = 86_400.0
    idle_timeout_seconds: float = 0.0  # 0: a quiet stream never ends the run
    snapshot_every: int = 1000
    snapshot_interval_seconds: float = 30.0
    publish_every: int = 100
    publish_interval_seconds: float = 1.0
    metrics_every: int = 100
    until_events: int = 0  # stop once this many events are learned in total (0: no limit)
    publish_budget: float = 0.1
    drift_warmup_events: int = DEFAULT_WARMUP_EVENTS
    capture_mode: CaptureMode | None = None
    topic: str | None = None  # default: the spec's topic
    experiment: str | None = None  # default: the spec's experiment
    redis_namespace: str = live_store.NAMESPACE
    consumer_group: str | None = None  # default: coelho-<uc>-incremental
    final_flush_seconds: float = 120.0


def snapshot_due_by_schedule(
    events_since: int, seconds_since: float, settings: LearnerSettings
) -> bool:
    """Every `snapshot_every` events or `snapshot_interval_seconds`, whichever comes later."""
    return (
        events_since >= settings.snapshot_every
        and seconds_since >= settings.snapshot_interval_seconds
    )


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
    """One bounded run of a use case's learner (see the module docstring)."""

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
        self.snapshot: SnapshotInfo | None = None
        self.mlflow_run_id: str | None = None
        self.publisher: RedisPublisher | None = None

    def _say(self, message: str) -> None:
        log.info(message)
        if self.hooks.log:
            self.hooks.log(message)

    # ------------------------------------------------------------------ setup

    def _restore(self, store: SnapshotStore) -> tuple[Learner, SnapshotInfo | None]:
        loaded = store.load_latest()
        warmup = self.settings.drift_warmup_events
        if loaded is None:
            self._say(f"{self.uc}: no snapshot yet, learning from the start of the topic")
            return Learner(self.spec, drift_warmup_events=warmup), None
        self._say(
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
        resumed_from = learner.events_learned
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
        state = _LoopState(run_id=run_id, resumed_from=resumed_from)
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
                self._say(f"{self.uc}: {reader.expired} events expired before they were learned")
            with frozen_heap():
                reason = self._loop(learner, reader, publisher, recorder, capturer, state)
        except Exception:
            reason = "error"
            raise
        except BaseException:  # KeyboardInterrupt, DagsterExecutionInterruptedError
            reason = "interrupted"
            raise
        finally:
            try:
                self._finish(learner, reader, publisher, recorder, capturer, state, reason)
            finally:
                telemetry.LEARNER_RUNNING.labels(self.uc).set(0)
                lag.stop()
                reader.close()
                publisher.close()
                recorder.close()
                capturer.close()
        return self._summary(learner, state, reason, publisher, recorder, store)

    # ------------------------------------------------------------------ the loop

    def _loop(
        self,
        learner: Learner,
        reader: Any,
        publisher: RedisPublisher,
        recorder: MlflowRecorder,
        capturer: Capturer,
        st: _LoopState,
    ) -> str:
        s = self.settings
        start = time.monotonic()
        st.last_event_at = start
        on_step = self.hooks.on_step
        should_stop = self.hooks.should_stop
        progress = learner.progress
        records: Iterable[Record | None] = reader.records()
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
                    self._drift(step, learner, publisher, recorder, st)
                if step.promotion is not None:
                    self._promoted(step, learner, publisher, recorder)
                if on_step is not None:
                    on_step(step, learner)
                if s.until_events and learner.events_learned >= s.until_events:
                    return "until_events"
                if progress.events_learned - st.metrics_at >= s.metrics_every:
                    self._metrics(learner, recorder, st)
            elif self._idle(reader, st, now):
                return "idle"
            self._maybe_capture(learner, reader, publisher, recorder, capturer, st, now)
            if now - st.tick_at >= LIGHT_UPDATE_SECONDS or record is None:
                if now - st.tick_at >= LIGHT_UPDATE_SECONDS:
                    self._tick(learner, reader, publisher, recorder, st, now)
                if now - start >= s.max_duration_seconds:
                    return "max_duration"
                if should_stop is not None and should_stop():
                    return "stopped"
        return "end_of_stream"

    def _idle(self, reader: Any, st: _LoopState, now: float) -> bool:
        """Caught up and nothing new for `idle_timeout_seconds` (never when that is 0)."""
        timeout = self.settings.idle_timeout_seconds
        return timeout > 0 and reader.caught_up and now - st.last_event_at >= timeout

    def _drift(
        self,
        step: Step,
        learner: Learner,
        publisher: RedisPublisher,
        recorder: MlflowRecorder,
        st: _LoopState,
    ) -> None:
        import json

        assert step.drift is not None
        record = {
            **step.drift.to_dict(),
            "use_case": self.uc,
            "mlflow_run_id": st.run_id,
            "dagster_run_id": self.dagster_run_id or "",
            "offsets": {str(p): o for p, o in learner.progress.offsets.items()},
        }
        st.drifts += 1
        telemetry.LEARNER_DRIFTS.labels(self.uc).inc()
        publisher.add_drift(record)
        recorder.add_metrics(step.drift.events_learned, {"drift_detected": 1.0})
        recorder.set_tag("coelho.last_drift", json.dumps(record, default=str))
        self._say(f"{self.uc}: drift detected at {step.drift.events_learned} events: {record}")

    def _promoted(
        self, step: Step, learner: Learner, publisher: RedisPublisher, recorder: MlflowRecorder
    ) -> None:
        assert step.promotion is not None
        promotions.record_promotion(self.uc, step.promotion, learner, publisher, recorder)
        self._say(f"{self.uc}: promoted {step.promotion.to_dict()}")

    def _metrics(self, learner: Learner, recorder: MlflowRecorder, st: _LoopState) -> None:
        progress = learner.progress
        values = learner.metric_scalars()
        values["bad_events"] = float(progress.bad_events)
        recorder.add_metrics(progress.events_learned, values)
        st.metrics_at = progress.events_learned
        promotions.update_gauges(self.uc, learner)
        primary = values.get(self.spec.river_primary.name)
        if primary is not None:
            telemetry.LEARNER_PRIMARY_METRIC.labels(self.uc, self.spec.river_primary.name).set(
                primary
            )

    def _light_payload(self, learner: Learner, state: str) -> dict[str, Any]:
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
                "snapshot_events": self.snapshot.events_learned if self.snapshot else 0,
            },
        }

    def _tick(
        self,
        learner: Learner,
        reader: Any,
        publisher: RedisPublisher,
        recorder: MlflowRecorder,
        st: _LoopState,
        now: float,
    ) -> None:
        """Once a second: throughput, Redis metrics, durable snapshots."""
        progress = learner.progress
        elapsed = now - st.tick_at if st.tick_at else 0.0
        learned = progress.events_learned - st.tick_events
        if learned:
            telemetry.LEARNER_EVENTS.labels(self.uc).inc(learned)
            if elapsed > 0:
                telemetry.LEARNER_EVENTS_PER_SECOND.labels(self.uc).set(learned / elapsed)
        st.tick_at, st.tick_events = now, progress.events_learned
        if progress.events_learned != st.light_events:
            publisher.offer_light(self._light_payload(learner, live_store.LIVE))
            st.light_events = progress.events_learned
        self._durable(reader, publisher, recorder, st)

    def _durable(
        self, reader: Any, publisher: RedisPublisher, recorder: MlflowRecorder, st: _LoopState
    ) -> None:
        for info in recorder.take_durable():
            self.snapshot = info
            st.snapshots += 1
            publisher.offer_status(snapshot_events=info.events_learned)
            if self.learner is not None:
                promotions.record_leaderboard(self.learner, recorder)
            try:
                reader.commit(info.offsets)
            except Exception:  # noqa: BLE001 - the snapshot holds the offsets anyway
                telemetry.LEARNER_ERRORS.labels(self.uc, "kafka").inc()
            if self.hooks.on_snapshot:
                assert self.learner is not None
                self.hooks.on_snapshot(info, self.learner.metric_scalars())

    # ------------------------------------------------------------------ captures

    def _maybe_capture(
        self,
        learner: Learner,
        reader: Any,
        publisher: RedisPublisher,
        recorder: MlflowRecorder,
        capturer: Capturer,
        st: _LoopState,
        now: float,
    ) -> None:
        s = self.settings
        events = learner.events_learned
        if st.in_flight is not None or (
            events - st.snapshot_events < s.snapshot_every
            and now - st.publish_at < s.publish_interval_seconds
        ):
            return  # a capture is running, or neither a snapshot nor a publish can be due
        since_publish = events - st.publish_events
        snapshot_due = (
            snapshot_due_by_schedule(events - st.snapshot_events, now - st.snapshot_at, s)
            and not recorder.snapshot_pending
        )
        publish_due = (
            not snapshot_due
            and since_publish > 0
            and (since_publish >= s.publish_every or reader.at_head)
            and now - st.publish_at
            >= max(s.publish_interval_seconds, st.last_cost / s.publish_budget)
            and not publisher.model_pending
        )
        if snapshot_due or publish_due:
            self._capture(learner, publisher, recorder, capturer, st, snapshot_due)

    def _capture(
        self,
        learner: Learner,
        publisher: RedisPublisher,
        recorder: MlflowRecorder,
        capturer: Capturer,
        st: _LoopState,
        snapshot: bool,
        mode: CaptureMode | None = None,
    ) -> Capture:
        capture = capturer.capture(learner.bundle, learner.progress, snapshot, mode)
        st.captures += 1
        st.capture_blocking += capture.blocking_seconds
        if not snapshot:  # a snapshot also pickles every candidate: its own schedule budgets it
            st.last_cost = capture.blocking_seconds
        st.publish_at = capture.started
        st.publish_events = capture.events_learned
        if snapshot:
            st.snapshot_events = capture.events_learned
            st.snapshot_at = capture.started
        st.in_flight = capture

        def dispatch() -> None:
            try:
                ok = capture.wait()
            except ChildProcessError as exc:
                ok, capture.error = False, repr(exc)
            if ok:
                if not snapshot and capture.pid is not None and capture.pickle_seconds is not None:
                    # The child's pickling competes for CPU with learning: budget it too.
                    st.last_cost = capture.blocking_seconds + capture.pickle_seconds
                capture.retain(2 if snapshot else 1)
                publisher.offer_model(capture)
                if snapshot:
                    recorder.add_snapshot(capture)
            else:
                telemetry.LEARNER_ERRORS.labels(self.uc, "capture").inc()
                log.warning("state capture failed: %s", capture.error)
                capture.retain()
                capture.release()
                if snapshot:
                    st.snapshot_events = -self.settings.snapshot_every  # retry soon
                    st.snapshot_at = -1e9
            st.in_flight = None

        if capture.pid is None:
            dispatch()
        else:
            threading.Thread(target=dispatch, name="coelho-capture", daemon=True).start()
        return capture

    # ------------------------------------------------------------------ the end

    def _finish(
        self,
        learner: Learner,
        reader: Any,
        publisher: RedisPublisher,
        recorder: MlflowRecorder,
        capturer: Capturer,
        st: _LoopState,
        reason: str,
    ) -> None:
        s = self.settings
        deadline = time.monotonic() + s.final_flush_seconds
        while st.in_flight is not None and time.monotonic() < deadline:
            time.sleep(0.01)  # the dispatch thread is waiting for the capture child
        durable = self.snapshot.events_learned if self.snapshot else 0
        # After an error or an asynchronous interrupt the last event may be half learned:
        # no final snapshot then; the next run resumes from the last good one.
        clean = reason not in ("error", "interrupted")
        if clean and learner.events_learned > 0 and learner.events_learned != durable:
            self._capture(learner, publisher, recorder, capturer, st, True, mode="inline")
        if learner.events_learned != st.metrics_at:
            self._metrics(learner, recorder, st)
        publisher.offer_light(self._light_payload(learner, live_store.FINISHED))
        publisher.offer_status(state=live_store.FINISHED, stop_reason=reason)
        recorder_ok = recorder.flush(s.final_flush_seconds)
        self._durable(reader, publisher, recorder, st)
        if not recorder_ok:
            self._say(f"{self.uc}: MLflow did not take the final snapshot in time")
        if not publisher.flush(min(30.0, s.final_flush_seconds)):
            self._say(f"{self.uc}: Redis unavailable at the end; live model not updated")
        try:
            recorder.store.finish(st.run_id)
        except Exception as exc:  # noqa: BLE001 - the run stays RUNNING in MLflow, harmless
            telemetry.LEARNER_ERRORS.labels(self.uc, "mlflow").inc()
            self._say(f"{self.uc}: could not mark the MLflow run finished: {exc}")
        self._say(
            f"{self.uc}: learner stopped ({reason}) at {learner.events_learned} events, "
            f"snapshot at {self.snapshot.events_learned if self.snapshot else 0}"
        )

    def _summary(
        self,
        learner: Learner,
        st: _LoopState,
        reason: str,
        publisher: RedisPublisher,
        recorder: MlflowRecorder,
        store: SnapshotStore,
    ) -> RunSummary:
        return RunSummary(
            stop_reason=reason,
            events_learned=learner.events_learned,
            events_this_run=learner.events_learned - st.resumed_from,
            bad_events=learner.progress.bad_events,
            snapshot=self.snapshot,
            mlflow_run_id=st.run_id,
            metrics=learner.metric_scalars(),
            seconds=time.monotonic() - st.started,
            learning_seconds=st.learning_seconds,
            capture_blocking_seconds=st.capture_blocking,
            captures=st.captures,
            drifts=st.drifts,
            redis_failures=publisher.failures,
            mlflow_failures=recorder.failures,
            resumed_from=st.resumed_from,
        )


@dataclass
class _LoopState:
    run_id: str
    resumed_from: int
    started: float = field(default_factory=time.monotonic)
    last_event_at: float = 0.0
    learning_seconds: float = 0.0
    metrics_at: int = 0
    tick_at: float = 0.0
    tick_events: int = 0
    light_events: int = -1
    publish_at: float = -1e9
    publish_events: int = 0
    snapshot_events: int = 0
    snapshot_at: float = -1e9  # monotonic time of the last snapshot capture
    last_cost: float = 0.0  # last publish capture: learning-thread blocking + child's pickling
    capture_blocking: float = 0.0
    captures: int = 0
    snapshots: int = 0
    drifts: int = 0
    in_flight: Capture | None = None

    def __post_init__(self) -> None:
        self.metrics_at = self.resumed_from
        self.tick_events = self.resumed_from
        self.publish_events = self.resumed_from
        self.snapshot_events = self.resumed_from
