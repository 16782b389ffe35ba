"""Fixtures of the offline deployment checks: Helm built from source, the chart rendered.

Tools come from `scripts/install-deploy-tools.sh` (promtool, amtool from Debian; helm built with
`go install`). A missing required tool fails the test with the command that installs it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from deploy_helpers import CHART, INSTALL_HINT, KUBE_VERSION, ROOT, RenderError, chart_dependencies


@pytest.fixture(scope="session")
def helm() -> str:
    """Helm 3, built by scripts/install-helm.sh (instant when already built)."""
    script = ROOT / "scripts" / "install-helm.sh"
    result = subprocess.run(
        [str(script)], capture_output=True, text=True, timeout=1200, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"cannot build helm: {result.stderr[-2000:]}\n{INSTALL_HINT}", pytrace=False)
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def offline_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart whose dependencies are empty stand-ins (no chart repository here).

    Helm then checks the `enabled` conditions and renders our own templates; the stand-ins
    render nothing.
    """
    chart = tmp_path_factory.mktemp("chart") / "coelho"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("charts"))
    for dependency in chart_dependencies():
        stub = chart / "charts" / dependency["name"]
        stub.mkdir(parents=True)
        (stub / "Chart.yaml").write_text(
            yaml.safe_dump({"apiVersion": "v2", "name": dependency["name"], "version": "0.0.0"})
        )
    return chart


Render = Callable[..., list[dict]]


@pytest.fixture(scope="session")
def render(helm: str, offline_chart: Path) -> Render:
    """`render(*helm_args)` -> the manifests of `helm template` (sorted by kind and name)."""
    cache: dict[tuple[str, ...], list[dict]] = {}

    def _render(*args: str) -> list[dict]:
        if args not in cache:
            command = [helm, "template", "coelho", str(offline_chart), "--namespace", "coelho"]
            command += ["--kube-version", KUBE_VERSION, *args]
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if result.returncode != 0:
                raise RenderError(result.stderr)
            documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
            cache[args] = sorted(documents, key=lambda d: (d["kind"], d["metadata"]["name"]))
        return cache[args]

    return _render
