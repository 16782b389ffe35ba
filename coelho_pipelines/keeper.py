"""A long-running run kept alive by a sensor: continuous ingestion and the learner switch.

Sensor side: a keeper sensor (the on/off switch in the UI) looks at the active runs of its job
every few seconds and, through the pure `decide`,
- launches a run when none is active (its tags carry a first lease),
- renews the lease of the oldest active run (`coelho/lease_until`, epoch seconds),
- reports a run whose heartbeat stopped (its process died, e.g. kill -9, and the run stays
  STARTED) as failed and launches a replacement,
- renews only one run when several are active, so the others' leases lapse and they end.

Run side: `RunControl` is what the run's loop asks whether to stop: on SIGTERM/SIGINT (Dagster
termination) or once its lease has expired. It also writes `coelho/heartbeat` every few seconds
on a daemon thread. A run without a lease tag (launched by hand or headless) never expires. When
the switch is turned off nothing renews the lease, so the run ends itself within a lease.
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dagster as dg

from coelho_pipelines.naming import IN_FLIGHT_STATUSES

T = TypeVar("T")
_DONE = object()
LEASE_TAG = "coelho/lease_until"
HEARTBEAT_TAG = "coelho/heartbeat"
KEEPER_TAG = "coelho/keeper"
ACTIVE_STATUSES = tuple(dg.DagsterRunStatus(status) for status in IN_FLIGHT_STATUSES)
# Only runs whose process should be alive can be stale; a queued run waits for a slot.
_RUNNING = {dg.DagsterRunStatus.STARTED.value, dg.DagsterRunStatus.CANCELING.value}


@dataclass(frozen=True)
class KeeperPolicy:
    """Timings of a keeper: the sensor interval, the lease it grants, heartbeats and staleness.

    The lease spans several sensor intervals so a late tick does not end a healthy run; a run
    is stale when neither a heartbeat nor its start happened within `stale_seconds`.
    """

    interval_seconds: int = 10
    lease_seconds: float = 45.0
    heartbeat_seconds: float = 10.0
    stale_seconds: float = 90.0
    lease_check_seconds: float = 5.0


DEFAULT_POLICY = KeeperPolicy()


@dataclass(frozen=True)
class RunState:
    """What `decide` needs of one active run (times in epoch seconds)."""

    run_id: str
    status: str
    created_at: float
    started_at: float | None = None
    heartbeat: float | None = None
    kept: bool = False  # launched by this keeper

    def last_sign_of_life(self) -> float:
        """The last heartbeat, else the start, else the creation."""
        for moment in (self.heartbeat, self.started_at):
            if moment is not None:
                return moment
        return self.created_at

    def stale(self, now: float, policy: KeeperPolicy) -> bool:
        """A running run that should heartbeat (kept, or it did once) and has gone quiet."""
        if self.status not in _RUNNING or not (self.kept or self.heartbeat is not None):
            return False
        return now - self.last_sign_of_life() > policy.stale_seconds


@dataclass(frozen=True)
class KeeperDecision:
    """One tick: whether to launch, whose lease to renew, which dead runs to report failed."""

    launch: bool
    renew: tuple[str, ...] = ()
    fail: tuple[str, ...] = ()
    reason: str = ""


def decide(
    runs: Sequence[RunState], now: float, policy: KeeperPolicy = DEFAULT_POLICY
) -> KeeperDecision:
    """Pure logic of one keeper tick over the job's active runs."""
    dead = tuple(r.run_id for r in runs if r.stale(now, policy))
    live = sorted((r for r in runs if r.run_id not in dead), key=lambda r: r.created_at)
    died = f"run(s) {', '.join(dead)} stopped heartbeating: reported failed; " if dead else ""
    if not live:
        return KeeperDecision(True, fail=dead, reason=f"{died}no active run: launching one")
    oldest, others = live[0], live[1:]
    extra = f"; not renewing {', '.join(r.run_id for r in others)}" if others else ""
    status = oldest.status.lower()
    if oldest.status == dg.DagsterRunStatus.CANCELING.value:
        return KeeperDecision(False, (), dead, f"{died}run {oldest.run_id} is canceling{extra}")
    if not oldest.kept:
        reason = f"{died}run {oldest.run_id} ({status}, not started by this switch) is active"
        return KeeperDecision(False, (), dead, reason + extra)
    reason = f"{died}run {oldest.run_id} is {status}: lease renewed{extra}"
    return KeeperDecision(False, (oldest.run_id,), dead, reason)


