"""Generate the Grafana dashboards of the Helm chart (helm/coelho/files/dashboards/*.json).

Run `python deploy/grafana_dashboards.py` after editing; tests/deploy checks the JSON files are
what this script writes and that every query uses a metric the platform really exports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "helm" / "coelho" / "files" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
BATCH_JOBS = 'kube_job_labels{label_dagster_job=~".+_batch_training"}'


def _target(expr: str, legend: str, ref: int) -> dict:
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "refId": chr(ord("A") + ref),
    }


def panel(title: str, *queries: tuple[str, str], unit: str = "short", kind: str = "timeseries"):
    """One panel: (expr, legend) queries. Positions are filled in by `dashboard`."""
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
        if kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        "targets": [_target(expr, legend, i) for i, (expr, legend) in enumerate(queries)],
    }


def stat(title: str, expr: str, unit: str = "short") -> dict:
    return panel(title, (expr, title), unit=unit, kind="stat")


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def dashboard(uid: str, title: str, panels: list[dict]) -> dict:
    """Lay panels out left to right (stats 4 wide, graphs 12 wide), rows full width."""
    x = y = height = 0
    for number, item in enumerate(panels, start=1):
        item["id"] = number
        width = 24 if item["type"] == "row" else 4 if item["type"] == "stat" else 12
        item_height = 1 if item["type"] == "row" else 4 if item["type"] == "stat" else 8
        if x + width > 24 or item["type"] == "row":
            x, y = 0, y + height
            height = 0
        item["gridPos"] = {"x": x, "y": y, "w": width, "h": item_height}
        x += width
        height = max(height, item_height)
        if item["type"] == "row":
            x, y, height = 0, y + item_height, 0
    return {
        "uid": uid,
        "title": title,
        "tags": ["coelho"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def quantile(q: float, metric: str, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))"


def batch(status: str) -> str:
    return (
        f"sum by (label_dagster_job) (kube_job_status_{status}"
        f" * on (namespace, job_name) group_left (label_dagster_job) {BATCH_JOBS})"
    )


def overview() -> dict:
    ready = "kube_deployment_status_replicas_available"
    return dashboard(
        "coelho-overview",
        "Coelho / Platform overview",
        [
            row("Services"),
            stat("API targets up", 'sum(up{job="coelho-api"})'),
            stat("Producer targets up", 'sum(up{job="coelho-producers"})'),
            stat(
                "Kafka brokers ready",
                'sum(kube_statefulset_status_replicas_ready{statefulset="coelho-kafka-controller"})',
            ),
            stat("Redis up", "max(redis_up)"),
            stat("PostgreSQL up", "max(pg_up)"),
            stat("MinIO nodes offline", "max(minio_cluster_nodes_offline_total)"),
            stat("MLflow available", f'sum({ready}{{deployment="coelho-mlflow"}})'),
            stat(
                "Dagster deployments available", f'sum({ready}{{deployment=~"coelho-dagster-.+"}})'
            ),
            stat(
                "Firing Coelho alerts", 'count(ALERTS{alertstate="firing", alertname=~"Coelho.+"})'
            ),
            row("Flow"),
            panel(
                "Events per second along the pipeline",
                (f"sum(rate(coelho_producer_messages_sent_total[{RATE}]))", "produced"),
                (f"sum(rate(coelho_ingestion_events_total[{RATE}]))", "ingested to Delta"),
                (f"sum(rate(coelho_learner_events_total[{RATE}]))", "learned"),
                (f"sum(rate(coelho_api_predictions_total[{RATE}]))", "predictions served"),
                unit="ops",
            ),
            panel(
                "Backlog",
                ("sum by (use_case) (coelho_ingestion_lag)", "ingestion {{use_case}}"),
                ("sum by (use_case) (coelho_learner_consumer_lag)", "learner {{use_case}}"),
            ),
            panel(
                "Errors per second",
                (f"sum(rate(coelho_producer_errors_total[{RATE}]))", "producer delivery"),
                (f"sum(rate(coelho_ingestion_dead_letters_total[{RATE}]))", "dead letters"),
                (f"sum(rate(coelho_learner_errors_total[{RATE}]))", "learner"),
                (f"sum(rate(coelho_api_prediction_errors_total[{RATE}]))", "predictions"),
                (
                    f'sum(rate(coelho_api_requests_total{{status=~"5.."}}[{RATE}]))',
                    "API 5xx",
                ),
                unit="ops",
            ),
            panel(
                "Firing alerts",
                ('sum by (alertname) (ALERTS{alertstate="firing"})', "{{alertname}}"),
            ),
        ],
    )


def ml_pipeline() -> dict:
    return dashboard(
        "coelho-ml-pipeline",
        "Coelho / ML pipeline",
        [
            row("Incremental learners (River)"),
            panel(
                "Learning throughput",
                ("sum by (use_case) (coelho_learner_events_per_second)", "{{use_case}} (learner)"),
                (
                    f"sum by (use_case) (rate(coelho_learner_events_total[{RATE}]))",
                    "{{use_case}} (rate)",
                ),
                unit="ops",
            ),
            panel(
                "Primary prequential metric",
                (
                    "max by (use_case, metric) (coelho_learner_primary_metric)",
                    "{{use_case}} {{metric}}",
                ),
            ),
            panel(
                "Consumer lag",
                ("sum by (use_case) (coelho_learner_consumer_lag)", "{{use_case}}"),
            ),
            panel(
                "Learners running",
                ("max by (use_case) (coelho_learner_running)", "{{use_case}}"),
            ),
            panel(
                "Drifts detected (per hour)",
                ("sum by (use_case) (increase(coelho_learner_drifts_total[1h]))", "{{use_case}}"),
            ),
            panel(
                "Online challengers: leaderboard metric",
                (
                    "max by (use_case, candidate, metric) (coelho_learner_candidate_metric)",
                    "{{use_case}} {{candidate}} {{metric}}",
                ),
                (
                    "max by (use_case, candidate) (coelho_learner_served_candidate)",
                    "{{use_case}} serves {{candidate}}",
                ),
            ),
            panel(
                "Promotions (per hour) and decision threshold",
                (
                    "sum by (use_case, candidate) (increase(coelho_learner_promotions_total[1h]))",
                    "{{use_case}} promoted {{candidate}}",
                ),
                (
                    "max by (use_case) (coelho_learner_decision_threshold)",
                    "{{use_case}} threshold",
                ),
            ),
            panel(
                "Errors and skipped events",
                (
                    f"sum by (use_case, kind) (rate(coelho_learner_errors_total[{RATE}]))",
                    "{{use_case}} {{kind}}",
                ),
                (
                    f"sum by (use_case) (rate(coelho_learner_bad_events_total[{RATE}]))",
                    "{{use_case}} bad events",
                ),
                unit="ops",
            ),
            panel(
                "Snapshot to MLflow / publish to Redis, p95",
                (
                    quantile(0.95, "coelho_learner_snapshot_latency_seconds", "use_case"),
                    "snapshot {{use_case}}",
                ),
                (
                    quantile(0.95, "coelho_learner_publish_latency_seconds", "use_case"),
                    "publish {{use_case}}",
                ),
                unit="s",
            ),
            panel(
                "Live model size",
                ("max by (use_case) (coelho_learner_model_bytes)", "{{use_case}}"),
                unit="bytes",
            ),
            row("Batch training (Dagster run Jobs, from kube-state-metrics)"),
            panel(
                "Batch training runs",
                (batch("succeeded"), "{{label_dagster_job}} succeeded"),
                (batch("failed"), "{{label_dagster_job}} failed"),
                (batch("active"), "{{label_dagster_job}} running"),
            ),
            panel(
                "Batch training duration",
                (
                    "max by (label_dagster_job) ((kube_job_status_completion_time"
                    " - kube_job_status_start_time)"
                    f" * on (namespace, job_name) group_left (label_dagster_job) {BATCH_JOBS})",
                    "{{label_dagster_job}}",
                ),
                unit="s",
            ),
        ],
    )


def api() -> dict:
    latency = "coelho_api_request_latency_seconds"
    return dashboard(
        "coelho-api",
        "Coelho / API",
        [
            row("Requests"),
            panel(
                "Requests per second by route",
                (
                    f"sum by (route, method) (rate(coelho_api_requests_total[{RATE}]))",
                    "{{method}} {{route}}",
                ),
                unit="reqps",
            ),
            panel(
                "Responses by status",
                (f"sum by (status) (rate(coelho_api_requests_total[{RATE}]))", "{{status}}"),
                unit="reqps",
            ),
            panel(
                "Error ratio (5xx)",
                (
                    f'sum(rate(coelho_api_requests_total{{status=~"5.."}}[{RATE}]))'
                    f" / sum(rate(coelho_api_requests_total[{RATE}]))",
                    "5xx",
                ),
                unit="percentunit",
            ),
            panel(
                "Latency",
                (quantile(0.5, latency), "p50"),
                (quantile(0.95, latency), "p95"),
                (quantile(0.99, latency), "p99"),
                unit="s",
            ),
            panel(
                "Latency p95 by route",
                (quantile(0.95, latency, "route"), "{{route}}"),
                unit="s",
            ),
            row("Predictions and models"),
            panel(
                "Predictions per second",
                (
                    f"sum by (use_case, source) (rate(coelho_api_predictions_total[{RATE}]))",
                    "{{use_case}} {{source}}",
                ),
                (
                    f"sum by (use_case, source) (rate(coelho_api_prediction_errors_total[{RATE}]))",
                    "{{use_case}} {{source}} errors",
                ),
                unit="ops",
            ),
            panel(
                "Model load time p95",
                (
                    quantile(0.95, "coelho_api_model_load_seconds", "use_case, source"),
                    "{{use_case}} {{source}}",
                ),
                unit="s",
            ),
            panel(
                "Model cache hits per second",
                (
                    f"sum by (use_case, source) (rate(coelho_api_model_cache_hits_total[{RATE}]))",
                    "{{use_case}} {{source}}",
                ),
                unit="ops",
            ),
            row("SQL"),
            panel(
                "SQL query time p95",
                (quantile(0.95, "coelho_api_sql_duration_seconds", "use_case"), "{{use_case}}"),
                unit="s",
            ),
            panel(
                "Rejected or failed SQL queries",
                (f"sum by (use_case) (rate(coelho_api_sql_errors_total[{RATE}]))", "{{use_case}}"),
                unit="ops",
            ),
        ],
    )


def producers_ingestion() -> dict:
    return dashboard(
        "coelho-producers-ingestion",
        "Coelho / Producers and ingestion",
        [
            row("Producers"),
            panel(
                "Messages acknowledged per second",
                (
                    f"sum by (use_case) (rate(coelho_producer_messages_sent_total[{RATE}]))",
                    "{{use_case}}",
                ),
                unit="ops",
            ),
            panel(
                "Delivery errors per second",
                (f"sum by (use_case) (rate(coelho_producer_errors_total[{RATE}]))", "{{use_case}}"),
                unit="ops",
            ),
            panel(
                "Send latency p95",
                (
                    quantile(0.95, "coelho_producer_send_latency_seconds", "use_case"),
                    "{{use_case}}",
                ),
                unit="s",
            ),
            panel(
                "Message size p50",
                (quantile(0.5, "coelho_producer_message_bytes", "use_case"), "{{use_case}}"),
                unit="bytes",
            ),
            panel(
                "Generator state",
                ("max(coelho_producer_fraud_ratio)", "tfd fraud ratio"),
                ("max(coelho_producer_active_sessions)", "ecci open sessions"),
            ),
            row("Ingestion (Kafka to Delta)"),
            panel(
                "Events committed to Delta per second",
                (
                    f"sum by (use_case) (rate(coelho_ingestion_events_total[{RATE}]))",
                    "{{use_case}}",
                ),
                (
                    f"sum by (use_case) (rate(coelho_ingestion_dead_letters_total[{RATE}]))",
                    "{{use_case}} dead letters",
                ),
                unit="ops",
            ),
            panel(
                "Dead-letter ratio",
                (
                    f"sum by (use_case) (rate(coelho_ingestion_dead_letters_total[{RATE}]))"
                    f" / (sum by (use_case) (rate(coelho_ingestion_events_total[{RATE}]))"
                    f" + sum by (use_case) (rate(coelho_ingestion_dead_letters_total[{RATE}])))",
                    "{{use_case}}",
                ),
                unit="percentunit",
            ),
            panel(
                "Lag by partition",
                (
                    "max by (use_case, partition) (coelho_ingestion_lag)",
                    "{{use_case}} p{{partition}}",
                ),
            ),
            panel(
                "Delta commit time p95",
                (
                    quantile(0.95, "coelho_ingestion_commit_latency_seconds", "use_case"),
                    "{{use_case}}",
                ),
                unit="s",
            ),
        ],
    )


DASHBOARDS = {
    "overview": overview,
    "ml-pipeline": ml_pipeline,
    "api": api,
    "producers-ingestion": producers_ingestion,
}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{name}.json": json.dumps(build(), indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
