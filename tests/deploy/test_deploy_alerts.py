"""Alert rules pass promtool, every alert fires in a promtool unit test, inhibition works.

The inhibition test runs the real Alertmanager (Debian's prometheus-alertmanager) on loopback,
posts alerts and reads back which ones it mutes.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from deploy_helpers import ALERTMANAGER, ROOT, all_rules, require_tool, rule_files

from coelho_pipelines.telemetry import LATENCY_BUCKETS

PROMTOOL_TESTS = ROOT / "tests" / "deploy" / "promtool" / "alerts.test.yaml"
COMPONENTS = {
    "api",
    "producers",
    "ingestion",
    "learner",
    "kafka",
    "redis",
    "postgresql",
    "minio",
    "mlflow",
    "dagster",
}


def test_promtool_accepts_every_rule_file() -> None:
    promtool = require_tool("promtool")
    files = rule_files()
    assert len(files) >= 4
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, files)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_promtool_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "test", "rules", str(PROMTOOL_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_shown_firing_by_a_unit_test() -> None:
    tests = yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    alerts = {rule["alert"] for rule in all_rules()}
    assert alerts - fired == set(), "alerts that no unit test shows firing"
    assert fired <= alerts


def test_issue_alerts_exist() -> None:
    alerts = {rule["alert"] for rule in all_rules()}
    assert {
        "CoelhoApiDown",
        "CoelhoApiHighErrorRate",
        "CoelhoApiHighLatency",
        "CoelhoPredictionErrors",
        "CoelhoProducersNotSending",
        "CoelhoIngestionLagHigh",
        "CoelhoDeadLetterRatioHigh",
        "CoelhoLearnerNotLearning",
        "CoelhoDriftDetected",
        "CoelhoRedisDown",
        "CoelhoPostgresqlDown",
        "CoelhoMlflowDown",
        "CoelhoMinioDown",
        "CoelhoKafkaBrokerDown",
    } <= alerts


def test_alerts_carry_routing_labels_and_annotations() -> None:
    for rule in all_rules():
        labels = rule["labels"]
        assert labels["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert labels["component"] in COMPONENTS, rule["alert"]
        dependencies = set(labels.get("depends_on", "").split(",")) - {""}
        assert dependencies <= COMPONENTS, rule["alert"]
        assert labels["component"] not in dependencies, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_latency_alert_threshold_is_a_bucket_the_histogram_reaches() -> None:
    (rule,) = [r for r in all_rules() if r["alert"] == "CoelhoApiHighLatency"]
    match = re.search(
        r"histogram_quantile\(\s*([0-9.]+),.*\)\s*>\s*([0-9.]+)\s*$", rule["expr"], re.S
    )
    assert match, rule["expr"]
    threshold = float(match.group(2))
    finite = [float(b) for b in LATENCY_BUCKETS]
    # A bucket boundary at the threshold and buckets above it: quantiles beyond it are measured,
    # not clipped to the largest bucket.
    assert threshold in finite
    assert max(finite) > threshold
    assert "coelho_api_request_latency_seconds_bucket" in rule["expr"]


# Alertmanager -----------------------------------------------------------------------------------


def test_amtool_accepts_the_alertmanager_config() -> None:
    amtool = require_tool("amtool")
    result = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_inhibition_sources_are_real_alerts_and_targets_match_some() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    alerts = {rule["alert"]: {**rule["labels"], "alertname": rule["alert"]} for rule in all_rules()}
    for inhibit in config["inhibit_rules"]:
        (source,) = [m for m in inhibit["source_matchers"] if m.startswith("alertname")]
        name = source.split('"')[1]
        if name == "InfoInhibitor":  # kube-prometheus-stack's own
            continue
        assert name in alerts, name
        targets = [
            a for a in alerts.values() if all(matches(m, a) for m in inhibit["target_matchers"])
        ]
        assert targets, f"{name} inhibits nothing"
        assert name not in {t["alertname"] for t in targets}, f"{name} would inhibit itself"


def matches(matcher: str, labels: dict[str, str]) -> bool:
    """One Alertmanager matcher (`name op "value"`) against a label set (anchored regex)."""
    name, op, value = re.fullmatch(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"(.*)"\s*', matcher).groups()
    actual = labels.get(name, "")
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    found = re.fullmatch(value, actual) is not None
    return found if op == "=~" else not found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def alertmanager(tmp_path: Path):
    """A real Alertmanager on loopback with the chart's configuration; its API base URL."""
    binary = require_tool("prometheus-alertmanager")
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={ALERTMANAGER}",
            f"--storage.path={tmp_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api/v2"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/status", timeout=1).read()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(
                        f"alertmanager exited: {(tmp_path / 'alertmanager.log').read_text()}"
                    )
                time.sleep(0.1)
        else:
            pytest.fail("alertmanager did not start within 10 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def post_alerts(url: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels, "annotations": {}} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{url}/alerts", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    urllib.request.urlopen(request, timeout=5).read()


def inhibited(url: str, expected: int) -> dict[str, bool]:
    """alertname/use_case -> muted, once Alertmanager holds `expected` alerts (bounded wait)."""
    for _ in range(50):
        alerts = json.loads(urllib.request.urlopen(f"{url}/alerts", timeout=5).read())
        if len(alerts) >= expected:
            return {
                a["labels"]["alertname"] + "/" + a["labels"].get("use_case", ""): bool(
                    a["status"]["inhibitedBy"]
                )
                for a in alerts
            }
        time.sleep(0.1)
    pytest.fail(f"alertmanager holds {len(alerts)} alerts, expected {expected}")


def rule_labels(alert: str, **extra: str) -> dict[str, str]:
    (rule,) = [r for r in all_rules() if r["alert"] == alert]
    return {"alertname": alert, **rule["labels"], **extra}


def test_kafka_down_mutes_the_alerts_that_depend_on_kafka(alertmanager: str) -> None:
    post_alerts(
        alertmanager,
        [
            rule_labels("CoelhoKafkaBrokerDown"),
            rule_labels("CoelhoProducersNotSending", use_case="tfd"),
            rule_labels("CoelhoIngestionLagHigh", use_case="tfd"),
            rule_labels("CoelhoLearnerNotLearning", use_case="eta"),
            rule_labels("CoelhoDeadLetterRatioHigh", use_case="tfd"),
            rule_labels("CoelhoApiHighErrorRate"),
        ],
    )
    assert inhibited(alertmanager, 6) == {
        "CoelhoKafkaBrokerDown/": False,
        "CoelhoProducersNotSending/tfd": True,
        "CoelhoIngestionLagHigh/tfd": True,
        "CoelhoLearnerNotLearning/eta": True,
        # Bad events are not Kafka's fault; the API does not use Kafka.
        "CoelhoDeadLetterRatioHigh/tfd": False,
        "CoelhoApiHighErrorRate/": False,
    }


def test_postgresql_down_mutes_mlflow_and_dagster(alertmanager: str) -> None:
    post_alerts(
        alertmanager,
        [
            rule_labels("CoelhoPostgresqlDown"),
            rule_labels("CoelhoMlflowDown"),
            rule_labels("CoelhoDagsterDown", deployment="coelho-dagster-daemon"),
            rule_labels("CoelhoRedisDown"),
            rule_labels("CoelhoApiDown"),
            rule_labels("CoelhoApiHighLatency"),
        ],
    )
    assert inhibited(alertmanager, 6) == {
        "CoelhoPostgresqlDown/": False,
        "CoelhoMlflowDown/": True,
        "CoelhoDagsterDown/": True,
        "CoelhoRedisDown/": False,
        "CoelhoApiDown/": False,
        # The API being down explains its latency alert.
        "CoelhoApiHighLatency/": True,
    }
