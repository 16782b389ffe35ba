"""The sensor of the incremental learner:

- `<uc>_incremental_learning_sensor`, the real-time training switch, a keeper (`keeper.py`):
  while it is on, it keeps one long-lived learner run alive for that use case (launches one
  when none is queued, starting, running or canceling, renews its lease, replaces one whose
  process died). Off by default: turning it on in the UI starts real-time training; turning it off
  stops renewing the lease, so the learner snapshots and ends within a lease.

The learner's drift records lead to retraining through `batch/drift_retraining.py`.
"""

import dagster as dg

from coelho_pipelines.keeper import (
    ACTIVE_STATUSES,
    DEFAULT_POLICY,
    KeeperPolicy,
    build_keeper_sensor,
)
from coelho_pipelines.naming import (
    incremental_sensor_name,
)
from coelho_pipelines.use_cases.spec import UseCaseSpec

SWITCH_INTERVAL_SECONDS = DEFAULT_POLICY.interval_seconds


def active_runs(instance: dg.DagsterInstance, job: str) -> list[dg.DagsterRun]:
    return list(
        instance.get_runs(
            filters=dg.RunsFilter(job_name=job, statuses=list(ACTIVE_STATUSES)), limit=1
        )
    )


def build_learning_sensor(
    spec: UseCaseSpec, job: dg.JobDefinition, policy: KeeperPolicy = DEFAULT_POLICY
) -> dg.SensorDefinition:
    """The switch `<uc>_incremental_learning_sensor`, keeping `job` (the use case's learning
    job) running and launching its runs with the job's tags."""
    return build_keeper_sensor(
        incremental_sensor_name(spec),
        job,
        tags=dict(job.tags),
        policy=policy,
        description=(
            f"Real-time training switch for {spec.key}: while on, keeps one long-lived "
            f"`{job.name}` run learning (replaced if it dies); off, it ends within "
            f"{policy.lease_seconds:.0f}s."
        ),
    )
