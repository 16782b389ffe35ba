"""The sql area: read-only SQL over a use case's raw Delta table through `sql_engine`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException

from coelho_pipelines import telemetry
from coelho_pipelines.settings import storage_options_from_env
from coelho_pipelines.use_cases.spec import UseCaseSpec

if TYPE_CHECKING:
    from coelho_serving.services import Services


@dataclass(frozen=True)
class Lakehouse:
    """The lakehouse root and its object-store options (what `sql_engine` reads)."""

    uri: str
    storage_options: dict[str, str]


class SqlService:
    """Read-only SQL over a use case's raw Delta table through `sql_engine`."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _lakehouse(self) -> Lakehouse:
        return Lakehouse(self.services.config.settings.lakehouse_uri, storage_options_from_env())

    async def query(self, spec: UseCaseSpec, query: str, limit: int) -> dict[str, Any]:
        from coelho_pipelines import sql_engine

        started = time.perf_counter()
        try:
            result = await asyncio.to_thread(
                sql_engine.run_query, self._lakehouse(), spec, query, limit
            )
        except sql_engine.SqlRejected as error:
            telemetry.API_SQL_ERRORS.labels(spec.key).inc()
            raise HTTPException(400, str(error)) from error
        except sql_engine.TableNotFound as error:
            telemetry.API_SQL_ERRORS.labels(spec.key).inc()
            raise HTTPException(404, f"{spec.key}: {error}") from error
        finally:
            telemetry.API_SQL_DURATION.labels(spec.key).observe(time.perf_counter() - started)
        return result.to_dict()

    async def schema(self, spec: UseCaseSpec) -> dict[str, Any]:
        from coelho_pipelines import sql_engine

        try:
            schema = await asyncio.to_thread(sql_engine.table_schema, self._lakehouse(), spec)
        except sql_engine.TableNotFound as error:
            raise HTTPException(404, f"{spec.key}: {error}") from error
        return {
            "table": schema.table,
            "columns": [column["name"] for column in schema.columns],
            "types": [column["type"] for column in schema.columns],
            "row_count": schema.row_count,
        }
