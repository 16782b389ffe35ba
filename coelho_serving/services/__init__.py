"""The services behind the endpoints: Redis, MLflow and the lakehouse via the pipeline modules.

No Dagster here. The modules that own the data formats do the reading (`incremental.live_store`
and `incremental.snapshot` for the learner's state, `batch.registry` for batch models,
`sql_engine` for SQL); this layer adds caching, fallbacks, error mapping and metrics. Every
blocking call runs in a worker thread; incremental predictions on a cached model run inline
(well under a millisecond; forests' vote weights are read once, `frozen`), batch predictions
are micro-batched in a worker thread through the model's compiled predictor (`fast_predict`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import HTTPException

from coelho_pipelines.settings import storage_options_from_env
from coelho_pipelines.use_cases.spec import UseCaseSpec
from coelho_serving.cache import ModelCache
from coelho_serving.config import ServingConfig
from coelho_serving.health import (
    HealthChecker,
    check_kafka,
    check_lakehouse,
    check_mlflow,
    check_redis,
)
from coelho_serving.services.batch import BatchService
from coelho_serving.services.common import (
    T,
    mlflow_unavailable,
    redis_errors,
    unavailable,
)
from coelho_serving.services.incremental import IncrementalService
from coelho_serving.services.sql import SqlService

__all__ = ["BatchService", "IncrementalService", "Services", "SqlService"]


class Services:
    """The app's shared state: configuration, clients, the model cache and the areas."""

    def __init__(self, config: ServingConfig, specs: Sequence[UseCaseSpec]) -> None:
        self.config = config
        self.specs = {spec.key: spec for spec in specs}
        self.cache = ModelCache()
        self._redis: Any = None
        self._redis_down_until = 0.0
        self.incremental = IncrementalService(self)
        self.batch = BatchService(self)
        self.sql = SqlService(self)
        self.health = HealthChecker(
            config,
            {
                "kafka": lambda: check_kafka(config),
                "redis": lambda: check_redis(config, self.redis()),
                "mlflow": lambda: check_mlflow(config),
                "lakehouse": lambda: check_lakehouse(config, storage_options_from_env()),
            },
        )

    @property
    def tracking_uri(self) -> str:
        return self.config.settings.mlflow_tracking_uri

    def redis(self) -> Any:
        """One shared Redis client (thread-safe connection pool) with short timeouts."""
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(
                self.config.settings.redis_url,
                socket_connect_timeout=self.config.dependency_timeout_seconds,
                socket_timeout=self.config.dependency_timeout_seconds,
            )
        return self._redis

    async def in_thread(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(func, *args)

    async def redis_call(self, func: Callable[..., T], *args: Any) -> T:
        """`func(redis_client, *args)` in a thread; Redis outages become 503."""
        try:
            result = await asyncio.to_thread(func, self.redis(), *args)
        except redis_errors() as error:
            self.mark_redis_down()
            raise unavailable("Redis", error) from error
        self._redis_down_until = 0.0
        return result

    def redis_suspect(self) -> bool:
        """True shortly after a Redis failure: skip it instead of waiting on timeouts."""
        return time.monotonic() < self._redis_down_until

    def mark_redis_down(self) -> None:
        self._redis_down_until = time.monotonic() + self.config.redis_retry_seconds

    async def mlflow_call(self, func: Callable[..., T], *args: Any) -> T:
        """A blocking MLflow call in a thread; an unreachable server becomes 503."""
        try:
            return await asyncio.to_thread(func, *args)
        except HTTPException:
            raise
        except Exception as error:
            if mlflow_unavailable(error):
                raise unavailable("MLflow", error) from error
            raise

    async def health_report(self) -> tuple[dict[str, Any], bool]:
        body, healthy = await self.health.report()
        body["models"] = self.serving_state()
        return body, healthy

    def serving_state(self) -> dict[str, Any]:
        """Which model each prediction endpoint last served from (the cache, no I/O)."""
        state: dict[str, Any] = {}
        for key in self.specs:
            entry = self.incremental.last_served.get(key)
            champion = self.cache.peek((key, "batch", "champion"))
            state[key] = {
                "incremental": None
                if entry is None
                else {"source": entry[0], "version": str(entry[1])},
                "batch": None
                if champion is None
                else {"source": "mlflow", "version": str(champion.version)},
            }
        return state

    @asynccontextmanager
    async def lifespan(self, _app: Any):
        yield
        if self._redis is not None:
            self._redis.close()
