"""Fixtures of the web UI tests: the built UI, a real API server over a trained platform, a real
Dagster webserver, and Debian's chromium driven by Playwright.

- `ui_build`: `scripts/build-ui.sh` (npm ci + build when missing or stale).
- `ui_stack`: environment on the session Kafka, Redis database 12 (flushed), a private MLflow and
  a fresh lakehouse (the serving tests' MLflow and Redis database are theirs).
- `ui_trained`: per use case: events produced to Kafka and ingested, the learner run, a batch
  model trained and registered (eta with its plots), then the learner resumed (so the metric
  history carries the promotion and, when the pause was long, a restart).
- `dagster_web`: `dagster-webserver` on the repo's workspace with a temporary DAGSTER_HOME (queued
  run coordinator, no daemon: a launched run is recorded and stays QUEUED).
- `api_url`: uvicorn serving `create_app()` on a free port (the UI at /ui).
- `ui_page`: a chromium page whose every request goes through a handler that aborts, and FAILS
  the test, on any host other than the API's; console errors fail the test too.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from ui_support import (
    API_KEY,
    CHROMIUM,
    CHROMIUM_ARGS,
    EVENTS_PER_USE_CASE,
    FIRST_LEARN,
    PLOTTED,
    REDIS_DB,
    REPO_ROOT,
    SECOND_LEARN,
    UI_DIR,
)

from coelho.platform import Platform, PlatformError, free_port


def _serving_module(name: str, filename: str) -> Any:
    """A helper module of the serving tests (the same pipeline steps), loaded by path."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tests" / "serving" / filename)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ui_build() -> Path:
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build-ui.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"the UI did not build: {result.stderr[-2000:]}", pytrace=False)
    assert (UI_DIR / "build" / "index.html").exists()
    return UI_DIR / "build"


@pytest.fixture(scope="session")
def ui_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("ui-mlflow")
    port = free_port()
    platform = Platform(home, ports={"mlflow": port}, project_dir=REPO_ROOT, tie_to_parent=True)
    try:
        platform.start("mlflow")
    except PlatformError as error:
        pytest.fail(f"private MLflow could not start: {error}", pytrace=False)
    yield f"http://127.0.0.1:{port}"
    platform.down(report=lambda _line: None)


@dataclass
class UiStack:
    env: dict[str, str]
    specs: dict[str, Any] = field(default_factory=dict)

    @property
    def redis_url(self) -> str:
        return self.env["REDIS_URL"]

    @property
    def mlflow_uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]

    @property
    def lakehouse(self) -> str:
        return self.env["COELHO_LAKEHOUSE_URI"]


@pytest.fixture(scope="session")
def ui_stack(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_service: Any,
    redis_service: Any,
    ui_mlflow: str,
) -> Iterator[UiStack]:
    import redis

    from coelho_pipelines.use_cases import all_specs

    redis_service.start()
    home = tmp_path_factory.mktemp("ui-home")
    dagster_port = free_port()
    env = {
        "COELHO_HOME": str(home),
        "COELHO_LAKEHOUSE_URI": str(home / "lakehouse"),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_service.bootstrap_servers,
        "REDIS_URL": f"redis://127.0.0.1:{redis_service.port}/{REDIS_DB}",
        "MLFLOW_TRACKING_URI": ui_mlflow,
        "COELHO_MODEL_SIGNING_KEY": "ui-tests-signing-key",
        "COELHO_HEALTH_REQUIRED": "mlflow",
        "COELHO_DAGSTER_URL": f"http://127.0.0.1:{dagster_port}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    }
    (home / "lakehouse").mkdir(parents=True)
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    patch.delenv("COELHO_API_KEY", raising=False)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    yield UiStack(env, {s.key: s for s in all_specs()})
    patch.undo()


def _learn(stack: UiStack, spec: Any, until: int) -> str:
    """The real learner (its own consumer group, as in production) until `until` events."""
    from coelho_pipelines.incremental.runner import Endpoints, LearnerRun, LearnerSettings

    settings = LearnerSettings(
        until_events=until,
        idle_timeout_seconds=5.0,
        max_duration_seconds=180.0,
        snapshot_every=100,
        publish_every=50,
        publish_interval_seconds=0.2,
        metrics_every=25,
    )
    endpoints = Endpoints(
        bootstrap_servers=stack.env["KAFKA_BOOTSTRAP_SERVERS"],
        redis_url=stack.redis_url,
        mlflow_tracking_uri=stack.mlflow_uri,
    )
    summary = LearnerRun(spec, endpoints, settings).run()
    assert summary.events_learned >= until, summary
    return summary.mlflow_run_id


@dataclass
class UiTrained:
    batch_runs: dict[str, str]
    learner_runs: dict[str, str]
    events: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="session")
