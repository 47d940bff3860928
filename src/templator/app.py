"""The ASGI application and its lifespan: stores are connected at start-up, closed at shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from templator.api import health
from templator.api.auth_limit import AuthFailureLimiter
from templator.api.contract import shape_openapi
from templator.api.dashboard import install_dashboard
from templator.api.fastpath import TemplateReadFastPath
from templator.api.idempotency import install_replay_handler
from templator.api.limits import BodyLimitMiddleware
from templator.api.problems import (
    PROBLEM_JSON,
    install_problem_handlers,
    internal_error_body,
)
from templator.api.router import PREFIX, include_api
from templator.api.sse import ProgressHub
from templator.config import ProcessRole, Settings, get_settings
from templator.connections import Connections
from templator.monitoring.metrics import Metrics
from templator.store_urls import StackFinder
from templator.work.rescuer import Rescuer
from templator.work.wakeup import WorkListener, WorkSignal

REQUESTS = Counter("templator_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "templator_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

log = logging.getLogger("templator.api")
SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
"""A client's X-Request-ID is kept only when it is short and cannot smuggle anything into
a log line, a header or the audit table; otherwise the request gets an id of its own."""


def create_app(
    settings: Settings | None = None,
    *,
    connections: Connections | None = None,
    find_stack: StackFinder | None = None,
) -> FastAPI:
    """Build the app. Connections are made in the lifespan unless handed in (tests), on
    the configured stores or, where none is set, the local stack `find_stack` finds."""
    conf = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = connections is None
        conns = connections or Connections.from_settings(
            conf, role=ProcessRole.API, find_stack=find_stack
        )
        app.state.connections = conns
        app.state.settings = conf
        app.state.progress_hub = ProgressHub(
            conns.redis, streams_per_user=conf.api_sse_max_streams_per_user
        )
        app.state.auth_limiter = AuthFailureLimiter(
            conns.redis,
            namespace=conf.cache_namespace,
            limit=conf.auth_failure_limit,
            window=conf.auth_failure_window_seconds,
        )
        app.state.metrics = Metrics(conns)
        app.state.work_signal = signal = WorkSignal()
        app.state.work_listener = listener = WorkListener(
            conns.urls.database_url, signal, role=ProcessRole.API
        )
        rescuer = Rescuer(conns, signal)
        try:
            if conns.store is not None:
                await asyncio.to_thread(conns.store.ensure_bucket)
            await conns.open_read_pool()
            conns.epoch.start()
            app.state.metrics.start()
            listener.start()
            rescuer.start()
            # Everything made so far (modules, routes, models) lives as long as the
            # process: keep it out of the cyclic collector's scans, which otherwise walk
            # it all on every full collection, pausing requests under load (docs/benchmarks.md,
            # REST API).
            gc.freeze()
            yield
        finally:
            await conns.epoch.stop()
            await rescuer.stop()
            await listener.stop()
            await app.state.metrics.stop()
            await app.state.progress_hub.close()
            if owned:
                await conns.close()

    app = FastAPI(
        title="Templator data platform",
        version="0.1.0",
        description="Users, projects, AI sessions, templates, logs and HubSpot module export.",
        lifespan=lifespan,
        telemetry={
            "tracing": conf.api_opentelemetry,
            "metrics": conf.api_opentelemetry,
            "logs": conf.api_opentelemetry,
        },
    )
    install_problem_handlers(app)
    install_replay_handler(app)
    app.state.monitoring_secret = conf.monitoring_secret  # read once (a file, maybe)
    # Innermost first: add_middleware wraps what was added before.
    app.add_middleware(TemplateReadFastPath)
    app.add_middleware(BodyLimitMiddleware, upload_limit=conf.upload_max_bytes)

    app.add_middleware(RequestContextMiddleware)
    if conf.api_forwarded_allow_ips:
        # Outermost: every layer (the limit, the logs, the audit) sees the client a
        # configured proxy names; from any other peer the headers are ignored.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=conf.api_forwarded_allow_ips)
    app.include_router(health.router)
    if conf.dashboard_enabled:
        install_dashboard(app)
    include_api(app)
    _register_problem_schema(app, conf)
    return app


def _register_problem_schema(app: FastAPI, settings: Settings) -> None:
    """The OpenAPI document with every problem an operation can answer (`api.contract`)."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = shape_openapi(original(), settings)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class RequestContextMiddleware:
    """Request id in and out, and Prometheus metrics per route — as plain ASGI, which costs
    a fraction of Starlette's BaseHTTPMiddleware on every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers", [])).get(b"x-request-id", b"")
        request_id = sent.decode("ascii") if SAFE_REQUEST_ID.match(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered here rather than by Starlette's outermost error middleware, which
            # sends past this one and so without the request id.
            if responded:
                raise
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            body = internal_error_body(scope["path"], request_id)
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})
        finally:
            path = route_label(scope)
            method = scope["method"]
            LATENCY.labels(method, path).observe(time.perf_counter() - started)
            REQUESTS.labels(method, path, str(status)).inc()


def route_label(scope: Scope) -> str:
    """The route template of a request, one per endpoint whichever way it was answered.

    FastAPI hands the matched route of an included router to the request as it was
    declared, without the prefix it was included under (`/templates/{template_id}`),
    while the fast path answers the same endpoint as `/api/v1/templates/{template_id}`:
    the API prefix is put back so both count under one label.
    """
    path: str = getattr(scope.get("route"), "path", None) or "unmatched"
    if path != "unmatched" and not path.startswith(PREFIX) and scope["path"].startswith(PREFIX):
        return PREFIX + path
    return path
