"""The Dockerfile: slim Python base, non-root, dependencies before code, one entrypoint per role.

No Docker engine runs here: the file is checked as text and the entrypoint script is run with
a stub PATH to show which command each role executes.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest
from deploy_helpers import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
ENTRYPOINT = ROOT / "deploy" / "docker-entrypoint.sh"


def instructions(text: str) -> list[list[str]]:
    """[instruction, argument] pairs, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = " ".join(
        line.rstrip("\\").strip() if line.endswith("\\") else line + "\n" for line in lines
    )
    return [line.strip().split(None, 1) for line in joined.split("\n") if line.strip()]


INSTRUCTIONS = instructions(DOCKERFILE)


def index_of(keyword: str, text: str) -> int:
    for number, (instruction, argument) in enumerate(INSTRUCTIONS):
        if instruction == keyword and text in argument:
            return number
    raise AssertionError(f"no {keyword} {text!r} in the Dockerfile")


def test_base_image_is_slim_python_matching_the_project() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    assert "ARG PYTHON_VERSION=3.11" in DOCKERFILE
    assert index_of("FROM", "python:${PYTHON_VERSION}-slim") == 1


def test_runs_as_a_non_root_user() -> None:
    users = [argument for instruction, argument in INSTRUCTIONS if instruction == "USER"]
    assert users == ["10001:10001"]
    assert index_of("USER", "10001") > index_of("RUN", "pip install --no-deps .")


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    dependencies = index_of("RUN", "pip install -r requirements.lock")
    assert index_of("COPY", "requirements.lock") < dependencies
    assert dependencies < index_of("COPY", "coelho_pipelines")
    assert dependencies < index_of("COPY", "coelho_serving")


def test_dockerignore_lets_in_only_what_the_image_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[next(i for i, line in enumerate(ignore) if not line.startswith("#"))] == "*"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for instruction, argument in INSTRUCTIONS:
        if instruction == "COPY":
            copied |= set(argument.split()[:-1])
    assert copied == allowed
    for path in allowed:
        assert (ROOT / path).exists(), path


@pytest.fixture()
def stub_path(tmp_path: Path) -> dict[str, str]:
    """PATH with `coelho`, `dagster` and `mlflow` stubs that print their arguments."""
    for name in ("coelho", "dagster", "mlflow"):
        stub = tmp_path / name
        stub.write_text(f'#!/bin/sh\necho {name} "$@"\n')
        stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{tmp_path}:/usr/bin:/bin", "COELHO_API_PORT": "8123"}


@pytest.mark.parametrize(
    "args, expected",
    [
        (["api"], "coelho serve --host 0.0.0.0 --port 8123"),
        (["producers", "--rate", "5"], "coelho produce --use-case all --rate 5"),
        (
            ["code-server"],
            "dagster code-server start -h 0.0.0.0 -p 3030"
            " -f /opt/coelho/definitions.py -d /opt/coelho",
        ),
        (["mlflow"], "mlflow server --host 0.0.0.0 --port 5000"),
        (["dagster", "api", "execute_run", "{}"], "dagster api execute_run {}"),
    ],
)
def test_entrypoint_roles(stub_path: dict[str, str], args: list[str], expected: str) -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
    result = subprocess.run(
        [str(ENTRYPOINT), *args], env=stub_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