def ui_trained(ui_stack: UiStack, kafka_service: Any) -> UiTrained:
    fixtures = _serving_module("serving_fixtures_for_ui", "conftest.py")
    sys.path.insert(0, str(REPO_ROOT / "tests" / "serving"))
    pipeline = _serving_module("serving_pipeline_for_ui", "serving_pipeline.py")
    batch_runs, learner_runs, events = {}, {}, {}
    for key, spec in ui_stack.specs.items():
        events[key] = fixtures.generate(spec, EVENTS_PER_USE_CASE, seed=21)
        fixtures.produce(kafka_service.bootstrap_servers, spec.topic, spec, events[key])
        pipeline.ingest_all(ui_stack, spec, len(events[key]))
        _learn(ui_stack, spec, FIRST_LEARN)
        batch_runs[key], _version = pipeline.train_batch(ui_stack, spec, key == PLOTTED)
        if key == PLOTTED:  # a second run to compare with (no plots: "not in this run")
            pipeline.train_extra_run(ui_stack, spec, iterations=20)
        learner_runs[key] = _learn(ui_stack, spec, SECOND_LEARN)
    return UiTrained(batch_runs, learner_runs, events)


@pytest.fixture(scope="session")
def dagster_web(ui_stack: UiStack) -> Iterator[str]:
    """A real Dagster webserver on the repo's workspace, private instance, free port."""
    url = ui_stack.env["COELHO_DAGSTER_URL"]
    port = urlsplit(url).port
    home = Path(tempfile.mkdtemp(prefix="coelho-ui-dagster-"))
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "run_coordinator:\n  module: dagster._core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n"
    )
    log = (home / "webserver.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-w",
            str(REPO_ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],  # fmt: skip
        cwd=REPO_ROOT,
        env={
            **os.environ,
            **ui_stack.env,
            "DAGSTER_HOME": str(home),
            "DAGSTER_DISABLE_TELEMETRY": "1",
        },  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_dagster(url, process, home / "webserver.log")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _wait_for_dagster(url: str, process: subprocess.Popen, log: Path) -> None:
    """Until the webserver answers and its code location has loaded (or fail with its log)."""
    query = "{ repositoriesOrError { __typename } }"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster-webserver exited: {log.read_text()[-2000:]}", pytrace=False)
        try:
            body = httpx.post(f"{url}/graphql", json={"query": query}, timeout=5).json()
            if body["data"]["repositoriesOrError"]["__typename"] == "RepositoryConnection":
                return
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            pass
        time.sleep(1)
    pytest.fail(f"dagster-webserver not ready: {log.read_text()[-2000:]}", pytrace=False)


def _serve(app: Any) -> Iterator[str]:
    """uvicorn serving `app` on a free port in a thread of this process: its URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"ui-tests-api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the API server did not start", pytrace=False)
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="session")
def api_url(ui_stack: UiStack, ui_build: Path) -> Iterator[str]:
    """The API (and the UI at /ui) on a free port."""
    from coelho_serving.app import create_app

    yield from _serve(create_app())


@pytest.fixture(scope="session")
def keyed_api_url(ui_stack: UiStack, ui_build: Path) -> Iterator[str]:
    """The same API behind an API key (`API_KEY`)."""
    import dataclasses

    from coelho_serving.app import create_app
    from coelho_serving.config import ServingConfig

    config = ServingConfig.from_env()
    settings = dataclasses.replace(config.settings, api_key=API_KEY)
    yield from _serve(create_app(dataclasses.replace(config, settings=settings)))


@pytest.fixture(scope="session")
def chromium_context(playwright: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's chromium with a fresh user data dir (Playwright never downloads a browser)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run scripts/install-system-deps.sh", pytrace=False)
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1440, "height": 900},
    )
    yield context
    context.close()


@dataclass
class PageProblems:
    foreign_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    allowed_errors: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert not self.foreign_requests, f"requests left the API's host: {self.foreign_requests}"
        errors = [e for e in self.console_errors if not any(a in e for a in self.allowed_errors)]
        assert not errors, f"console errors: {errors}"


def _guarded_page(context: Any, api_url: str) -> tuple[Any, PageProblems]:
    """A page whose requests may only go to the API's host (others are aborted and fail the
    test), with console errors and uncaught exceptions collected (they fail the test too)."""
    problems = PageProblems()
    api = urlsplit(api_url)

    def route(route: Any) -> None:
        target = urlsplit(route.request.url)
        if target.scheme in ("data", "blob") or (
            target.hostname == api.hostname and target.port == api.port
        ):
            route.continue_()
        else:
            problems.foreign_requests.append(route.request.url)
            route.abort()

    page = context.new_page()
    page.route("**/*", route)
    page.on(
        "console",
        lambda message: (
            problems.console_errors.append(f"{message.text} @ {message.location}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.console_errors.append(f"uncaught: {error}"))
    return page, problems


@pytest.fixture
def ui_page(chromium_context: Any, api_url: str) -> Iterator[tuple[Any, PageProblems]]:
    """A guarded page (`_guarded_page`) for the API at `api_url`."""
    page, problems = _guarded_page(chromium_context, api_url)
    yield page, problems
    page.close()
    problems.check()


@pytest.fixture
def keyed_page(chromium_context: Any, keyed_api_url: str) -> Iterator[tuple[Any, PageProblems]]:
    """A guarded page for the API behind a key."""
    page, problems = _guarded_page(chromium_context, keyed_api_url)
    yield page, problems
    page.close()
    problems.check()
