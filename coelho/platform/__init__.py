"""The local platform: Kafka (KRaft), Redis, MLflow, Dagster, the API and the producers as
processes under `COELHO_HOME`, started and stopped by `coelho up` / `coelho down`.

Heavy imports stay inside functions; `manager.Platform` is the entry point.
"""

from coelho.platform.kafka import create_topics, ensure_topics
from coelho.platform.manager import (
    SERVICES,
    Platform,
    ServiceStatus,
    parse_services,
    service_names,
)
from coelho.platform.process import PlatformError, free_port

__all__ = [
    "SERVICES",
    "Platform",
    "PlatformError",
    "ServiceStatus",
    "create_topics",
    "ensure_topics",
    "free_port",
    "parse_services",
    "service_names",
]