def _float_tag(tags: Mapping[str, str], key: str) -> float | None:
    try:
        return float(tags[key])
    except (KeyError, ValueError):
        return None


def run_state(record: Any, keeper: str) -> RunState:
    """A RunState from a Dagster RunRecord."""
    run = record.dagster_run
    return RunState(
        run_id=run.run_id,
        status=run.status.value,
        created_at=record.create_timestamp.timestamp(),
        started_at=record.start_time,
        heartbeat=_float_tag(run.tags, HEARTBEAT_TAG),
        kept=run.tags.get(KEEPER_TAG) == keeper,
    )


def keep_alive(
    instance: dg.DagsterInstance,
    keeper: str,
    job_name: str,
    tags: Mapping[str, str],
    run_config: Mapping[str, Any] | None = None,
    policy: KeeperPolicy = DEFAULT_POLICY,
    now: float | None = None,
) -> dg.RunRequest | dg.SkipReason:
    """One keeper tick against the instance: report dead runs, renew a lease, or launch."""
    now = time.time() if now is None else now
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=job_name, statuses=list(ACTIVE_STATUSES)), limit=20
    )
    by_id = {r.dagster_run.run_id: r.dagster_run for r in records}
    decision = decide([run_state(r, keeper) for r in records], now, policy)
    for run_id in decision.fail:
        instance.report_run_failed(
            by_id[run_id],
            message=f"{keeper}: no heartbeat for over {policy.stale_seconds:.0f}s (process gone)",
        )
    lease = {LEASE_TAG: f"{now + policy.lease_seconds:.0f}"}
    for run_id in decision.renew:
        instance.add_run_tags(run_id, lease)
    if not decision.launch:
        return dg.SkipReason(decision.reason)
    return dg.RunRequest(
        run_config=dict(run_config or {}), tags={**tags, KEEPER_TAG: keeper, **lease}
    )


def build_keeper_sensor(
    name: str,
    job: Any,
    tags: Mapping[str, str],
    description: str,
    run_config: Mapping[str, Any] | None = None,
    policy: KeeperPolicy = DEFAULT_POLICY,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    required_resource_keys: set[str] | None = None,
) -> dg.SensorDefinition:
    """A sensor that keeps one run of `job` alive while it is on (see the module docstring)."""

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=policy.interval_seconds,
        default_status=default_status,
        description=description,
        required_resource_keys=required_resource_keys,
    )
    def keeper(context: dg.SensorEvaluationContext):
        return keep_alive(context.instance, name, job.name, tags, run_config, policy)

    return keeper


# ---------------------------------------------------------------------------------- run side


