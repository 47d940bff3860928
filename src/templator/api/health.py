"""Liveness, readiness and Prometheus metrics.

Readiness and metrics tell whoever asks the versions, paths, row counts and backup age of
the deployment: with MONITORING_TOKEN (or MONITORING_TOKEN_FILE) set they require it as a
bearer token (compared in constant time); liveness stays open (it says only "up").
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from templator.exceptions import Unauthorized

router = APIRouter(tags=["health"])


async def monitoring_access(request: Request) -> None:
    """401 unless the monitoring token is unset or presented as `Bearer <token>`."""
    secret: bytes | None = request.app.state.monitoring_secret
    if secret is None:
        return
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), secret):
        raise Unauthorized(
            "this endpoint needs the monitoring token: send `Authorization: Bearer "
            "<MONITORING_TOKEN>`"
        )


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
        401: {"description": "MONITORING_TOKEN is set and was not presented"},
        503: {"description": "PostgreSQL, which every endpoint needs, is down"},
    },
    dependencies=[Depends(monitoring_access)],
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


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    include_in_schema=False,
    dependencies=[Depends(monitoring_access)],
)
async def metrics(request: Request) -> Response:
    """Every worker's HTTP, cache and pool metrics, and the stores' (monitoring/metrics.py)."""
    body = await request.app.state.metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
