"""Declarative automation of `<uc>/features`: today's and yesterday's partitions kept fresh.

Continuous ingestion records a `<uc>/raw_events` materialization every 30-60 s; rebuilding a
day's features on each would start a run process that often. So a partition is requested
on a cadence (`FEATURES_CRON`, every 5 minutes) and only when raw events arrived since it
was last requested or built:
- today's partition on every cadence tick with new raw events;
- yesterday's once more after the day has closed (`CLOSE_CRON`, a few minutes after
  midnight UTC, so late events are in), or when it is missing (e.g. the platform was down
  at midnight); afterwards it is final (the daily schedule may rebuild it as before).
Never while a run of that partition is in progress. Two partitions requested on one tick
make one ranged run (the asset's single-run backfill policy).

`<uc>_features_automation` evaluates the condition (in the daemon: no run, no process per
tick) and is running by default.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from coelho_pipelines.batch.lineage import FEATURES, asset_key, batch_tags
from coelho_pipelines.naming import features_automation_sensor_name
from coelho_pipelines.use_cases.spec import UseCaseSpec

FEATURES_CRON = "*/5 * * * *"
CLOSE_CRON = "3 0 * * *"  # yesterday's final build, 3 minutes after midnight UTC
EVALUATION_INTERVAL_SECONDS = 60


def features_condition() -> dg.AutomationCondition:
    """When a `<uc>/features` partition is requested (see the module docstring)."""
    today = dg.AutomationCondition.in_latest_time_window()
    recent = dg.AutomationCondition.in_latest_time_window(timedelta(days=2))
    due = dg.AutomationCondition.cron_tick_passed(FEATURES_CRON, "UTC").since_last_handled()
    new_data = dg.AutomationCondition.any_deps_updated().since_last_handled()
    closing = (
        dg.AutomationCondition.missing()
        | dg.AutomationCondition.cron_tick_passed(CLOSE_CRON, "UTC").since_last_handled()
    )
    return (
        recent
        & due.with_label(f"cadence {FEATURES_CRON}")
        & new_data.with_label("new raw events")
        & (today | (~today & closing).with_label("yesterday, not built since it closed"))
        & ~dg.AutomationCondition.in_progress()
    ).with_label("features: today on a cadence, yesterday once closed")


def build_features_automation_sensor(spec: UseCaseSpec) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        features_automation_sensor_name(spec),
        target=dg.AssetSelection.assets(asset_key(spec, FEATURES)),
        run_tags=batch_tags(spec),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=EVALUATION_INTERVAL_SECONDS,
        description=f"Keeps today's and yesterday's {spec.key}/features partitions fresh "
        f"(cadence {FEATURES_CRON} while raw events arrive; yesterday once after midnight).",
    )
