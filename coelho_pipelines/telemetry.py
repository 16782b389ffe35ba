"""Every Prometheus metric the platform exports, declared once.

Dashboards and alert rules in `helm/` may only use names declared here (a test checks).
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SIZE_BUCKETS = (256, 512, 1024, 2048, 4096, 16384, 65536, 262144, 1 << 20, 8 << 20, 64 << 20)

# Producers
PRODUCER_MESSAGES = Counter(
    "coelho_producer_messages_sent", "Messages acknowledged by Kafka", ["use_case"]
)
PRODUCER_ERRORS = Counter(
    "coelho_producer_errors", "Messages Kafka failed to deliver", ["use_case"]
)
PRODUCER_LATENCY = Histogram(
    "coelho_producer_send_latency_seconds",
    "Time from produce() to delivery report",
    ["use_case"],
    buckets=LATENCY_BUCKETS,
)
PRODUCER_MESSAGE_BYTES = Histogram(
    "coelho_producer_message_bytes", "Serialized message size", ["use_case"], buckets=SIZE_BUCKETS
)
PRODUCER_FRAUD_RATIO = Gauge(
    "coelho_producer_fraud_ratio", "Share of produced tfd events that are fraud"
)
PRODUCER_ACTIVE_SESSIONS = Gauge(
    "coelho_producer_active_sessions", "Open sessions in the ecci generator"
)

# Ingestion
INGESTED_EVENTS = Counter("coelho_ingestion_events", "Events committed to Delta", ["use_case"])
DEAD_LETTERS = Counter("coelho_ingestion_dead_letters", "Events sent to dead letters", ["use_case"])
INGESTION_LAG = Gauge(
    "coelho_ingestion_lag", "Messages not yet committed to Delta", ["use_case", "partition"]
)
INGESTION_COMMIT_LATENCY = Histogram(
    "coelho_ingestion_commit_latency_seconds",
    "Delta commit time of one ingestion batch",
    ["use_case"],
    buckets=LATENCY_BUCKETS,
)

# Incremental learner
LEARNER_EVENTS = Counter("coelho_learner_events", "Events learned", ["use_case"])
LEARNER_EVENTS_PER_SECOND = Gauge(
    "coelho_learner_events_per_second", "Recent learning throughput", ["use_case"]
)
LEARNER_LAG = Gauge("coelho_learner_consumer_lag", "Messages not yet learned", ["use_case"])
LEARNER_PRIMARY_METRIC = Gauge(
    "coelho_learner_primary_metric", "Primary prequential metric", ["use_case", "metric"]
)
LEARNER_SNAPSHOT_LATENCY = Histogram(
    "coelho_learner_snapshot_latency_seconds",
    "Time to write a snapshot to MLflow",
    ["use_case"],
    buckets=LATENCY_BUCKETS,
)
LEARNER_PUBLISH_LATENCY = Histogram(
    "coelho_learner_publish_latency_seconds",
    "Time to publish the live model to Redis",
    ["use_case"],
    buckets=LATENCY_BUCKETS,
)
LEARNER_PUBLISH_BYTES = Gauge(
    "coelho_learner_model_bytes", "Size of the last published live model", ["use_case"]
)
LEARNER_ERRORS = Counter("coelho_learner_errors", "Learner errors by kind", ["use_case", "kind"])
LEARNER_BAD_EVENTS = Counter("coelho_learner_bad_events", "Events skipped as invalid", ["use_case"])
LEARNER_DRIFTS = Counter("coelho_learner_drifts", "Drifts detected", ["use_case"])
LEARNER_RUNNING = Gauge("coelho_learner_running", "1 while a learner runs", ["use_case"])
LEARNER_PROMOTIONS = Counter(
    "coelho_learner_promotions",
    "Switches of the served online candidate, by the candidate promoted",
    ["use_case", "candidate"],
)
LEARNER_SERVED_CANDIDATE = Gauge(
    "coelho_learner_served_candidate",
    "1 for the served online candidate",
    ["use_case", "candidate"],
)
LEARNER_CANDIDATE_METRIC = Gauge(
    "coelho_learner_candidate_metric",
    "Leaderboard metric of each online candidate",
    ["use_case", "candidate", "metric"],
)
LEARNER_DECISION_THRESHOLD = Gauge(
    "coelho_learner_decision_threshold", "Decision threshold of the served classifier", ["use_case"]
)

# API
API_REQUESTS = Counter("coelho_api_requests", "HTTP requests", ["route", "method", "status"])
API_LATENCY = Histogram(
    "coelho_api_request_latency_seconds",
    "HTTP request latency",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
API_PREDICTIONS = Counter("coelho_api_predictions", "Predictions served", ["use_case", "source"])
API_PREDICTION_ERRORS = Counter(
    "coelho_api_prediction_errors", "Predictions that failed", ["use_case", "source"]
)
API_MODEL_LOAD = Histogram(
    "coelho_api_model_load_seconds",
    "Model load time",
    ["use_case", "source"],
    buckets=LATENCY_BUCKETS,
)
API_CACHE_HITS = Counter("coelho_api_model_cache_hits", "Model cache hits", ["use_case", "source"])
API_SQL_DURATION = Histogram(
    "coelho_api_sql_duration_seconds", "SQL query time", ["use_case"], buckets=LATENCY_BUCKETS
)
API_SQL_ERRORS = Counter("coelho_api_sql_errors", "Rejected or failed SQL queries", ["use_case"])


def serve_metrics(port: int, addr: str | None = None) -> None:
    """Expose the default registry on http://addr:port/metrics (0 disables it).

    `addr` defaults to COELHO_METRICS_ADDR, else 127.0.0.1 (the Helm chart sets 0.0.0.0 so that
    Prometheus can scrape the pod).
    """
    if port:
        start_http_server(port, addr=addr or os.environ.get("COELHO_METRICS_ADDR", "127.0.0.1"))
