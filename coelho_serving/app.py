"""The FastAPI application: `create_app()` builds it from the environment (or a given config).

`uvicorn coelho_serving.app:create_app --factory` (what `coelho serve` runs), or the module-level
`app` for servers that want an object (built on first access).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from coelho_pipelines.use_cases import all_specs
from coelho_serving import errors, prediction_io, schemas
from coelho_serving.config import ServingConfig
from coelho_serving.observability import MetricsMiddleware, metrics_response
from coelho_serving.routers import PREFIX, api_routers
from coelho_serving.security import Guard, add_cors, api_key_guard
from coelho_serving.services import Services
from coelho_serving.ui_routes import UI_PATH, mount_ui, service_links, ui_routers

DESCRIPTION = """\
Predictions from the live River model (Redis, else the latest MLflow snapshot) and from the
champion batch model (MLflow registry), run metrics and plots, and read-only SQL over the Delta
lakehouse. When the service runs with `COELHO_API_KEY`, send it as the `X-API-Key` header
(the **Authorize** button here); `/health` and `/metrics` are always open.
"""


def create_app(config: ServingConfig | None = None) -> FastAPI:
    """A new application with its own services (model cache, clients) for `config`."""
    config = config or ServingConfig.from_env()
    specs = all_specs()
    services = Services(config, specs)
    app = FastAPI(
        title="Coelho API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=services.lifespan,
        docs_url=None,
        redoc_url=None,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    _docs_routes(app)
    app.state.config = config
    app.state.services = services
    errors.install(app, [spec.key for spec in specs])
    guard = api_key_guard(config.api_key)
    _system_routes(app, specs, guard)
    for router in [*api_routers(specs, guard), *ui_routers(specs, guard)]:
        app.include_router(router)
    mount_ui(app)
    prediction_io.document_request_models(app, (schemas.request_model(s) for s in specs))
    app.add_middleware(MetricsMiddleware)
    add_cors(app, config.cors_origins)
    return app


DOCS_STATIC = "/docs-static"


def _docs_routes(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from assets shipped in a package: no CDN needed."""
    import fastapi_offline

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_STATIC, StaticFiles(directory=static), name="docs-static")
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - docs",
            oauth2_redirect_url=f"{root}{oauth2_redirect}",
            swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
            with_google_fonts=False,
        )


def _links(request: Request, specs: Any) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    use_cases = {
        spec.key: {
            "title": spec.title,
            "incremental": f"{base}{PREFIX}/incremental/{spec.key}/status",
            "batch": f"{base}{PREFIX}/batch/{spec.key}/runs",
            "sql": f"{base}{PREFIX}/sql/{spec.key}/schema",
        }
        for spec in specs
    }
    return {
        "service": "coelho",
        "version": request.app.version,
        "links": {
            "ui": f"{base}{UI_PATH}/",
            **service_links(request.app.state.services),
            "docs": f"{base}/docs",
            "openapi": f"{base}/openapi.json",
            "health": f"{base}/health",
            "metrics": f"{base}/metrics",
        },
        "use_cases": use_cases,
    }


def _system_routes(app: FastAPI, specs: Any, guard: Guard) -> None:
    @app.get(
        "/",
        tags=["system"],
        summary="Links",
        dependencies=guard,
        responses={401: {"description": "Missing or invalid API key"}} if guard else None,
    )
    async def root(request: Request) -> dict[str, Any]:
        return _links(request, specs)

    @app.get(
        "/health",
        tags=["system"],
        summary="Dependency health (503 when a required one is down)",
        responses={503: {"description": "A required dependency is down"}},
    )
    async def health(request: Request) -> JSONResponse:
        body, healthy = await request.app.state.services.health_report()
        return JSONResponse(body, status_code=200 if healthy else 503)

    app.add_route("/metrics", metrics_response, include_in_schema=False)


def __getattr__(name: str) -> Any:
    """`coelho_serving.app:app`, built from the environment on first access."""
    if name == "app":
        globals()["app"] = application = create_app()
        return application
    raise AttributeError(name)
