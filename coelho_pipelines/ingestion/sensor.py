"""`<uc>_ingestion_sensor`: the switch of continuous ingestion, a keeper (see `keeper.py`).

While it is on, it keeps one run of `<uc>_ingestion` in continuous mode alive for the use
case: it launches one when none is active, renews its lease every tick, and replaces a run whose
process died. Turned off, it renews nothing and the run ends itself within a lease. A bounded
run of the same job launched by hand is waited for (never two writers on purpose).
"""

from typing import Any

import dagster as dg

from coelho_pipelines.ingestion.assets import ingestion_tags
from coelho_pipelines.keeper import DEFAULT_POLICY, KeeperPolicy, build_keeper_sensor
from coelho_pipelines.naming import ingestion_op_name, ingestion_sensor_name
from coelho_pipelines.use_cases.spec import UseCaseSpec

MODE_TAG = "coelho/ingestion_mode"


def continuous_run_config(spec: UseCaseSpec) -> dict[str, Any]:
    return {"ops": {ingestion_op_name(spec): {"config": {"continuous": True}}}}


def build_ingestion_sensor(
    spec: UseCaseSpec, job: Any, policy: KeeperPolicy = DEFAULT_POLICY
) -> dg.SensorDefinition:
    return build_keeper_sensor(
        ingestion_sensor_name(spec),
        job,
        tags={**ingestion_tags(spec), MODE_TAG: "continuous"},
        run_config=continuous_run_config(spec),
        policy=policy,
        description=(
            f"Continuous ingestion switch for {spec.key}: while on, keeps one `{job.name}` run "
            f"consuming `{spec.topic}` into Delta (commits every ~2 s); off, the run ends within "
            f"{policy.lease_seconds:.0f}s."
        ),
    )
