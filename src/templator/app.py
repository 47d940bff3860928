"""The ASGI application and its lifespan: stores are connected at start-up, closed at shutdown."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from prometheus_client import Counter, Histogram
from starlette.responses import Response

from templator.api import health
from templator.api.limits import BodyLimitMiddleware
from templator.api.problems import Problem, install_problem_handlers
from templator.api.router import api
from templator.config import ProcessRole, Settings, get_settings
from templator.connections import Connections

REQUESTS = Counter("templator_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "templator_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def create_app(
    settings: Settings | None = None, *, connections: Connections | None = None
) -> FastAPI:
    """Build the app. Connections are made in the lifespan unless handed in (tests)."""
    conf = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = connections is None
        conns = connections or Connections.from_settings(conf, role=ProcessRole.API)
        app.state.connections = conns
        app.state.settings = conf
        if conns.store is not None:
            await asyncio.to_thread(conns.store.ensure_bucket)
        try:
            yield
        finally:
            if owned:
                await conns.close()

    app = FastAPI(
        title="Templator data platform",
        version="0.1.0",
        description="Users, projects, AI sessions, templates, logs and HubSpot module export.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, upload_limit=conf.upload_max_bytes)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = request_id[:64]
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        LATENCY.labels(request.method, path).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        response.headers["x-request-id"] = request.state.request_id
        return response

    app.include_router(health.router)
    app.include_router(api)
    _register_problem_schema(app)
    return app


def _register_problem_schema(app: FastAPI) -> None:
    """Make `Problem` a named component of the OpenAPI document."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
