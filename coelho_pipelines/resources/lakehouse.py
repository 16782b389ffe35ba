"""The lakehouse: a root URI for Delta tables plus the storage options to reach it."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from coelho_pipelines.naming import table_uri
from coelho_pipelines.settings import Settings, storage_options_from_env


class LakehouseResource(dg.ConfigurableResource):
    """Delta tables under `<uri>/delta/<table>`; `storage_options` for S3/MinIO."""

    uri: str = Field(description="Delta tables root, from COELHO_LAKEHOUSE_URI")
    storage_options: dict[str, str] = Field(
        default={}, description="delta-rs options, from COELHO_STORAGE_<OPTION>"
    )

    @classmethod
    def from_env(cls) -> LakehouseResource:
        """Resolved values for code outside Dagster (the CLI); Definitions use `build_resources`."""
        settings = Settings.from_env()
        return cls(uri=settings.lakehouse_uri, storage_options=storage_options_from_env())

    def table_uri(self, table: str) -> str:
        return table_uri(self.uri, table)

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri or self.uri.startswith("file://")
