"""The routes the web UI needs beyond the area routes, and the built UI mounted at /ui.

- `GET /api/v1/overview`: every product at a glance (learner status, freshness, topic lag,
  live vs champion primary metric, last drift, links to Dagster and MLflow);
- `GET /api/v1/incremental/<uc>/history`: the learner's metric history with drift, restart and
  promotion markers (`ui_data`);
- `GET /api/v1/incremental/<uc>/stream`: Server-Sent Events, one `update` event (status and
  current metrics) whenever they change;
- `POST /api/v1/batch/<uc>/retrain`, `GET /api/v1/batch/<uc>/retrain/<run_id>`: launch
  `<uc>_batch_training` in Dagster and follow the run (`dagster_proxy`).
(No `from __future__ import annotations` here: FastAPI reads the annotations at runtime.)
"""

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from coelho_pipelines.naming import LAUNCHED_BY_TAG, training_job_name
from coelho_pipelines.use_cases.spec import UseCaseSpec
from coelho_serving import dagster_proxy, ui_data
from coelho_serving.routers import PREFIX, RUN_ID, ServicesDep
from coelho_serving.security import Guard
from coelho_serving.services import Services

UI_PATH = "/ui"
UI_BUILD = Path(__file__).parent / "ui" / "build"
STREAM_KEEPALIVE_SECONDS = 15.0
STREAM_MAX_SECONDS = 300.0


class Marker(BaseModel):
    kind: Literal["drift", "restart", "promotion"]
    step: int | None = Field(None, description="events learned when it happened, if known")
    timestamp: int | None = Field(None, description="epoch milliseconds, if known")
    label: str


class MetricPoint(BaseModel):
    step: int
    value: float
    timestamp: int


class MetricHistory(BaseModel):
    use_case: str
    run_id: str | None = Field(None, description="the learner's MLflow run")
    primary_metric: dict[str, str]
    metrics: dict[str, list[MetricPoint]]
    markers: list[Marker]


class UseCaseOverview(BaseModel):
    key: str
    title: str
    task: str
    status: str | None = Field(None, description="LIVE, FINISHED, or None if never run")
    events_learned: int | None = None
    last_update: str | None = Field(None, description="the learner's last status write")
    live_metric: dict[str, Any]
    champion: dict[str, Any] | None = Field(None, description="the batch champion's run")
    last_drift: dict[str, Any] | None = None
    topic: dict[str, Any]
    errors: list[str] = Field(default_factory=list, description="what could not be read")


class Overview(BaseModel):
    generated_at: str
    links: dict[str, str]
    use_cases: list[UseCaseOverview]


class RetrainRun(BaseModel):
    job: str
    run_id: str
    status: str = Field(description="Dagster's run status (QUEUED, STARTED, SUCCESS, ...)")
    url: str = Field(description="the run's page in the Dagster UI")
    start_time: float | None = None
    end_time: float | None = None


async def _use_case_overview(services: Services, spec: UseCaseSpec) -> UseCaseOverview:
    from coelho_pipelines.batch import registry
    from coelho_pipelines.incremental import live_store
    from coelho_pipelines.incremental.consumer import consumer_group

    errors: list[str] = []

    async def attempt(what: str, coro: Any) -> Any:
        try:
            return await coro
        except HTTPException as error:
            errors.append(f"{what}: {error.detail}")
        except Exception as error:  # noqa: BLE001 - the overview shows what it can
            errors.append(f"{what}: {error}")
        return None

    status, metrics, drifts, runs, topic = await asyncio.gather(
        attempt("status", services.redis_call(live_store.read_status, spec.key)),
        attempt("metrics", services.redis_call(live_store.read_metrics, spec.key)),
        attempt("drifts", services.redis_call(live_store.read_drifts, spec.key)),
        attempt(
            "batch runs",
            services.mlflow_call(registry.list_runs_best_first, services.tracking_uri, spec),
        ),
        services.in_thread(
            ui_data.topic_offsets,
            services.config.settings.kafka_bootstrap_servers,
            spec.topic,
            consumer_group(spec.key),
        ),
    )
    status = status or {}
    events = status.get("events_learned")
    return UseCaseOverview(
        key=spec.key,
        title=spec.title,
        task=spec.task,
        status=status.get("state"),
        events_learned=int(events) if events and events.isdigit() else None,
        last_update=status.get("last_update"),
        live_metric={
            "name": spec.river_primary.name,
            "direction": spec.river_primary.direction,
            "value": ui_data.primary_value(spec, metrics),
        },
        champion=ui_data.champion_summary(spec, runs or []),
        last_drift=drifts[-1] if drifts else None,
        topic=topic,
        errors=errors,
    )


