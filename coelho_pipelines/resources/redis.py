"""Redis: where the live incremental models and learner status live."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from coelho_pipelines.settings import Settings


class RedisResource(dg.ConfigurableResource):
    """A Redis server reached through `url` (redis://host:port/db)."""

    url: str = Field(description="from REDIS_URL")
    socket_timeout_seconds: float = 5.0

    @classmethod
    def from_env(cls) -> RedisResource:
        """Resolved values for code outside Dagster (the CLI); Definitions use `build_resources`."""
        return cls(url=Settings.from_env().redis_url)

    def client(self):
        import redis

        return redis.Redis.from_url(
            self.url,
            socket_timeout=self.socket_timeout_seconds,
            socket_connect_timeout=self.socket_timeout_seconds,
        )
