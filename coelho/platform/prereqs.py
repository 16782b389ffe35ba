"""System prerequisites of the local platform, each missing one named with its Debian package."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from coelho.platform.process import PlatformError


@dataclass(frozen=True)
class Prerequisite:
    """A command the platform runs, and the Debian package that provides it."""

    command: str
    package: str
    purpose: str
    min_java: int | None = None

    def problem(self) -> str | None:
        """None when satisfied, else one line saying what to install."""
        path = shutil.which(self.command)
        install = f"install it with `apt-get install {self.package}`"
        if path is None:
            return f"{self.command} not found ({self.purpose}): {install}"
        if self.min_java is not None:
            major = java_major_version(path)
            if major is None or major < self.min_java:
                found = "unknown" if major is None else str(major)
                return (
                    f"java {self.min_java}+ is needed ({self.purpose}), found version {found}: "
                    f"{install}"
                )
        return None


JAVA = Prerequisite("java", "openjdk-17-jre-headless", "runs the Kafka broker", min_java=17)
MAVEN = Prerequisite("mvn", "maven", "resolves the Kafka broker jars")
REDIS = Prerequisite("redis-server", "redis-server", "runs Redis")


def java_major_version(java: str) -> int | None:
    """The major version `java -version` reports (8 for 1.8), or None."""
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def require(*prerequisites: Prerequisite) -> None:
    """Raise PlatformError naming the first missing prerequisite."""
    for prerequisite in prerequisites:
        problem = prerequisite.problem()
        if problem:
            raise PlatformError(problem)
