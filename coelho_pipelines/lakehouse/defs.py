"""The lakehouse domain's Dagster definitions: table upkeep across every use case."""

from coelho_pipelines.lakehouse.maintenance import build_maintenance_defs

__all__ = ["build_maintenance_defs"]
