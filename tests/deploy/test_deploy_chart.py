"""The umbrella chart renders for every values set, and every manifest is valid Kubernetes."""

from __future__ import annotations

import base64
import json
import subprocess

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import (
    ALL_DEPENDENCIES_OFF,
    CHART,
    K3D_VALUES,
    KUBE_VERSION,
    VARIANTS,
    RenderError,
    all_rules,
    chart_dependencies,
)

CUSTOM_RESOURCE_GROUPS = ("monitoring.coreos.com/",)
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
K3D = yaml.safe_load((CHART / "values-k3d.yaml").read_text())


def by_kind(manifests: list[dict], kind: str) -> dict[str, dict]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def pod_specs(manifests: list[dict]) -> dict[str, dict]:
    """Pod spec of every Deployment and Job, by workload name."""
    return {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]
        for m in manifests
        if m["kind"] in ("Deployment", "Job", "StatefulSet")
    }


def env_sources(manifests: list[dict]) -> dict[str, str]:
    """Every key of the coelho-env ConfigMap and Secret -> 'configmap' or 'secret'."""
    config_map = by_kind(manifests, "ConfigMap")["coelho-env"]["data"]
    secret = by_kind(manifests, "Secret")["coelho-env"]["stringData"]
    return {**dict.fromkeys(config_map, "configmap"), **dict.fromkeys(secret, "secret")}


# Rendering and schema validation ---------------------------------------------------------------


