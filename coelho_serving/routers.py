"""Routers generated per use case from its spec: one factory per API area, no per-case copies.

Paths are literal per use case (`/incremental/tfd/predict`), so OpenAPI shows each use case's
typed request and response. Endpoints only translate HTTP to the services in the `services` package.
(No `from __future__ import annotations` here: FastAPI reads the annotations at runtime.)
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from coelho_pipelines.use_cases.spec import UseCaseSpec
from coelho_serving import prediction_io, schemas
from coelho_serving.security import Guard
from coelho_serving.services import Services

PREFIX = "/api/v1"
RUN_ID = Path(
    description="An MLflow run id of this use case's experiment",
    min_length=1,
    max_length=64,
)


async def _services(request: Request) -> Services:
    # async: FastAPI would run a plain `def` dependency in a worker thread on every request.
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(_services)]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Rejected input (e.g. a body that is not UTF-8 JSON, or refused SQL)",
        401: "Missing or invalid API key",
        404: "Not found (the message names what)",
        503: "A dependency or model is not available",
    }
    return {code: {"description": descriptions[code]} for code in codes}


# Predict routes validate their body themselves (`prediction_io`): FastAPI does not document
# their 422 on its own, so say it as it would (same schema as every other route's 422).
INVALID_BODY = {
    422: {
        "description": "Validation Error (the message names each bad field)",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
        },
    }
}


def _area_router(path: str, tag: str, guard: Guard) -> APIRouter:
    """A router with the full path prefix, behind the API key when one is configured. Routers
    are included into the app directly (not nested), so each route knows its full path."""
    return APIRouter(
        prefix=PREFIX + path,
        tags=[tag],
        responses=_errors(*((401, 503) if guard else (503,))),
        dependencies=guard,
    )


def _predict_router(
    spec: UseCaseSpec,
    guard: Guard,
    area: str,
    summary: str,
    codes: tuple[int, ...],
    score: Callable[[Services, dict[str, Any], dict[str, str | None]], Awaitable[dict[str, Any]]],
    queries: tuple[tuple[str, int, str], ...] = (),
) -> APIRouter:
    """`POST /<area>/<uc>/predict`: optional text query parameters (name, max length,
    description), then the typed body, read directly (`prediction_io`: nothing to solve on the
    hot path); `score(services, event, query values)` gives the answer."""
    uc = spec.key
    router = _area_router(f"/{area}/{uc}", f"{area} {uc}", guard)
    request_model = schemas.request_model(spec)
    openapi_extra = prediction_io.request_body_doc(request_model)
    if queries:
        openapi_extra["parameters"] = [prediction_io.query_text_doc(*query) for query in queries]

    @router.post(
        "/predict",
        summary=f"{uc}: {summary}",
        response_model=schemas.response_model(spec),
        responses={**_errors(*codes), **INVALID_BODY},
        openapi_extra=openapi_extra,
    )
    async def predict(request: Request) -> Response:
        values = {
            name: prediction_io.read_query_text(request, name, limit) for name, limit, _ in queries
        }
        event = await prediction_io.read_event(request, request_model)
        services: Services = request.app.state.services
        return prediction_io.json_response(await score(services, event, values))

    return router


def incremental_predict_router(spec: UseCaseSpec, guard: Guard) -> APIRouter:
    """`POST /incremental/<uc>/predict`: the live model's prediction."""

    async def score(services: Services, event: dict[str, Any], _query: dict) -> dict[str, Any]:
        return await services.incremental.predict(spec, event)

    return _predict_router(spec, guard, "incremental", "predict with the live model", (400,), score)


def incremental_router(spec: UseCaseSpec, guard: Guard) -> APIRouter:
    """`/incremental/<uc>/...` (but predict): the River learner's status and metrics."""
    uc = spec.key
    tag = f"incremental {uc}"
    router = _area_router(f"/incremental/{uc}", tag, guard)

    @router.get("/status", summary=f"{uc}: learner status", responses=_errors(404))
    async def status(services: ServicesDep) -> dict[str, Any]:
        return await services.incremental.status(spec)

    @router.get("/metrics", summary=f"{uc}: prequential metrics", responses=_errors(404))
    async def metrics(
        services: ServicesDep,
        history: Annotated[bool, Query(description="add the MLflow metric history")] = False,
    ) -> dict[str, Any]:
        return await services.incremental.metrics(spec, history=history)

    @router.get(
        "/leaderboard",
        summary=f"{uc}: online candidates, the served one and its promotions",
        response_model=schemas.Leaderboard,
        responses=_errors(404),
    )
    async def leaderboard(services: ServicesDep) -> dict[str, Any]:
        return await services.incremental.leaderboard(spec)

    @router.get("/sample", summary=f"{uc}: a random recent event", responses=_errors(404))
    async def sample(services: ServicesDep) -> dict[str, Any]:
        return await services.incremental.sample(spec)

    if spec.task == "classification":

        @router.get("/report", summary=f"{uc}: confusion matrix and classification report")
        async def report(services: ServicesDep) -> dict[str, Any]:
            return await services.incremental.report(spec)

    if spec.task == "clustering":
        _cluster_routes(router, spec, lambda s: s.incremental)
    return router


