"""Settings: environment variables with local defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from coelho_pipelines.naming import table_uri
from coelho_pipelines.settings import Settings, port


def test_defaults_point_at_local_services(monkeypatch, tmp_path: Path) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "MLFLOW_TRACKING_URI",
                 "COELHO_LAKEHOUSE_URI", "COELHO_API_KEY", "COELHO_KAFKA_PORT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COELHO_HOME", str(tmp_path))
    settings = Settings.from_env()
    assert settings.home == tmp_path.resolve()
    assert settings.lakehouse_uri == str(tmp_path.resolve() / "lakehouse")
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.api_key is None


def test_ports_and_urls_follow_overrides(monkeypatch) -> None:
    monkeypatch.setenv("COELHO_MLFLOW_PORT", "5055")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert port("mlflow") == 5055
    assert Settings.from_env().mlflow_tracking_uri == "http://127.0.0.1:5055"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:80")
    assert Settings.from_env().mlflow_tracking_uri == "http://mlflow:80"


def test_table_uri_layout() -> None:
    assert table_uri("s3://bucket/lake/", "eta") == "s3://bucket/lake/delta/eta"


def test_storage_options_come_from_prefixed_variables(monkeypatch) -> None:
    from coelho_pipelines.resources import LakehouseResource
    from coelho_pipelines.settings import storage_options_from_env

    monkeypatch.setenv("COELHO_STORAGE_AWS_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("COELHO_STORAGE_AWS_ALLOW_HTTP", "true")
    monkeypatch.setenv("COELHO_LAKEHOUSE_URI", "s3://lake")
    expected = {"aws_endpoint_url": "http://minio:9000", "aws_allow_http": "true"}
    assert storage_options_from_env() == expected
    resource = LakehouseResource.from_env()
    assert resource.storage_options == expected
    assert resource.table_uri("tfd") == "s3://lake/delta/tfd" and not resource.is_local


def test_every_port_has_its_default(monkeypatch) -> None:
    from coelho_pipelines.settings import DEFAULT_PORTS, port_env

    for service in DEFAULT_PORTS:
        monkeypatch.delenv(port_env(service), raising=False)
    assert {service: port(service) for service in DEFAULT_PORTS} == DEFAULT_PORTS
    assert port_env("kafka_controller") == "COELHO_KAFKA_CONTROLLER_PORT"


def test_empty_variables_count_as_unset(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COELHO_HOME", str(tmp_path))
    for name in ("COELHO_REDIS_PORT", "REDIS_URL", "COELHO_LAKEHOUSE_URI", "COELHO_API_KEY"):
        monkeypatch.setenv(name, "")
    settings = Settings.from_env()
    assert port("redis") == 6379
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.lakehouse_uri == str(tmp_path.resolve() / "lakehouse")
    assert settings.api_key is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [("abc", "valid integer"), ("70000", "less than or equal to 65535"), ("-1", "greater")],
)
def test_a_bad_port_names_its_variable(monkeypatch, value: str, problem: str) -> None:
    from coelho_pipelines.settings import SettingsError

    monkeypatch.setenv("COELHO_REDIS_PORT", value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    for read in (lambda: port("redis"), Settings.from_env):
        with pytest.raises(SettingsError, match=f"COELHO_REDIS_PORT='{value}': .*{problem}"):
            read()


def test_a_bad_setting_stops_the_code_location_and_the_api_with_a_value_error(
    monkeypatch,
) -> None:
    """`SettingsError` is a `ValueError`: `coelho serve` reports it in one line."""
    from coelho_pipelines.resources import build_resources
    from coelho_serving.config import ServingConfig

    monkeypatch.setenv("COELHO_MLFLOW_PORT", "5000x")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for load in (build_resources, ServingConfig.from_env):
        with pytest.raises(ValueError, match="COELHO_MLFLOW_PORT='5000x'"):
            load()


def test_serving_variables_default_and_name_a_bad_value(monkeypatch) -> None:
    from coelho_serving.config import ServingConfig

    for name in ("COELHO_LIVE_CHECK_SECONDS", "COELHO_MLFLOW_CHECK_SECONDS",
                 "COELHO_REDIS_RETRY_SECONDS", "COELHO_CORS_ORIGINS"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COELHO_DEPENDENCY_TIMEOUT_SECONDS", "")
    config = ServingConfig.from_env()
    assert (config.live_check_seconds, config.mlflow_check_seconds) == (0.5, 10.0)
    assert (config.redis_retry_seconds, config.dependency_timeout_seconds) == (1.0, 2.0)
    assert config.cors_origins == ()
    monkeypatch.setenv("COELHO_LIVE_CHECK_SECONDS", "0.25")
    assert ServingConfig.from_env().live_check_seconds == 0.25
    for value, problem in (("-1", "greater than or equal to 0"), ("soon", "valid number")):
        monkeypatch.setenv("COELHO_LIVE_CHECK_SECONDS", value)
        with pytest.raises(ValueError, match=f"COELHO_LIVE_CHECK_SECONDS='{value}': .*{problem}"):
            ServingConfig.from_env()


def test_run_options_default_and_name_a_bad_value(monkeypatch) -> None:
    from coelho.platform.apps import producers_command
    from coelho.platform.service import Context
    from coelho_pipelines.batch.lineage import start_date
    from coelho_pipelines.settings import RunOptions, load

    names = ("COELHO_LEARNER_METRICS_PORT", "COELHO_INGESTION_METRICS_PORT",
             "COELHO_BATCH_START_DATE", "COELHO_PRODUCE_RATE")  # fmt: skip
    for name in names:
        monkeypatch.delenv(name, raising=False)
    options = load(RunOptions)
    assert (options.learner_metrics_port, options.ingestion_metrics_port) == (0, 0)
    assert start_date() == "2026-01-01" and options.produce_rate == 10.0
    monkeypatch.setenv("COELHO_BATCH_START_DATE", "2026-03-02")
    monkeypatch.setenv("COELHO_PRODUCE_RATE", "250")
    assert start_date() == "2026-03-02"
    argv = producers_command(Context(Path("/tmp"), Path("/tmp"), Path("/tmp"), {"producers": 1}))
    assert argv[argv.index("--rate") + 1] == "250"
    for name, value in (("COELHO_BATCH_START_DATE", "March"), ("COELHO_PRODUCE_RATE", "0"),
                        ("COELHO_LEARNER_METRICS_PORT", "70000")):  # fmt: skip
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=f"{name}='{value}'"):
            load(RunOptions)
        monkeypatch.delenv(name)
