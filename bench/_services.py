"""Real services for benchmarks: started on free ports in a temp state dir, stopped after."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORT_KEYS = ("kafka", "kafka_controller", "redis", "mlflow", "dagster", "api", "producers")


@contextlib.contextmanager
def temporary_platform(*services: str) -> Iterator:
    """Start `services` (e.g. "kafka", "mlflow") with the same code as `coelho up`."""
    from coelho_pipelines.platform import Platform, free_port

    home = Path(tempfile.mkdtemp(prefix="coelho-bench-"))
    kafka_lib = Path(os.environ.get("COELHO_KAFKA_LIB", ROOT / ".coelho" / "lib" / "kafka"))
    platform = Platform(
        home,
        ports={key: free_port() for key in PORT_KEYS},
        kafka_lib=kafka_lib,
        project_dir=ROOT,
        tie_to_parent=True,
    )
    try:
        for name in services:
            platform.start(name)
        yield platform
    finally:
        platform.down(report=lambda _line: None)
        shutil.rmtree(home, ignore_errors=True)