def _router(prefix: str, tag: str, guard: Guard) -> APIRouter:
    """A router behind the API key when one is configured, its 401 and 503 documented."""
    responses: dict[int | str, dict[str, Any]] = {
        503: {"description": "A dependency is not available"}
    }
    if guard:
        responses[401] = {"description": "Missing or invalid API key"}
    return APIRouter(prefix=prefix, tags=[tag], dependencies=guard, responses=responses)


def overview_router(specs: Sequence[UseCaseSpec], guard: Guard) -> APIRouter:
    router = _router(PREFIX, "ui", guard)

    @router.get("/overview", summary="every product at a glance", response_model=Overview)
    async def overview(request: Request, services: ServicesDep) -> Overview:
        cases = await asyncio.gather(*(_use_case_overview(services, s) for s in specs))
        return Overview(
            generated_at=ui_data.iso_now(),
            links={
                **service_links(services),
                "docs": str(request.base_url).rstrip("/") + "/docs",
            },
            use_cases=list(cases),
        )

    return router


def service_links(services: Services) -> dict[str, str]:
    """The Dagster and MLflow UIs (`COELHO_DAGSTER_URL`, `COELHO_MLFLOW_UI_URL` or the tracking
    URI) for the UI's links."""
    mlflow = os.environ.get("COELHO_MLFLOW_UI_URL") or services.tracking_uri
    return {"dagster": dagster_proxy.dagster_url(), "mlflow": mlflow.rstrip("/")}


def incremental_ui_router(spec: UseCaseSpec, guard: Guard) -> APIRouter:
    """`/incremental/<uc>/history` and `/incremental/<uc>/stream`."""
    uc = spec.key
    router = _router(f"{PREFIX}/incremental/{uc}", f"incremental {uc}", guard)

    @router.get(
        "/history",
        summary=f"{uc}: metric history with drift, restart and promotion markers",
        response_model=MetricHistory,
    )
    async def history(services: ServicesDep) -> MetricHistory:
        return await _history(services, spec)

    @router.get(
        "/stream",
        summary=f"{uc}: live updates (Server-Sent Events)",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "`event: update` with JSON {status, metrics, drift_id} on change",
            }
        },
    )
    async def stream(
        request: Request,
        services: ServicesDep,
        interval: Annotated[float, Query(ge=0.2, le=60, description="seconds between checks")] = 2,
        limit: Annotated[int, Query(ge=0, le=1_000_000, description="stop after N events")] = 0,
    ) -> StreamingResponse:
        events = _updates(request, services, spec, interval, limit)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)

    return router


async def _history(services: Services, spec: UseCaseSpec) -> MetricHistory:
    from coelho_pipelines.incremental import live_store

    status = await services.redis_call(live_store.read_status, spec.key) or {}
    metrics = await services.redis_call(live_store.read_metrics, spec.key) or {}
    drifts = await services.redis_call(live_store.read_drifts, spec.key)
    run_id = status.get("mlflow_run_id")
    uri = services.tracking_uri
    history: dict[str, list] = {}
    if run_id:
        names = ui_data.scalar_names(metrics)
        history = await services.mlflow_call(ui_data.metric_history, uri, run_id, names)
    versions, champion = await services.mlflow_call(ui_data.registry_versions, uri, spec)
    primary = history.get(spec.river_primary.name) or next(iter(history.values()), [])
    markers = [
        *ui_data.drift_markers(drifts),
        *ui_data.restart_markers(primary),
        *ui_data.promotion_markers(versions, champion),
    ]
    return MetricHistory(
        use_case=spec.key,
        run_id=run_id,
        primary_metric={"name": spec.river_primary.name, "direction": spec.river_primary.direction},
        metrics=history,
        markers=[Marker(**m) for m in markers],
    )


