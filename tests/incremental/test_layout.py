"""The incremental domain's layout: the job and its sensors are built apart, wired in defs."""

from __future__ import annotations

import ast
from pathlib import Path

import coelho_pipelines.incremental as incremental

PACKAGE = Path(incremental.__file__).parent


def imported_modules(module: str) -> set[str]:
    """Every module `module` imports, at top level or inside functions."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_job_and_the_sensors_do_not_import_each_other() -> None:
    assert not {m for m in imported_modules("job") if m.endswith("incremental.sensor")}
    assert not {m for m in imported_modules("sensor") if m.endswith("incremental.job")}


def test_defs_wires_the_job_and_the_sensors() -> None:
    imports = imported_modules("defs")
    assert "coelho_pipelines.incremental.job" in imports
    assert "coelho_pipelines.incremental.sensor" in imports


def test_the_capture_policy_is_pure() -> None:
    """No I/O, threads or clock: the policy imports only the settings and typing helpers."""
    imports = imported_modules("capture_policy")
    assert {m.split(".")[0] for m in imports} <= {
        "__future__", "dataclasses", "typing", "coelho_pipelines"
    }  # fmt: skip
    assert {m for m in imports if m.startswith("coelho_pipelines")} <= {
        "coelho_pipelines.incremental.settings",
        "coelho_pipelines.incremental.settings.LearnerSettings",
    }
