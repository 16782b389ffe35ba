"""The lakehouse: a root URI for Delta tables plus the storage options to reach it."""

from __future__ import annotations

import dagster as dg

from coelho_pipelines.settings import Settings, table_uri


class LakehouseResource(dg.ConfigurableResource):
    """Delta tables under `<uri>/delta/<table>`; `storage_options` for S3/MinIO."""

    uri: str
    storage_options: dict[str, str] = {}

    @classmethod
    def from_env(cls) -> LakehouseResource:
        import os

        options = {
            key.removeprefix("COELHO_STORAGE_").lower(): value
            for key, value in os.environ.items()
            if key.startswith("COELHO_STORAGE_")
        }
        return cls(uri=Settings.from_env().lakehouse_uri, storage_options=options)

    def table_uri(self, table: str) -> str:
        return table_uri(self.uri, table)

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri or self.uri.startswith("file://")
