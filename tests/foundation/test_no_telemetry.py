"""Processes that import Coelho do not start MLflow's client telemetry (offline platform)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_coelho_turns_mlflow_client_telemetry_off() -> None:
    code = (
        "import coelho_pipelines, threading\n"
        "from mlflow.telemetry import get_telemetry_client\n"
        "from mlflow.telemetry.utils import is_telemetry_disabled\n"
        "assert is_telemetry_disabled()\n"
        "assert get_telemetry_client() is None\n"
        "assert not [t for t in threading.enumerate() if 'Telemetry' in t.name]\n"
    )
    env_free = {"PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env_free, cwd=".")