class RunLease:
    """Whether this run's lease has expired, re-reading its tags at most every few seconds.

    No lease tag (launched by hand, headless) never expires; an unreadable run neither.
    """

    def __init__(
        self,
        instance: dg.DagsterInstance,
        run_id: str,
        check_seconds: float = DEFAULT_POLICY.lease_check_seconds,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.instance = instance
        self.run_id = run_id
        self.check_seconds = check_seconds
        self.clock = clock
        self._checked_at = float("-inf")
        self._until: float | None = None

    def until(self) -> float | None:
        now = self.clock()
        if now - self._checked_at >= self.check_seconds:
            self._checked_at = now
            with contextlib.suppress(Exception):  # storage hiccup: keep the last known lease
                run = self.instance.get_run_by_id(self.run_id)
                self._until = _float_tag(run.tags, LEASE_TAG) if run is not None else None
        return self._until

    def expired(self) -> bool:
        until = self.until()
        return until is not None and self.clock() > until


class Heartbeat:
    """A daemon thread setting `coelho/heartbeat` (epoch seconds) on the run every N seconds."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        run_id: str,
        every_seconds: float = DEFAULT_POLICY.heartbeat_seconds,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.instance = instance
        self.run_id = run_id
        self.every_seconds = every_seconds
        self.log = log
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="coelho-heartbeat", daemon=True)

    def beat(self) -> None:
        try:
            self.instance.add_run_tags(self.run_id, {HEARTBEAT_TAG: f"{time.time():.0f}"})
            self.beats += 1
        except Exception as error:  # noqa: BLE001 - a missed beat is not worth ending the run
            if self.log is not None:
                self.log(f"heartbeat failed: {error}")

    def _loop(self) -> None:
        while not self._stop.wait(self.every_seconds):
            self.beat()

    def start(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM set `stop` instead of raising (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in signals}
    for s in signals:
        signal.signal(s, lambda _signo, _frame: stop.set())
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@dataclass
class RunControl:
    """The run side of a keeper: heartbeat while inside, stop on a signal or an expired lease.

    Use as a context manager in the op (main thread), then poll `should_stop()` from the loop.
    `instance`/`run_id` may be None (headless: only signals stop it).
    """

    instance: dg.DagsterInstance | None
    run_id: str | None
    policy: KeeperPolicy = DEFAULT_POLICY
    log: Callable[[str], None] | None = None
    signalled: threading.Event = field(default_factory=threading.Event)
    lease_expired: bool = False
    _lease: RunLease | None = None
    _heartbeat: Heartbeat | None = None
    _signals: Any = None

    def should_stop(self) -> bool:
        if self.signalled.is_set():
            return True
        if self._lease is not None and not self.lease_expired and self._lease.expired():
            self.lease_expired = True
            if self.log is not None:
                self.log("lease expired (the keeper sensor is off or gone): stopping")
        return self.lease_expired

    @property
    def stop_reason(self) -> str | None:
        if self.signalled.is_set():
            return "signal"
        return "lease expired" if self.lease_expired else None

    def __enter__(self) -> RunControl:
        if self.instance is not None and self.run_id is not None:
            self._lease = RunLease(self.instance, self.run_id, self.policy.lease_check_seconds)
            self._heartbeat = Heartbeat(
                self.instance, self.run_id, self.policy.heartbeat_seconds, self.log
            ).start()
        self._signals = stop_on_signals(self.signalled)
        self._signals.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._signals.__exit__(*exc)
        if self._heartbeat is not None:
            self._heartbeat.stop()


def stream_from_worker(
    work: Callable[[Callable[[Any], None]], T], control: RunControl, name: str = "coelho-work"
) -> Generator[Any, None, T]:
    """Run `work(emit)` on a worker thread and yield what it emits, as it comes, from the calling
    (main) thread; return what `work` returns, or raise what it raised.

    For a Dagster generator op: Dagster emits an op's events only when it yields, and while the
    op yields Dagster's own SIGINT/SIGTERM handler is in place and raises an interrupt in the
    main thread. Here that interrupt lands in this waiting loop: it sets `control.signalled`, the
    worker (polling `control.should_stop`) finishes gracefully, and its last events still come.
    """
    events: queue.Queue[Any] = queue.Queue()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work(events.put)
        except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread
            outcome["error"] = error
        finally:
            events.put(_DONE)

    def stop_at_exit() -> None:
        """Dagster can raise its interrupt outside this generator (while it handles an event)
        and drop the op; the process then exits: stop the work and let it finish first."""
        if worker.is_alive():
            if control.log is not None:
                control.log("interrupted outside the op: stopping the work gracefully before exit")
            control.signalled.set()
            worker.join(timeout=300)

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    atexit.register(stop_at_exit)
    try:
        while True:
            try:
                item = events.get(timeout=1.0)
                if item is _DONE:
                    break
                yield item
            except queue.Empty:
                continue
            except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
                control.signalled.set()
    finally:
        if worker.is_alive():  # torn down from outside: stop the work, let it finish
            control.signalled.set()
        worker.join()
        atexit.unregister(stop_at_exit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