async def _snapshot(services: Services, spec: UseCaseSpec) -> dict[str, Any]:
    from coelho_pipelines.incremental import live_store

    def read(client: Any, key: str) -> dict[str, Any]:
        drift_seq = client.get(live_store.Keys(key).drift_seq)
        return {
            "status": live_store.read_status(client, key),
            "metrics": live_store.read_metrics(client, key),
            "drift_id": int(drift_seq) if drift_seq else 0,
        }

    return await services.redis_call(read, spec.key)


async def _updates(
    request: Request, services: Services, spec: UseCaseSpec, interval: float, limit: int
) -> AsyncIterator[str]:
    """SSE frames: an `update` when the learner's state changed, a comment to keep alive.
    The stream ends after `STREAM_MAX_SECONDS` (EventSource reconnects after `retry`)."""
    last, sent, quiet = None, 0, 0.0
    ends = time.monotonic() + STREAM_MAX_SECONDS
    yield f"retry: {int(interval * 1000)}\n\n"
    while time.monotonic() < ends and not await request.is_disconnected():
        try:
            payload = json.dumps(await _snapshot(services, spec), default=str)
        except HTTPException as error:
            payload = json.dumps({"error": error.detail})
        if payload != last:
            last, quiet = payload, 0.0
            sent += 1
            yield f"event: update\ndata: {payload}\n\n"
            if limit and sent >= limit:
                return
        elif quiet >= STREAM_KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(interval)
        quiet += interval


def retrain_router(spec: UseCaseSpec, guard: Guard) -> APIRouter:
    """`POST /batch/<uc>/retrain` and `GET /batch/<uc>/retrain/<run_id>` (Dagster proxy)."""
    uc = spec.key
    job = training_job_name(spec)
    router = _router(f"{PREFIX}/batch/{uc}", f"batch {uc}", guard)
    errors = {
        404: {"description": "Dagster has no such job or run"},
        502: {"description": "Dagster refused the request"},
        503: {"description": "Dagster is not reachable"},
    }

    @router.post(
        "/retrain",
        summary=f"{uc}: launch {job} in Dagster",
        response_model=RetrainRun,
        responses=errors,
    )
    async def retrain() -> RetrainRun:
        return RetrainRun(**await dagster_proxy.launch(job, {LAUNCHED_BY_TAG: "ui"}))

    @router.get(
        "/retrain/{run_id}",
        summary=f"{uc}: status of a Dagster run",
        response_model=RetrainRun,
        responses=errors,
    )
    async def retrain_status(run_id: Annotated[str, RUN_ID]) -> RetrainRun:
        return RetrainRun(**await dagster_proxy.status(run_id))

    return router


def ui_routers(specs: Sequence[UseCaseSpec], guard: Guard) -> list[APIRouter]:
    """Every route the UI adds to the API."""
    routers = [overview_router(specs, guard)]
    for spec in specs:
        routers += [incremental_ui_router(spec, guard), retrain_router(spec, guard)]
    return routers


class _Pages(StaticFiles):
    """The prerendered pages: `/ui/tfd/sql` serves `tfd/sql.html`."""

    async def get_response(self, path: str, scope: Any) -> Any:
        from starlette.exceptions import HTTPException as StarletteHTTPException

        try:
            return await super().get_response(path, scope)
        except StarletteHTTPException as error:
            if error.status_code != 404 or path.endswith(".html"):
                raise
            return await super().get_response(f"{path.rstrip('/')}.html", scope)


def mount_ui(app: FastAPI, build: Path = UI_BUILD) -> None:
    """Serve the built UI at /ui (if it was built; `make up` / `make test` build it)."""

    @app.get(UI_PATH, include_in_schema=False)
    async def ui_root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PATH}/")

    if (build / "index.html").exists():
        app.mount(UI_PATH, _Pages(directory=build, html=True), name="ui")
        return

    @app.get(f"{UI_PATH}/", include_in_schema=False)
    async def ui_missing() -> PlainTextResponse:
        return PlainTextResponse(
            "The web UI is not built: run `make ui` (or `npm ci && npm run build` in "
            "coelho_serving/ui), then restart the API.",
            status_code=503,
        )
