"""Shared paths and helpers of the deployment checks (tests/deploy)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "coelho"
ALERTS = CHART / "files" / "alerts"
DASHBOARDS = CHART / "files" / "dashboards"
ALERTMANAGER = CHART / "files" / "alertmanager.yaml"
TERRAFORM = ROOT / "terraform"
KUBE_VERSION = "1.31.0"
INSTALL_HINT = "run scripts/install-deploy-tools.sh (installs promtool, amtool and helm)"


def require_tool(name: str) -> str:
    """The path of a required tool, or a test failure saying how to install it."""
    path = shutil.which(name)
    if not path:
        pytest.fail(f"'{name}' is not installed: {INSTALL_HINT}", pytrace=False)
    return path


def chart_dependencies() -> list[dict]:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]


class RenderError(Exception):
    """`helm template` refused the values."""


K3D_VALUES = ("-f", str(CHART / "values-k3d.yaml"))
ALL_DEPENDENCIES_OFF = tuple(
    arg
    for dependency in chart_dependencies()
    for arg in ("--set", f"{dependency['name']}.enabled=false")
)
VARIANTS = {
    "default": (),
    "k3d": K3D_VALUES,
    "dependencies-off": ALL_DEPENDENCIES_OFF,
    "minimal": (
        *ALL_DEPENDENCIES_OFF,
        "--set",
        "monitoring.enabled=false",
        "--set",
        "networkPolicy.enabled=false",
    ),
}


def rule_files() -> list[Path]:
    return sorted(ALERTS.glob("*.rules.yaml"))


def all_rules() -> list[dict]:
    """Every alerting rule of the chart's rule files, with its group name."""
    rules = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                rules.append({**rule, "group": group["name"]})
    return rules