def _cluster_routes(router: APIRouter, spec: UseCaseSpec, area: Any) -> None:
    """`/clusters` and `/clusters/<feature>` for a clustering use case."""
    uc = spec.key
    features = spec.categorical_features

    @router.get("/clusters", summary=f"{uc}: samples per cluster", responses=_errors(404))
    async def clusters(services: ServicesDep) -> dict[str, Any]:
        return await area(services).clusters(spec)

    @router.get(
        "/clusters/{feature}",
        summary=f"{uc}: per-cluster value counts of a categorical feature",
        responses=_errors(404),
    )
    async def cluster_feature(
        feature: Annotated[str, Path(description=f"one of: {', '.join(features)}")],
        services: ServicesDep,
    ) -> dict[str, Any]:
        return await area(services).clusters(spec, feature=feature)


def batch_predict_router(spec: UseCaseSpec, guard: Guard) -> APIRouter:
    """`POST /batch/<uc>/predict`: the champion's (or a given run's) prediction."""

    async def score(services: Services, event: dict[str, Any], query: dict) -> dict[str, Any]:
        return await services.batch.predict(spec, event, run_id=query["run_id"])

    return _predict_router(
        spec, guard, "batch", "predict with the champion (or a given run)", (400, 404), score,
        queries=(("run_id", 64, "a run instead"),),
    )  # fmt: skip


def batch_router(spec: UseCaseSpec, guard: Guard) -> APIRouter:
    """`/batch/<uc>/...` (but predict): registered batch models, their runs, metrics, plots."""
    uc = spec.key
    router = _area_router(f"/batch/{uc}", f"batch {uc}", guard)

    @router.get("/runs", summary=f"{uc}: batch runs, best first, champion marked")
    async def runs(services: ServicesDep) -> dict[str, Any]:
        return await services.batch.runs(spec)

    @router.get("/runs/{run_id}/metrics", summary=f"{uc}: metrics of a run", responses=_errors(404))
    async def run_metrics(run_id: Annotated[str, RUN_ID], services: ServicesDep) -> dict[str, Any]:
        return await services.batch.run_metrics(spec, run_id)

    @router.get(
        "/runs/{run_id}/visualizations",
        summary=f"{uc}: the plots of a run",
        responses=_errors(404),
    )
    async def visualizations(
        run_id: Annotated[str, RUN_ID], services: ServicesDep
    ) -> dict[str, Any]:
        return await services.batch.visualizations(spec, run_id)

    @router.get(
        "/runs/{run_id}/visualizations/{tab}/{name}",
        summary=f"{uc}: one plot (PNG)",
        response_class=Response,
        responses={
            200: {"content": {"image/png": {}}, "description": "The PNG"},
            **_errors(404),
        },
    )
    async def visualization(
        run_id: Annotated[str, RUN_ID],
        tab: Annotated[str, Path(description=f"one of: {', '.join(spec.plot_tabs)}")],
        name: Annotated[str, Path(max_length=128, description="plot name (.png optional)")],
        services: ServicesDep,
    ) -> Response:
        png = await services.batch.visualization(spec, run_id, tab, name)
        return Response(png, media_type="image/png")

    _comparison_routes(router, spec)
    if spec.task == "clustering":
        _cluster_routes(router, spec, lambda s: s.batch)
    return router


def _comparison_routes(router: APIRouter, spec: UseCaseSpec) -> None:
    """`/comparison` and `/comparison/plot`: the latest `<uc>/online_vs_batch` result."""
    uc = spec.key

    @router.get(
        "/comparison",
        summary=f"{uc}: live model vs batch champion on the same unseen rows (latest)",
        response_model=schemas.Comparison,
        responses=_errors(404),
    )
    async def comparison(services: ServicesDep) -> dict[str, Any]:
        return await services.batch.comparison(spec)

    @router.get(
        "/comparison/plot",
        summary=f"{uc}: the latest comparison's plot (PNG)",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "The PNG"}, **_errors(404)},
    )
    async def comparison_plot(services: ServicesDep) -> Response:
        return Response(await services.batch.comparison_plot(spec), media_type="image/png")


def sql_router(spec: UseCaseSpec, guard: Guard) -> APIRouter:
    """`/sql/<uc>/...`: read-only SQL over the use case's raw Delta table (`data`)."""
    uc = spec.key
    router = _area_router(f"/sql/{uc}", f"sql {uc}", guard)

    @router.post(
        "/query",
        summary=f"{uc}: one read-only SELECT over `data`",
        response_model=schemas.SqlResult,
        responses=_errors(400, 404),
    )
    async def query(body: schemas.SqlQuery, services: ServicesDep) -> dict[str, Any]:
        return await services.sql.query(spec, body.query, body.limit)

    @router.get(
        "/schema",
        summary=f"{uc}: columns, types and row count of `data`",
        response_model=schemas.SqlSchema,
        responses=_errors(404),
    )
    async def table_schema(services: ServicesDep) -> dict[str, Any]:
        return await services.sql.schema(spec)

    return router


PREDICT_ROUTERS = (incremental_predict_router, batch_predict_router)
AREA_ROUTERS = (incremental_router, batch_router, sql_router)


def use_case_routers(spec: UseCaseSpec, guard: Guard) -> list[APIRouter]:
    """Every API router of one use case: its two predict routes, incremental, batch, sql."""
    return [build(spec, guard) for build in (*PREDICT_ROUTERS, *AREA_ROUTERS)]


def api_routers(specs: Sequence[UseCaseSpec], guard: Guard) -> list[APIRouter]:
    """The API routers of all use cases, the predict routes of every use case first.

    FastAPI matches a request against the routes one at a time, in order (a few microseconds
    each, about 40 routes here): the hot prediction routes go first. The docs keep their
    grouping (by tag); only the order of the groups and of predict within them changes.
    """
    first = [build(spec, guard) for spec in specs for build in PREDICT_ROUTERS]
    return first + [build(spec, guard) for spec in specs for build in AREA_ROUTERS]
