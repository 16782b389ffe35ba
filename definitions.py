"""Dagster entry point: `dagster dev -f definitions.py` or `-w workspace.yaml`."""

from coelho_pipelines.definitions import build_definitions

defs = build_definitions()
