"""The module layout holds: pyproject.toml's import-linter contracts (no cycles between
sibling modules at any depth, lazy imports included; the API imports neither Dagster nor the
CLI; the Dagster code imports neither the CLI nor the API)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_import_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    names = [c["name"] for c in contracts["contracts"]]
    assert len(names) >= 3
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for name in names:
        assert f"{name} KEPT" in result.stdout
