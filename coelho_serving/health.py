"""Dependency health: Kafka, Redis, MLflow and the lakehouse, probed concurrently with a timeout.

Each probe is blocking and runs in a thread; a probe that does not answer within the timeout
counts as down. The overall status is `ok`, `degraded` (an optional dependency is down) or
`down` (a required one is, and /health answers 503).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from coelho_pipelines.naming import raw_table_uri
from coelho_serving.config import DEPENDENCIES, ServingConfig

CONSEQUENCES = {
    "kafka": "new events are not arriving; serving is unaffected",
    "redis": "incremental predictions fall back to the latest MLflow snapshot; "
    "status, live metrics and samples are unavailable",
    "mlflow": "batch models, snapshots and run metrics are unavailable",
    "lakehouse": "SQL endpoints are unavailable",
}


def check_kafka(config: ServingConfig) -> str:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(
        {
            "bootstrap.servers": config.settings.kafka_bootstrap_servers,
            "socket.timeout.ms": int(config.dependency_timeout_seconds * 1000),
            "log_level": 0,
        }
    )
    metadata = admin.list_topics(timeout=config.dependency_timeout_seconds)
    return f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)"


def check_redis(config: ServingConfig, client: Any) -> str:
    client.ping()
    return "ping ok"


def check_mlflow(config: ServingConfig) -> str:
    uri = config.settings.mlflow_tracking_uri
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        response = httpx.get(uri.rstrip("/") + "/health", timeout=config.dependency_timeout_seconds)
        response.raise_for_status()
        return f"tracking server answered {response.status_code}"
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else uri)
        if not path.exists():
            raise FileNotFoundError(f"tracking directory {path} does not exist")
        return f"local store {path}"
    return f"store {parsed.scheme}:// not probed"


def check_lakehouse(config: ServingConfig, storage_options: dict[str, str]) -> str:
    uri = config.settings.lakehouse_uri
    if "://" not in uri or uri.startswith("file://"):
        path = Path(uri.removeprefix("file://"))
        if not path.is_dir():
            raise FileNotFoundError(f"lakehouse directory {path} does not exist")
        return f"local lakehouse {path}"
    from deltalake import DeltaTable

    from coelho_pipelines.use_cases import all_specs

    found = sum(
        DeltaTable.is_deltatable(raw_table_uri(uri, spec), storage_options) for spec in all_specs()
    )
    return f"{found} table(s) reachable under {uri}"


class HealthChecker:
    """Runs the probes; `report()` is the /health body and whether it is healthy."""

    def __init__(self, config: ServingConfig, probes: dict[str, Callable[[], str]]) -> None:
        self.config = config
        self.probes = probes

    async def _probe(self, name: str) -> dict[str, Any]:
        started = time.perf_counter()
        required = name in self.config.required
        try:
            detail = await asyncio.wait_for(
                asyncio.to_thread(self.probes[name]),
                timeout=self.config.dependency_timeout_seconds + 1,
            )
            ok = True
        except TimeoutError:
            ok, detail = False, "no answer in time"
        except Exception as error:  # noqa: BLE001 - any failure means "down", with its reason
            ok, detail = False, f"{type(error).__name__}: {error}"
        result = {
            "ok": ok,
            "required": required,
            "detail": detail,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if not ok:
            result["impact"] = CONSEQUENCES[name]
        return result

    async def report(self) -> tuple[dict[str, Any], bool]:
        names = [name for name in DEPENDENCIES if name in self.probes]
        results = await asyncio.gather(*(self._probe(name) for name in names))
        dependencies = dict(zip(names, results, strict=True))
        required_down = [n for n, r in dependencies.items() if r["required"] and not r["ok"]]
        any_down = any(not r["ok"] for r in dependencies.values())
        status = "down" if required_down else "degraded" if any_down else "ok"
        return {"status": status, "dependencies": dependencies}, not required_down