def test_every_dependency_sits_behind_its_enabled_condition() -> None:
    dependencies = chart_dependencies()
    assert {d["name"] for d in dependencies} == {
        "dagster",
        "kafka",
        "redis",
        "postgresql",
        "minio",
        "kube-prometheus-stack",
    }
    for dependency in dependencies:
        assert dependency["condition"] == f"{dependency['name']}.enabled"
        assert VALUES[dependency["name"]]["enabled"] is True
        assert dependency["repository"] and dependency["version"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_manifest_validates_against_the_kubernetes_schema(render, variant: str) -> None:
    manifests = render(*VARIANTS[variant])
    assert manifests, "nothing rendered"
    checked = 0
    for manifest in manifests:
        if manifest["apiVersion"].startswith(CUSTOM_RESOURCE_GROUPS):
            continue
        try:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            name = f"{manifest['kind']}/{manifest['metadata']['name']}"
            pytest.fail(f"{variant}: {name}: {error.message} at {list(error.path)}")
        checked += 1
    assert checked >= 10


def test_dependencies_off_still_renders_the_coelho_workloads(render) -> None:
    workloads = pod_specs(render(*ALL_DEPENDENCIES_OFF))
    assert {"coelho-api", "coelho-producers", "coelho-mlflow"} <= set(workloads)
    assert {"coelho-create-topics", "coelho-create-buckets"} <= set(workloads)


def test_the_monitoring_resources_follow_monitoring_enabled(render) -> None:
    kinds = {m["kind"] for m in render()}
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule"} <= kinds
    off = {m["kind"] for m in render(*VARIANTS["minimal"])}
    assert not off & {"ServiceMonitor", "PodMonitor", "PrometheusRule", "NetworkPolicy"}


@pytest.mark.parametrize(
    "args, message",
    [
        (("--set", "api.port=0"), "/api/port"),
        (("--set", "apiport=8000"), "apiport"),
        (("--set", "podSecurityContext.runAsNonRoot=false"), "runAsNonRoot"),
        (("--set", "lakehouse.bucket=Not_A_Bucket"), "/lakehouse/bucket"),
        (("--set", "api.resources.limits=null"), "limits"),
    ],
)
def test_the_values_schema_rejects_bad_values(render, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render(*args)


def test_custom_resources_have_the_fields_the_operator_needs(render) -> None:
    manifests = render()
    monitors = by_kind(manifests, "ServiceMonitor")
    assert set(monitors) == {"coelho-api", "coelho-producers"}
    services = by_kind(manifests, "Service")
    for name, monitor in monitors.items():
        spec = monitor["spec"]
        service = services[name]
        assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        port_names = {p["name"] for p in service["spec"]["ports"]}
        assert [e["port"] for e in spec["endpoints"]] == [next(iter(port_names))]
        assert service["metadata"]["labels"][spec["jobLabel"]] == name
    pod_monitor = by_kind(manifests, "PodMonitor")["coelho-run-workers"]["spec"]
    run_launcher = VALUES["dagster"]["runLauncher"]["config"]["k8sRunLauncher"]
    ports = run_launcher["runK8sConfig"]["containerConfig"]["ports"]
    assert pod_monitor["podMetricsEndpoints"][0]["port"] == "metrics"
    assert ports == [{"name": "metrics", "containerPort": VALUES["runs"]["metricsPort"]}]
    for key, value in pod_monitor["selector"]["matchLabels"].items():
        if key != "app.kubernetes.io/component":
            assert run_launcher["labels"][key] == value


def test_the_prometheus_rule_carries_every_alert_of_the_rule_files(render) -> None:
    rule = by_kind(render(), "PrometheusRule")["coelho-alerts"]
    rendered = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    expected = {r["alert"]: r for r in all_rules()}
    assert rendered.keys() == expected.keys()
    assert all(rendered[name]["expr"] == expected[name]["expr"] for name in expected)


def test_alert_groups_of_disabled_components_are_left_out(render) -> None:
    rule = by_kind(render("--set", "kafka.enabled=false"), "PrometheusRule")["coelho-alerts"]
    names = {g["name"] for g in rule["spec"]["groups"]}
    assert "coelho-kafka" not in names
    assert {"coelho-api", "coelho-learner", "coelho-redis"} <= names


def test_dashboards_and_alertmanager_config_are_shipped(render) -> None:
    manifests = render()
    dashboards = [
        m
        for m in by_kind(manifests, "ConfigMap").values()
        if "grafana_dashboard" in m["metadata"]["labels"]
    ]
    assert len(dashboards) == 4
    for config_map in dashboards:
        (text,) = config_map["data"].values()
        assert json.loads(text)["panels"]
    secret = by_kind(manifests, "Secret")[VALUES["monitoring"]["alertmanagerConfigSecret"]]
    config = yaml.safe_load(base64.b64decode(secret["data"]["alertmanager.yaml"]))
    assert config["inhibit_rules"] and config["route"]["receiver"]
    alertmanager = VALUES["kube-prometheus-stack"]["alertmanager"]["alertmanagerSpec"]
    assert alertmanager == {"useExistingSecret": True, "configSecret": secret["metadata"]["name"]}


# Security --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["default", "k3d"])
def test_every_container_is_non_root_and_bounded(render, variant: str) -> None:
    specs = pod_specs(render(*VARIANTS[variant]))
    assert specs
    for name, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        assert spec.get("automountServiceAccountToken") is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert context["readOnlyRootFilesystem"] is True, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), name
            assert "memory" in resources["limits"], name


def test_probes_hit_real_health_endpoints(render) -> None:
    manifests = render()
    deployments = by_kind(manifests, "Deployment")
    expected = {
        "coelho-api": ("/health", "http", VALUES["api"]["port"]),
        "coelho-mlflow": ("/health", "http", VALUES["mlflow"]["port"]),
        "coelho-producers": ("/metrics", "metrics", VALUES["producers"]["metricsPort"]),
    }
    assert set(deployments) == set(expected)
    for name, (path, port_name, port) in expected.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert {"name": port_name, "containerPort": port, "protocol": "TCP"} in container["ports"]
        readiness = container["readinessProbe"]["httpGet"]
        assert (readiness["path"], readiness["port"]) == (path, port_name), name
        assert container["livenessProbe"]["httpGet"]["port"] == port_name, name


def test_no_credential_is_in_values_or_config_maps(render) -> None:
    given = {
        "apiKey": "given-api-key-123",
        "modelSigningKey": "given-signing-key-333",
        "redisPassword": "given-redis-456",
        "postgresqlPassword": "given-pg-789",
        "postgresqlAdminPassword": "given-pg-admin-000",
        "minioRootPassword": "given-minio-111",
        "grafanaAdminPassword": "given-grafana-222",
    }
    args = [arg for key, value in given.items() for arg in ("--set", f"secrets.{key}={value}")]
    manifests = render(*args)
    config_maps = json.dumps([m for m in manifests if m["kind"] == "ConfigMap"])
    workloads = json.dumps([m for m in manifests if m["kind"] in ("Deployment", "Job")])
    secrets = json.dumps([m for m in manifests if m["kind"] == "Secret"])
    for value in given.values():
        assert value not in config_maps
        assert value not in workloads
        assert value in secrets
    env = by_kind(manifests, "Secret")["coelho-env"]["stringData"]
    assert env["REDIS_URL"] == "redis://:given-redis-456@coelho-redis-master:6379/0"
    for key, value in VALUES["secrets"].items():
        if key != "minioRootUser":
            assert value == "", f"secrets.{key} must stay empty in values.yaml"


def test_credentials_are_generated_when_not_given(render) -> None:
    first = by_kind(render(), "Secret")
    second = by_kind(render("--set", "api.replicas=2"), "Secret")
    for name, key in [
        ("coelho-env", "COELHO_API_KEY"),
        ("coelho-env", "COELHO_MODEL_SIGNING_KEY"),
        ("coelho-redis", "redis-password"),
        ("coelho-postgresql", "password"),
        ("coelho-minio", "root-password"),
    ]:
        value = first[name]["stringData"][key]
        assert len(value) == 32 and value.isalnum()
        assert value != second[name]["stringData"][key]
        assert first[name]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # One password, used everywhere it is needed.
    postgresql = first["coelho-postgresql"]["stringData"]
    assert postgresql["password"] == postgresql["postgresql-password"]
    assert first["coelho-env"]["stringData"]["COELHO_POSTGRESQL_PASSWORD"] == postgresql["password"]
    redis = first["coelho-redis"]["stringData"]["redis-password"]
    assert f":{redis}@" in first["coelho-env"]["stringData"]["REDIS_URL"]


def test_network_policies_select_the_coelho_pods(render) -> None:
    manifests = render()
    policies = by_kind(manifests, "NetworkPolicy")
    assert len(policies) == 4
    deployments = by_kind(manifests, "Deployment")
    for name in ("coelho-api", "coelho-producers", "coelho-mlflow"):
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selecting = [
            p
            for p in policies.values()
            if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        ]
        assert selecting, f"no NetworkPolicy selects {name}"
        assert all(p["spec"]["policyTypes"] == ["Ingress"] for p in selecting)
    exposed = policies["coelho-from-ingress"]["spec"]["ingress"][0]
    namespaces = exposed["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert namespaces == VALUES["networkPolicy"]["ingressNamespaces"]


# Environment -----------------------------------------------------------------------------------


def test_pods_get_the_public_environment_names(render) -> None:
    manifests = render()
    sources = env_sources(manifests)
    assert {
        "KAFKA_BOOTSTRAP_SERVERS": "configmap",
        "MLFLOW_TRACKING_URI": "configmap",
        "COELHO_LAKEHOUSE_URI": "configmap",
        "COELHO_STORAGE_AWS_ENDPOINT_URL": "configmap",
        "COELHO_STORAGE_AWS_REGION": "configmap",
        "COELHO_STORAGE_AWS_ALLOW_HTTP": "configmap",
        "MLFLOW_S3_ENDPOINT_URL": "configmap",
        "COELHO_PRODUCERS_PORT": "configmap",
        "COELHO_LEARNER_METRICS_PORT": "configmap",
        "COELHO_METRICS_ADDR": "configmap",
        "REDIS_URL": "secret",
        "COELHO_API_KEY": "secret",
        "COELHO_MODEL_SIGNING_KEY": "secret",
        "COELHO_STORAGE_AWS_ACCESS_KEY_ID": "secret",
        "COELHO_STORAGE_AWS_SECRET_ACCESS_KEY": "secret",
    }.items() <= sources.items()
    config = by_kind(manifests, "ConfigMap")["coelho-env"]["data"]
    assert config["COELHO_LAKEHOUSE_URI"] == "s3://coelho-lakehouse"
    for name, spec in pod_specs(manifests).items():
        for container in spec["containers"]:
            refs = [next(iter(source.values()))["name"] for source in container["envFrom"]]
            assert refs == ["coelho-env", "coelho-env"], name


def test_dagster_code_location_and_run_pods_get_the_same_environment() -> None:
    deployment = VALUES["dagster"]["dagster-user-deployments"]["deployments"][0]
    launcher = VALUES["dagster"]["runLauncher"]["config"]["k8sRunLauncher"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert deployment["envConfigMaps"] == launcher["envConfigMaps"] == [{"name": "coelho-env"}]
    assert deployment["envSecrets"] == launcher["envSecrets"] == [{"name": "coelho-env"}]
    assert VALUES["dagster"]["postgresql"]["enabled"] is False
    assert (
        VALUES["dagster"]["postgresql"]["postgresqlHost"] == VALUES["endpoints"]["postgresqlHost"]
    )
    assert VALUES["global"]["postgresqlSecretName"] == "coelho-postgresql"
    assert VALUES["dagster"]["generatePostgresqlPasswordSecret"] is False


@pytest.mark.parametrize("values", [VALUES, K3D], ids=["default", "k3d"])
def test_the_code_location_runs_the_coelho_image(values: dict) -> None:
    (deployment,) = values["dagster"]["dagster-user-deployments"]["deployments"]
    assert deployment["image"]["repository"] == values["image"]["repository"]
    assert deployment["image"]["tag"] == (values["image"]["tag"] or "0.1.0")
    assert deployment["codeServerArgs"][:2] == ["-f", "/opt/coelho/definitions.py"]


def test_k3d_code_location_only_changes_image_and_resources() -> None:
    (default,) = VALUES["dagster"]["dagster-user-deployments"]["deployments"]
    (k3d,) = K3D["dagster"]["dagster-user-deployments"]["deployments"]
    ignored = {"image", "resources"}
    assert {k: v for k, v in default.items() if k not in ignored} == {
        k: v for k, v in k3d.items() if k not in ignored
    }


def test_k3d_values_render_the_ingresses_and_registry_image(render) -> None:
    manifests = render(*K3D_VALUES)
    ingresses = by_kind(manifests, "Ingress")
    hosts = {i["spec"]["rules"][0]["host"] for i in ingresses.values()}
    assert hosts == {"api.localhost", "mlflow.localhost"}
    images = {c["image"] for spec in pod_specs(manifests).values() for c in spec["containers"]}
    assert images == {"k3d-coelho-registry.localhost:5005/coelho:0.1.0"}
    assert K3D["dagster"]["ingress"]["dagsterWebserver"]["host"] == "dagster.localhost"


@pytest.mark.parametrize("variant", ["default", "k3d"])
def test_helm_lint_passes(helm: str, offline_chart, variant: str) -> None:
    args = [] if variant == "default" else list(K3D_VALUES)
    result = subprocess.run(
        [helm, "lint", str(offline_chart), "--strict", "--kube-version", KUBE_VERSION, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
