"""Throwaway platforms on free ports: the test suite's session services and the benches'.

Both start services with the same code as `coelho up`, in their own state directory, on ports
nobody else holds, and reuse the checkout's Kafka jars so nothing is downloaded twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from coelho.platform.manager import SERVICES, Platform, default_project_dir
from coelho.platform.process import free_port


def shared_kafka_lib(project_dir: Path | None = None) -> Path:
    """The broker jars a throwaway platform reuses: `COELHO_KAFKA_LIB`, else
    `$COELHO_HOME/lib/kafka` (what `make` resolves), else the checkout's `.coelho/lib/kafka`."""
    if os.environ.get("COELHO_KAFKA_LIB"):
        return Path(os.environ["COELHO_KAFKA_LIB"]).expanduser().resolve()
    if os.environ.get("COELHO_HOME"):
        return Path(os.environ["COELHO_HOME"]).expanduser().resolve() / "lib" / "kafka"
    return (project_dir or default_project_dir()) / ".coelho" / "lib" / "kafka"


def free_port_platform(
    home: Path, *, kafka_lib: Path | None = None, project_dir: Path | None = None
) -> Platform:
    """A `Platform` in `home` with a free port for every local service, its processes tied to
    this one (they exit with it)."""
    project = project_dir or default_project_dir()
    return Platform(
        home,
        ports={key: free_port() for service in SERVICES for key in service.port_keys()},
        kafka_lib=kafka_lib or shared_kafka_lib(project),
        project_dir=project,
        tie_to_parent=True,
    )


@contextlib.contextmanager
def temporary_platform(*services: str, project_dir: Path | None = None) -> Iterator[Platform]:
    """Start `services` (e.g. "kafka", "mlflow") in a temporary state directory; stop them and
    remove the directory on exit."""
    home = Path(tempfile.mkdtemp(prefix="coelho-ephemeral-"))
    platform = free_port_platform(home, project_dir=project_dir)
    try:
        for name in services:
            platform.start(name)
        yield platform
    finally:
        platform.down(report=lambda _line: None)
        shutil.rmtree(home, ignore_errors=True)
