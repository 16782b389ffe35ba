"""The root code location loads, and dagster.yaml is what `coelho up` gives Dagster."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dagster as dg
import yaml

from coelho.platform import dagster as dagster_platform
from coelho.platform.service import Context

ROOT = Path(__file__).resolve().parents[2]


def load_root_definitions() -> dg.Definitions:
    spec = importlib.util.spec_from_file_location(
        "coelho_root_definitions", ROOT / "definitions.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.defs


def test_root_definitions_are_loadable() -> None:
    defs = load_root_definitions()
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert {"tfd/events_topic", "eta/events_topic", "ecci/events_topic"} <= keys


def test_workspace_points_at_the_root_definitions() -> None:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert entry["python_file"]["relative_path"] == "definitions.py"


def test_dagster_home_gets_the_repo_dagster_yaml(tmp_path: Path) -> None:
    ctx = Context(tmp_path, tmp_path / "lib", ROOT, {"dagster": 3999})
    dagster_platform.prepare(ctx)
    copied = tmp_path / "dagster" / "dagster.yaml"
    assert copied.read_text() == (ROOT / "dagster.yaml").read_text()
    assert yaml.safe_load(copied.read_text())["telemetry"]["enabled"] is False
    command = dagster_platform.command(ctx)
    assert command[-4:] == ["--host", "127.0.0.1", "--port", "3999"]
    assert dagster_platform.env(ctx)["DAGSTER_HOME"] == str(tmp_path / "dagster")
