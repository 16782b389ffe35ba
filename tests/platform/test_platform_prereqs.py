"""A missing system prerequisite is one line naming the Debian package, never a stack trace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coelho.platform import free_port
from coelho.platform.prereqs import JAVA, java_major_version


def coelho_up(
    tmp_path: Path, path: str, services: str, **extra: str
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": path,
        "COELHO_HOME": str(tmp_path / "state"),
        "COELHO_KAFKA_PORT": str(free_port()),
        "COELHO_KAFKA_CONTROLLER_PORT": str(free_port()),
        "COELHO_REDIS_PORT": str(free_port()),
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "coelho.cli", "up", "--services", services],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def bin_dir(tmp_path: Path, **commands: str) -> str:
    """A PATH directory holding only the given commands (name -> target or script text)."""
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    for name, target in commands.items():
        link = directory / name
        if target.startswith("#!"):
            link.write_text(target)
            link.chmod(0o755)
        else:
            link.symlink_to(target)
    return str(directory)


def assert_one_line(result: subprocess.CompletedProcess, package: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"apt-get install {package}" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_java_names_the_package(tmp_path: Path) -> None:
    result = coelho_up(tmp_path, bin_dir(tmp_path), "kafka")
    assert_one_line(result, "openjdk-17-jre-headless")
    assert "java not found" in result.stderr


def test_old_java_names_the_package(tmp_path: Path) -> None:
    fake_java = "#!/bin/sh\necho 'openjdk version \"11.0.21\" 2023-10-17' >&2\n"
    result = coelho_up(tmp_path, bin_dir(tmp_path, java=fake_java), "kafka")
    assert_one_line(result, "openjdk-17-jre-headless")
    assert "java 17+ is needed" in result.stderr and "found version 11" in result.stderr


def test_missing_maven_names_the_package_when_jars_are_missing(tmp_path: Path) -> None:
    java = shutil.which("java")
    assert java, "java is a prerequisite of the suite"
    path = bin_dir(tmp_path, java=java)
    empty_lib = str(tmp_path / "no-jars-yet")
    result = coelho_up(tmp_path, path, "kafka", COELHO_KAFKA_LIB=empty_lib)
    assert_one_line(result, "maven")


def test_missing_redis_server_names_the_package(tmp_path: Path) -> None:
    result = coelho_up(tmp_path, bin_dir(tmp_path), "redis")
    assert_one_line(result, "redis-server")


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_402"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("no version here", None),
    ],
)
def test_java_major_version_parsing(tmp_path: Path, output: str, major: int | None) -> None:
    script = tmp_path / "java"
    script.write_text(f"#!/bin/sh\necho '{output}' >&2\n")
    script.chmod(0o755)
    assert java_major_version(str(script)) == major


def test_installed_java_satisfies_the_platform() -> None:
    assert JAVA.problem() is None
