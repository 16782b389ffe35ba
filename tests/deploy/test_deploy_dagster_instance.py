"""The Kubernetes `dagster.yaml` validates against Dagster's instance schema, each configurable
class accepts its config, and it agrees with the Dagster chart values it is rendered from."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import kubernetes
import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import class_from_code_pointer
from deploy_helpers import CHART, ROOT

from coelho_pipelines.naming import BATCH, INCREMENTAL, INGESTION, KIND_TAG

INSTANCE = ROOT / "helm" / "dagster" / "dagster-k8s.yaml"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
DAGSTER = VALUES["dagster"]
CLASSES = (
    "run_launcher",
    "run_coordinator",
    "run_storage",
    "event_log_storage",
    "schedule_storage",
    "compute_logs",
    "scheduler",
)


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(INSTANCE, Path(home) / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(home))
    assert custom_class is None
    return config


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def snake_keys(value):
    if isinstance(value, dict):
        return {snake(k): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


@pytest.mark.parametrize("key", CLASSES)
def test_each_configurable_class_accepts_its_config(instance: dict, key: str) -> None:
    section = instance[key]
    klass = class_from_code_pointer(section["module"], section["class"])
    result = validate_config(klass.config_type(), section.get("config") or {})
    assert result.success, [error.message for error in result.errors]


def test_the_instance_uses_postgres_and_the_k8s_run_launcher(instance: dict) -> None:
    assert instance["run_launcher"]["class"] == "K8sRunLauncher"
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    for key in ("run_storage", "event_log_storage", "schedule_storage"):
        assert instance[key]["module"].startswith("dagster_postgres."), key
        database = instance[key]["config"]["postgres_db"]
        assert database["password"] == {"env": "DAGSTER_PG_PASSWORD"}, "no password in the file"
        assert database["hostname"] == DAGSTER["postgresql"]["postgresqlHost"]
        assert database["username"] == DAGSTER["postgresql"]["postgresqlUsername"]
        assert database["db_name"] == DAGSTER["postgresql"]["postgresqlDatabase"]
    assert (
        instance["run_launcher"]["config"]["postgres_password_secret"]
        == (VALUES["global"]["postgresqlSecretName"])
    )


def test_run_launcher_matches_the_chart_values(instance: dict) -> None:
    launcher = instance["run_launcher"]["config"]
    values = DAGSTER["runLauncher"]["config"]["k8sRunLauncher"]
    assert DAGSTER["runLauncher"]["type"] == "K8sRunLauncher"
    assert set(launcher["env_config_maps"]) >= {c["name"] for c in values["envConfigMaps"]}
    assert launcher["env_secrets"] == [s["name"] for s in values["envSecrets"]]
    assert launcher["labels"] == values["labels"]
    assert launcher["resources"] == values["resources"]
    assert launcher["fail_pod_on_run_failure"] is values["failPodOnRunFailure"] is True
    assert launcher["run_k8s_config"] == snake_keys(values["runK8sConfig"])


def test_run_k8s_config_builds_valid_kubernetes_objects(instance: dict) -> None:
    from dagster_k8s.models import k8s_model_from_dict

    run_config = instance["run_launcher"]["config"]["run_k8s_config"]
    container = k8s_model_from_dict(
        kubernetes.client.V1Container, {"name": "dagster", **run_config["container_config"]}
    )
    assert container.ports[0].container_port == VALUES["runs"]["metricsPort"]
    pod = k8s_model_from_dict(
        kubernetes.client.V1PodSpec, {"containers": [], **run_config["pod_spec_config"]}
    )
    assert pod.security_context.run_as_non_root is True


def test_run_coordinator_matches_the_chart_and_keeps_slots_for_each_kind(instance: dict) -> None:
    config = instance["run_coordinator"]["config"]
    values = DAGSTER["dagsterDaemon"]["runCoordinator"]
    assert values["enabled"] is True and values["type"] == "QueuedRunCoordinator"
    queued = values["config"]["queuedRunCoordinator"]
    assert config["max_concurrent_runs"] == queued["maxConcurrentRuns"]
    assert config["tag_concurrency_limits"] == queued["tagConcurrencyLimits"]
    limits = {
        (limit["key"], limit["value"]): limit["limit"]
        for limit in config["tag_concurrency_limits"]
        if limit["key"] == KIND_TAG
    }
    assert set(limits) == {(KIND_TAG, INCREMENTAL), (KIND_TAG, INGESTION), (KIND_TAG, BATCH)}
    # Even with every learner and batch run going, ingestion still gets all its slots.
    assert sum(limits.values()) <= config["max_concurrent_runs"]


def test_run_monitoring_matches_the_chart(instance: dict) -> None:
    monitoring = instance["run_monitoring"]
    values = DAGSTER["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is values["enabled"] is True
    for key, value in values.items():
        assert monitoring[snake(key)] == value, key
    assert VALUES["runs"]["learnerMaxRuntimeSeconds"] > 0
    assert instance["sensors"] == snake_keys(DAGSTER["dagsterDaemon"]["sensors"])
    assert instance["schedules"] == snake_keys(DAGSTER["dagsterDaemon"]["schedules"])
    assert instance["telemetry"] == DAGSTER["telemetry"]


def test_the_schema_rejects_a_broken_instance(tmp_path: Path) -> None:
    from dagster._core.errors import DagsterInvalidConfigError

    broken = yaml.safe_load(INSTANCE.read_text())
    broken["run_monitoring"]["max_runtime"] = 10  # the field is max_runtime_seconds
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))
