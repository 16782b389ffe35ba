"""The keeper: a pure `decide`, the sensor tick against a real Dagster instance, the lease."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from coelho_pipelines.ingestion.assets import build_ingestion_asset, build_ingestion_job
from coelho_pipelines.ingestion.sensor import build_ingestion_sensor, continuous_run_config
from coelho_pipelines.keeper import (
    HEARTBEAT_TAG,
    KEEPER_TAG,
    LEASE_TAG,
    KeeperPolicy,
    RunControl,
    RunLease,
    RunState,
    decide,
)
from coelho_pipelines.naming import KIND_TAG, ingestion_sensor_name
from coelho_pipelines.resources import KafkaResource, LakehouseResource
from coelho_pipelines.use_cases import get_spec

POLICY = KeeperPolicy(interval_seconds=5, lease_seconds=15, heartbeat_seconds=5, stale_seconds=60)
NOW = 1_000_000.0
STARTED = dg.DagsterRunStatus.STARTED.value


def _run(run_id: str, created: float, status: str = STARTED, **kw) -> RunState:
    return RunState(run_id, status, created_at=NOW - created, **kw)


# ------------------------------------------------------------------------- pure decide


def test_decide_launches_when_nothing_is_active() -> None:
    decision = decide([], NOW, POLICY)
    assert decision.launch and decision.renew == () and decision.fail == ()


def test_decide_renews_a_live_kept_run_whatever_its_status() -> None:
    for status in ("QUEUED", "NOT_STARTED", "STARTING", STARTED):
        run = _run("a", 5, status, started_at=None, heartbeat=NOW - 3, kept=True)
        decision = decide([run], NOW, POLICY)
        assert not decision.launch and decision.renew == ("a",), status
        assert "lease renewed" in decision.reason


def test_decide_reports_a_silent_run_failed_and_replaces_it() -> None:
    dead = _run("dead", 600, started_at=NOW - 590, heartbeat=NOW - 61, kept=True)
    decision = decide([dead], NOW, POLICY)
    assert decision.launch and decision.fail == ("dead",) and decision.renew == ()
    # a kept run that never heartbeat after it started is dead too
    mute = _run("mute", 600, started_at=NOW - 500, heartbeat=None, kept=True)
    assert decide([mute], NOW, POLICY).fail == ("mute",)
    # ... but not while it is only queued, however long
    queued = _run("q", 6000, "QUEUED", kept=True)
    assert decide([queued], NOW, POLICY).fail == ()


def test_decide_keeps_the_oldest_of_several_and_lets_the_others_lapse() -> None:
    old = _run("old", 300, started_at=NOW - 290, heartbeat=NOW - 2, kept=True)
    new = _run("new", 30, started_at=NOW - 25, heartbeat=NOW - 1, kept=True)
    decision = decide([new, old], NOW, POLICY)
    assert decision.renew == ("old",) and not decision.launch
    assert "new" in decision.reason


def test_decide_waits_for_runs_it_did_not_start_and_for_canceling_ones() -> None:
    by_hand = _run("hand", 900, started_at=NOW - 900)  # no heartbeat, no keeper tag
    decision = decide([by_hand], NOW, POLICY)
    assert not decision.launch and decision.renew == () and decision.fail == ()
    assert "hand" in decision.reason
    canceling = _run("c", 100, "CANCELING", started_at=NOW - 90, heartbeat=NOW - 1, kept=True)
    decision = decide([canceling], NOW, POLICY)
    assert not decision.launch and decision.renew == () and "canceling" in decision.reason
    # a hand-launched run that heartbeats (a continuous run) and went silent is dead
    silent = _run("s", 900, started_at=NOW - 900, heartbeat=NOW - 300)
    assert decide([silent], NOW, POLICY).fail == ("s",)


# ------------------------------------------------------- sensor tick on a Dagster instance


def _sensor_and_job():
    spec = get_spec("eta")
    asset = build_ingestion_asset(spec)
    job = build_ingestion_job(spec, asset)
    defs = dg.Definitions(
        assets=[asset],
        jobs=[job],
        sensors=[build_ingestion_sensor(spec, job, POLICY)],
        resources={
            "kafka": KafkaResource(bootstrap_servers="localhost:1"),
            "lakehouse": LakehouseResource(uri="/nonexistent"),
        },
    )
    sensor = defs.resolve_sensor_def(ingestion_sensor_name(spec))
    return spec, sensor, defs.resolve_job_def(job.name)


def _add_run(instance: dg.DagsterInstance, job_name: str, status, tags: dict) -> dg.DagsterRun:
    run = instance.add_run(dg.DagsterRun(job_name=job_name, status=status, tags=tags))
    return run


def test_sensor_keeps_one_run_and_replaces_a_dead_one() -> None:
    spec, sensor, job = _sensor_and_job()
    with dg.instance_for_test() as instance:
        first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        [request] = first.run_requests
        assert request.run_config == continuous_run_config(spec)
        assert request.tags[KEEPER_TAG] == ingestion_sensor_name(spec)
        assert request.tags[KIND_TAG] == "ingestion"
        assert float(request.tags[LEASE_TAG]) > time.time()

        # the requested run is running and heartbeating: renew its lease, launch nothing
        tags = {**request.tags, LEASE_TAG: f"{time.time() + 1:.0f}",
                HEARTBEAT_TAG: f"{time.time():.0f}"}  # fmt: skip
        run = _add_run(instance, job.name, dg.DagsterRunStatus.STARTED, tags)
        tick = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert tick.run_requests == [] and run.run_id in tick.skip_message
        lease = float(instance.get_run_by_id(run.run_id).tags[LEASE_TAG])
        assert lease >= time.time() + POLICY.lease_seconds - 2

        # a second one (e.g. started by a racing tick): only the older one is renewed
        late = _add_run(instance, job.name, dg.DagsterRunStatus.STARTED, tags)
        sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert float(instance.get_run_by_id(late.run_id).tags[LEASE_TAG]) < lease
        instance.report_run_failed(instance.get_run_by_id(late.run_id))

        # the process died: no heartbeat for longer than stale_seconds
        instance.add_run_tags(run.run_id, {HEARTBEAT_TAG: f"{time.time() - 3600:.0f}"})
        tick = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert len(tick.run_requests) == 1
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_sensor_waits_for_a_bounded_run_launched_by_hand() -> None:
    spec, sensor, job = _sensor_and_job()
    with dg.instance_for_test() as instance:
        run = _add_run(instance, job.name, dg.DagsterRunStatus.STARTED, {KIND_TAG: "x"})
        tick = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert tick.run_requests == [] and run.run_id in tick.skip_message
        assert LEASE_TAG not in instance.get_run_by_id(run.run_id).tags
        instance.report_run_failed(instance.get_run_by_id(run.run_id))
        tick = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert len(tick.run_requests) == 1


# ------------------------------------------------------------------------------ run side


def test_run_lease_expires_only_when_not_renewed() -> None:
    clock = [1000.0]
    with dg.instance_for_test() as instance:
        run = _add_run(instance, "job", dg.DagsterRunStatus.STARTED, {LEASE_TAG: "1010"})
        lease = RunLease(instance, run.run_id, check_seconds=5, clock=lambda: clock[0])
        assert not lease.expired()
        clock[0] = 1011.0
        assert lease.expired()
        instance.add_run_tags(run.run_id, {LEASE_TAG: "1100"})  # the keeper renewed it
        assert lease.expired()  # not re-read yet: at most every check_seconds
        clock[0] = 1017.0
        assert not lease.expired()
        hand = _add_run(instance, "job", dg.DagsterRunStatus.STARTED, {})
        assert not RunLease(instance, hand.run_id, clock=lambda: 10.0**12).expired()


def test_run_control_heartbeats_and_stops_on_lease_expiry() -> None:
    with dg.instance_for_test() as instance:
        lease = f"{time.time() + 3600:.0f}"
        run = _add_run(instance, "job", dg.DagsterRunStatus.STARTED, {LEASE_TAG: lease})
        policy = KeeperPolicy(heartbeat_seconds=0.2, lease_check_seconds=0.0)
        with RunControl(instance, run.run_id, policy) as control:
            assert not control.should_stop()
            deadline = time.monotonic() + 10
            while control._heartbeat.beats < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert control._heartbeat.beats >= 3
            assert float(instance.get_run_by_id(run.run_id).tags[HEARTBEAT_TAG]) > 0
            instance.add_run_tags(run.run_id, {LEASE_TAG: f"{time.time() - 1:.0f}"})
            assert control.should_stop() and control.stop_reason == "lease expired"
        assert not control._heartbeat._thread.is_alive()


@pytest.mark.parametrize("status", ["QUEUED", "NOT_STARTED", "STARTING", "STARTED"])
def test_a_renewed_run_never_counts_as_dead(status: str) -> None:
    run = _run("r", 10_000, status, started_at=NOW - 9_000, heartbeat=NOW - 1, kept=True)
    assert decide([run], NOW, POLICY).fail == ()
