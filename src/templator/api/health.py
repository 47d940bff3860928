"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process answers")
async def liveness() -> dict[str, Any]:
    """Always 200 while the process serves requests."""
    return {"status": "up"}


@router.get(
    "/health/ready",
    summary="Readiness: each component's status and latency",
    responses={
        200: {
            "description": "Serving: `status` is `up`, or `degraded` when the cache or "
            "the object store is down (listed in `down`)"
        },
        503: {"description": "PostgreSQL, which every endpoint needs, is down"},
    },
)
async def readiness(request: Request) -> Response:
    """200 while PostgreSQL answers (`degraded` when Redis or the object store does not),
    503 with the same body when PostgreSQL is down."""
    connections = request.app.state.connections
    report = await connections.health(timeout=2.0)
    return Response(
        orjson.dumps(report.as_dict(), default=str),
        status_code=200 if report.serving else 503,
        media_type="application/json",
    )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Every worker's HTTP, cache and pool metrics, and the stores' (monitoring/metrics.py)."""
    body = await request.app.state.metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
