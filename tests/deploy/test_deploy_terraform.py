"""Terraform for k3d: formatted (`terraform fmt`, an optional tool) and right (HCL parse)."""

from __future__ import annotations

import shutil
import subprocess

import hcl2
import pytest
from deploy_helpers import ROOT, TERRAFORM


def unquote(value):
    """python-hcl2 keeps the quotes of string keys and values: strip them, recursively."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse() -> dict[str, list]:
    """Every top-level block of every .tf file, merged by block type."""
    blocks: dict[str, list] = {}
    files = sorted(TERRAFORM.glob("*.tf"))
    assert files
    for path in files:
        with path.open() as handle:
            for kind, items in unquote(hcl2.load(handle)).items():
                blocks.setdefault(kind, []).extend(items)
    return blocks


def named(blocks: list[dict]) -> dict[str, dict]:
    return {name: body for block in blocks for name, body in block.items()}


def resources() -> dict[tuple[str, str], dict]:
    return {
        (kind, name): body
        for block in parse()["resource"]
        for kind, by_name in block.items()
        for name, body in by_name.items()
    }


def test_terraform_fmt() -> None:
    terraform = shutil.which("terraform")
    if not terraform:
        pytest.skip("optional tool: terraform is not installed (the HCL parse tests still run)")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_cluster_has_one_server_three_agents_a_registry_and_host_storage() -> None:
    variables = named(parse()["variable"])
    assert variables["servers"]["default"] == 1
    assert variables["agents"]["default"] == 3
    cluster = resources()[("null_resource", "cluster")]
    create, destroy = cluster["provisioner"]
    command = create["local-exec"]["command"]
    assert "k3d cluster create" in command
    assert "--servers ${self.triggers.servers}" in command
    assert "--agents ${self.triggers.agents}" in command
    assert cluster["triggers"]["servers"] == "${var.servers}"
    assert cluster["triggers"]["agents"] == "${var.agents}"
    assert "--registry-use ${self.triggers.registry}" in command
    assert ":/var/lib/rancher/k3s/storage@all" in command, "host volume for persistent data"
    assert "80@loadbalancer" in command
    assert destroy["local-exec"]["when"] == "destroy"
    assert "k3d cluster delete" in destroy["local-exec"]["command"]
    registry = resources()[("null_resource", "registry")]
    assert "k3d registry create" in registry["provisioner"][0]["local-exec"]["command"]
    assert "${null_resource.registry}" in cluster["depends_on"]


def test_the_chart_is_released_with_the_k3d_values() -> None:
    release = resources()[("helm_release", "coelho")]
    assert release["chart"] == "${local.chart_path}"
    assert release["dependency_update"] is True
    assert release["create_namespace"] is True
    assert any("values-k3d.yaml" in value for value in release["values"])
    settings = {entry["name"]: entry["value"] for entry in release["set"]}
    assert settings["image.tag"] == "${var.image_tag}"
    assert (
        settings["dagster.dagster-user-deployments.deployments[0].image.tag"] == "${var.image_tag}"
    )
    assert "${null_resource.cluster}" in release["depends_on"]
    locals_ = named([{k: v} for block in parse()["locals"] for k, v in block.items()])
    assert locals_["release_name"] == "coelho"
    assert (ROOT / "helm" / "coelho" / "values-k3d.yaml").exists()


def test_variables_have_descriptions_types_and_defaults() -> None:
    variables = named(parse()["variable"])
    assert len(variables) >= 10
    for name, body in variables.items():
        assert body.get("description", "").strip(), f"variable {name} has no description"
        assert "type" in body, name
        assert "default" in body, f"variable {name} needs a sane default"
    assert variables["api_key"]["sensitive"] is True


def test_outputs_give_the_urls() -> None:
    outputs = named(parse()["output"])
    for name in ("dagster_url", "api_url", "mlflow_url", "grafana_url"):
        assert outputs[name]["value"].startswith("http://"), name
        assert outputs[name]["description"]
    assert "dagster.localhost" in outputs["dagster_url"]["value"]
    assert "registry_push_address" in outputs


def test_providers_are_pinned() -> None:
    (terraform,) = parse()["terraform"]
    providers = terraform["required_providers"][0]
    assert providers["helm"]["source"] == "hashicorp/helm"
    assert providers["null"]["source"] == "hashicorp/null"
    assert all(provider["version"].startswith("~>") for provider in providers.values())


def test_make_targets_walk_the_whole_path() -> None:
    makefile = (ROOT / "deploy" / "k3d.mk").read_text()
    for target in ("k3d-up:", "k3d-down:", "k3d-cluster:", "k3d-image:", "k3d-deploy:"):
        assert target in makefile
    assert "docker build" in makefile and "docker push" in makefile
    assert "-target=null_resource.cluster" in makefile
    assert "terraform -chdir=terraform" in makefile
