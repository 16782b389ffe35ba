"""Every metric an alert or a dashboard queries is exported: by the code (telemetry.py) or by an
exporter the chart deploys."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from deploy_helpers import DASHBOARDS, ROOT, all_rules
from prometheus_client import Counter, Gauge, Histogram

from coelho_pipelines import telemetry

# Metrics of the exporters the chart deploys (documented allow-list).
EXPORTER_METRICS = {
    # Prometheus itself
    "up": "Prometheus: scrape health of every target",
    "ALERTS": "Prometheus: firing and pending alerts",
    # kube-state-metrics (kube-prometheus-stack)
    "kube_statefulset_replicas": "kube-state-metrics",
    "kube_statefulset_status_replicas_ready": "kube-state-metrics",
    "kube_deployment_spec_replicas": "kube-state-metrics",
    "kube_deployment_status_replicas_available": "kube-state-metrics",
    "kube_job_labels": "kube-state-metrics (label_dagster_job via metricLabelsAllowlist)",
    "kube_job_status_succeeded": "kube-state-metrics",
    "kube_job_status_failed": "kube-state-metrics",
    "kube_job_status_active": "kube-state-metrics",
    "kube_job_status_start_time": "kube-state-metrics",
    "kube_job_status_completion_time": "kube-state-metrics",
    # redis_exporter (Bitnami Redis, metrics.enabled)
    "redis_up": "redis_exporter",
    # postgres_exporter (Bitnami PostgreSQL, metrics.enabled)
    "pg_up": "postgres_exporter",
    # MinIO's own /minio/v2/metrics/cluster
    "minio_cluster_nodes_offline_total": "MinIO",
}

PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def exported_names() -> set[str]:
    """The sample names the telemetry module's collectors expose."""
    names = set()
    for value in vars(telemetry).values():
        if isinstance(value, Counter):
            names |= {f"{value._name}_total", f"{value._name}_created"}
        elif isinstance(value, Histogram):
            names |= {f"{value._name}_{s}" for s in ("bucket", "sum", "count", "created")}
        elif isinstance(value, Gauge):
            names.add(value._name)
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names, label values, durations or grouping labels."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # grouping labels
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.groups()
        if call or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                queries.append((f"{path.name}: {panel['title']}", target["expr"]))
    return queries


def test_the_extractor_finds_metric_names_only() -> None:
    expr = (
        'sum by (use_case, le) (rate(coelho_x_bucket{route="/a", status=~"5.."}[5m]))'
        " / on (job) group_left (pod) max(up{job='a'}) > 0.5 and absent(foo_total offset 5m)"
    )
    assert metric_names(expr) == {"coelho_x_bucket", "up", "foo_total"}
    assert metric_names(
        "histogram_quantile(0.95, sum by (le) (rate(m_bucket[$__rate_interval])))"
    ) == {"m_bucket"}


def test_telemetry_names_include_the_suffixes_prometheus_client_adds() -> None:
    names = exported_names()
    assert "coelho_api_requests_total" in names
    assert "coelho_api_request_latency_seconds_bucket" in names
    assert "coelho_learner_running" in names
    assert "coelho_api_requests" not in names


@pytest.mark.parametrize(
    "where, expr",
    [(f"alert {r['alert']}", r["expr"]) for r in all_rules()] + dashboard_queries(),
)
def test_every_queried_metric_exists(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    unknown = names - exported_names() - EXPORTER_METRICS.keys()
    assert not unknown, f"{where}: unknown metrics {sorted(unknown)}"


def test_dashboards_cover_the_issue_topics() -> None:
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS.glob("*.json")}
    assert titles == {
        "Coelho / Platform overview",
        "Coelho / ML pipeline",
        "Coelho / API",
        "Coelho / Producers and ingestion",
    }
    queried = set().union(*(metric_names(expr) for _, expr in dashboard_queries()))
    # Every metric the code exports appears on some dashboard.
    families = {
        re.sub(r"_(total|bucket|sum|count|created)$", "", name) for name in exported_names()
    }
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in queried}
    assert families - shown == set()


def test_dashboards_are_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "grafana_dashboards", ROOT / "deploy" / "grafana_dashboards.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered = module.render()
    assert set(rendered) == {p.name for p in DASHBOARDS.glob("*.json")}
    for name, text in rendered.items():
        assert (DASHBOARDS / name).read_text() == text, (
            f"regenerate: python deploy/{Path(spec.origin).name}"
        )
    for text in rendered.values():
        dashboard = json.loads(text)
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        assert dashboard["templating"]["list"][0]["type"] == "datasource"
