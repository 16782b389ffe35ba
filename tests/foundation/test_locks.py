"""The lock files: every machine installs the same versions (`make` from requirements-dev.lock,
the image from requirements.lock), and they still satisfy pyproject.toml."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
MARKER_ENV = {
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def pins(name: str) -> dict[str, str]:
    """Package -> exact version of a lock file; every line must be an `==` pin."""
    found: dict[str, str] = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", line
        found[canonicalize_name(requirement.name)] = spec.version
    return found


def wanted(extras: list[str]) -> list[Requirement]:
    lines = PYPROJECT["dependencies"] + [
        r for e in extras for r in PYPROJECT["optional-dependencies"][e]
    ]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize(
    "lock, extras", [("requirements-dev.lock", ["dev"]), ("requirements.lock", ["s3"])]
)
def test_each_lock_pins_a_version_pyproject_allows(lock: str, extras: list[str]) -> None:
    locked = pins(lock)
    for requirement in wanted(extras):
        if requirement.marker is not None and not requirement.marker.evaluate(MARKER_ENV):
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in {lock}: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{lock} pins {name}=={locked[name]}, pyproject.toml wants {requirement.specifier}"
        )


def test_the_image_and_the_tests_get_the_same_versions() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    shared = set(runtime) & set(dev)
    assert {n: runtime[n] for n in shared} == {n: dev[n] for n in shared}
    assert {"dagster", "river", "catboost", "scikit-learn", "mlflow"} <= shared


def test_this_environment_is_the_dev_lock() -> None:
    """The suite runs on exactly the locked versions (`make` installs them)."""
    dev = pins("requirements-dev.lock")
    for name in ("dagster", "river", "catboost", "scikit-learn", "mlflow", "duckdb", "deltalake"):
        assert metadata.version(name) == dev[name], name
