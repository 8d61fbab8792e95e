"""The FastAPI application factory: settings in, app out; the model loads in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from swagger_ui_bundle import swagger_ui_path

from app import __version__
from app.api import analyses, datasets, dictionaries, jobs, model, neurons, pages, probes
from app.api.admin import admin_mode
from app.api.assets import asset_dir
from app.api.fair_share import ClientConcurrencyLimit
from app.api.limits import BodySizeLimit
from app.api.origin import CrossSiteRefusal
from app.api.responses import NumpyJSONResponse, error_response
from app.errors import BertscopeError, StoreUnavailable
from app.jobs.manager import start_default_probe_set, start_sample_index
from app.modeling.loading import LoadedModel, load_model
from app.services.container import build_services
from app.settings import Settings, get_settings
from app.store.db import check_connection, make_engine, on_first_connection

log = logging.getLogger("bertscope")
UPLOAD_OVERHEAD_BYTES = 64 * 1024  # what a multipart upload adds to its file: boundaries, headers, fields


def create_app(settings: Settings | None = None, loaded: LoadedModel | None = None) -> FastAPI:
    """Build the app. Tests pass their own settings and an in-process model; ``serve`` passes neither."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resident = loaded or load_model(
            settings.model, settings.device, settings.dtype, settings.hub_offline, settings.cache_dir
        )
        engine = make_engine(settings.database_url)
        services = build_services(resident, engine, settings)
        services.jobs.start()
        if settings.train_probes_on_start:  # queued first: trees are the quicker of the two
            on_first_connection(engine, lambda: start_default_probe_set(services.jobs))
        if settings.index_sample_on_start:
            on_first_connection(engine, lambda: start_sample_index(services.jobs))
        app.state.services = services
        try:
            check_connection(engine)  # creates the tables and runs the start-up work that needs them
        except StoreUnavailable as exc:
            log.warning("%s The server starts anyway and connects when the database is back.", exc.message)
        log.info("bertscope ready: %s on %s", resident.name, resident.device)
        if admin_mode(settings) == "disabled":
            log.warning(
                "Admin operations (jobs, loading another model) are disabled: the server listens on %s "
                "without BERTSCOPE_ADMIN_TOKEN.",
                settings.host,
            )
        yield
        services.close()

    app = FastAPI(
        title="bertscope",
        version=__version__,
        description="Look inside BERT-family encoders: attention, attribution, mixing, neurons, probes.",
        lifespan=lifespan,
        default_response_class=NumpyJSONResponse,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = None
    upload_limit = settings.max_upload_bytes + UPLOAD_OVERHEAD_BYTES  # the form's boundaries and fields
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        streamed={"/api/datasets": (upload_limit, "BERTSCOPE_MAX_UPLOAD_BYTES")},
    )
    app.add_middleware(ClientConcurrencyLimit, limit=settings.max_requests_per_client)
    app.add_middleware(CrossSiteRefusal, trusted_origins=settings.cors_origins)
    if settings.cors_origins:  # closed by default: no cross-origin browser access at all
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization"],
        )
    app.mount("/static", StaticFiles(directory=asset_dir("static")), name="static")
    app.mount("/vendor/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """OpenAPI documentation with Swagger UI served from the installed package (works offline)."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="bertscope API",
            swagger_favicon_url="/static/favicon.svg",
            swagger_js_url="/vendor/swagger/swagger-ui-bundle.js",
            swagger_css_url="/vendor/swagger/swagger-ui.css",
        )

    app.include_router(model.router)
    app.include_router(analyses.router)
    app.include_router(jobs.router)
    app.include_router(datasets.router)
    app.include_router(probes.router)
    app.include_router(dictionaries.router)
    app.include_router(neurons.router)
    app.include_router(pages.router)
    _install_error_handlers(app)
    return app


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(("/api", "/static", "/docs", "/openapi"))


def _error(request: Request, status: int, code: str, message: str) -> Response:
    if _wants_html(request):
        return pages.error_page(request, status, code, message)
    return error_response(status, code, message)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    503: "unavailable",
}


def _allowed_methods(request: Request) -> str:
    """Every method a route accepts at this path (Starlette's 405 names only the first matching route's,
    but e.g. GET and POST /api/jobs are two routes)."""
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in routes):
            allowed.append(method)
    return ", ".join(allowed)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BertscopeError)
    async def domain_error(request: Request, exc: BertscopeError) -> Response:
        return _error(request, exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for item in exc.errors():
            if item.get("type") == "json_invalid":
                position = item["loc"][-1] if item["loc"] else "?"
                problems.append(f"The request body is not valid JSON (error at character {position}).")
                continue
            location = ".".join(str(part) for part in item["loc"] if part != "body")
            problems.append(f"{location}: {item['msg']}" if location else item["msg"])
        content_type = request.headers.get("content-type", "")
        if (
            request.method == "POST"
            and "json" not in content_type
            and any(item["loc"] and item["loc"][0] == "body" for item in exc.errors())
        ):
            sent = content_type or "no content type"
            problems.insert(0, f"Send the body as JSON with 'Content-Type: application/json' (not {sent})")
        return _error(request, 422, "invalid_request", "; ".join(problems) or "Invalid request.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        response = _error(request, exc.status_code, code, str(exc.detail))
        headers = dict(exc.headers or {})  # e.g. the Allow header a 405 must carry
        if exc.status_code == 405 and "Allow" in headers:
            headers["Allow"] = _allowed_methods(request) or headers["Allow"]
        response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return _error(request, 500, "internal_error", "An unexpected error occurred; it has been logged.")
