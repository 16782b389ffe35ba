"""The run queue allows one learner per use case, in every instance config we ship (local
dagster.yaml, the Kubernetes dagster.yaml and the Helm values), checked with Dagster's own
tag-limit counter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterRun
from dagster._utils.tags import TagConcurrencyLimitsCounter

from coelho_pipelines.incremental.job import run_tags
from coelho_pipelines.naming import incremental_job_name
from coelho_pipelines.use_cases import get_spec

ROOT = Path(__file__).resolve().parents[2]


def _local() -> list[dict[str, Any]]:
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    return config["run_coordinator"]["config"]["tag_concurrency_limits"]


def _kubernetes() -> list[dict[str, Any]]:
    config = yaml.safe_load((ROOT / "helm/dagster/dagster-k8s.yaml").read_text())
    return config["run_coordinator"]["config"]["tag_concurrency_limits"]


def _helm_values() -> list[dict[str, Any]]:
    values = yaml.safe_load((ROOT / "helm/coelho/values.yaml").read_text())
    coordinator = values["dagster"]["dagsterDaemon"]["runCoordinator"]["config"]
    return coordinator["queuedRunCoordinator"]["tagConcurrencyLimits"]


def _learner_run(key: str, run_id: str) -> DagsterRun:
    spec = get_spec(key)
    return DagsterRun(job_name=incremental_job_name(spec), run_id=run_id, tags=run_tags(spec))


@pytest.mark.parametrize("limits", [_local, _kubernetes, _helm_values], ids=lambda f: f.__name__)
def test_one_learner_per_use_case_in_the_run_queue(limits) -> None:
    counter = TagConcurrencyLimitsCounter(limits(), [_learner_run("tfd", "running-tfd")])
    assert counter.is_blocked(_learner_run("tfd", "queued-tfd"))
    assert not counter.is_blocked(_learner_run("eta", "queued-eta"))
