"""The operator dashboard: a static page at /dashboard and its JSON, for ADMIN tokens only.

The page itself holds no data: it asks for an ADMIN API token (kept in the tab's
sessionStorage), then fetches `/dashboard/api/summary` with it as a bearer token every few
seconds and draws with uPlot, which is shipped in `static/vendor/` (no CDN: the page works
offline). DASHBOARD_ENABLED=false removes all of it.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from templator.api.deps import AdminActor
from templator.api.problems import responses_for
from templator.monitoring.collector import StoreCollector
from templator.monitoring.metrics import Metrics
from templator.monitoring.pools import pool_stats
from templator.monitoring.stores import PostgresSource, StatementsMissing, top_statements

STATIC = Path(__file__).parent / "static"
TOP_QUERIES_TIMEOUT = 2.0

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/dashboard", summary="The operator dashboard (the page asks for an ADMIN token)")
async def page() -> FileResponse:
    """The static page; its data comes from /dashboard/api/summary."""
    return FileResponse(STATIC / "dashboard.html", media_type="text/html")


async def _top_queries(stores: StoreCollector | None) -> dict[str, Any]:
    sources = stores.sources if stores is not None else []
    source = next((s for s in sources if isinstance(s, PostgresSource)), None)
    if source is None:
        return {"rows": [], "error": "no PostgreSQL source"}
    try:
        rows = await asyncio.wait_for(top_statements(source.conn, limit=10), TOP_QUERIES_TIMEOUT)
    except StatementsMissing as exc:
        return {"rows": [], "error": str(exc)}
    except Exception as exc:  # the page shows why the list is empty, whatever failed
        return {"rows": [], "error": f"{type(exc).__name__}: {exc}"}
    return {"rows": rows, "error": None}


def _backup(metrics: Metrics) -> dict[str, Any]:
    """The backup collector's gauges, when one is plugged in (templator.backup)."""
    found: dict[str, float] = {}
    for collector in metrics.collectors:
        if isinstance(collector, StoreCollector):
            continue
        for family in collector.collect():
            for sample in family.samples:
                if sample.name.startswith("templator_backup_") and not sample.labels:
                    found[sample.name] = sample.value
    return {"metrics": found, "now": time.time()}


@router.get(
    "/dashboard/api/summary",
    summary="Everything the dashboard shows, as JSON",
    responses=responses_for(401, 403),
)
async def summary(request: Request, actor: AdminActor) -> Response:
    """Stores, pools, the last hour of throughput and latency, top queries, backups."""
    metrics: Metrics = request.app.state.metrics
    stores = metrics.stores
    if stores is not None:
        await stores.refresh()
    body = {
        "generated_at": time.time(),
        "pid": os.getpid(),  # the worker that answered (pools are per worker)
        "stores": stores.snapshot() if stores is not None else {},
        "pools": pool_stats(request.app.state.connections),
        "history": metrics.history.as_list(),
        "history_interval_seconds": metrics.history.interval,
        "top_queries": await _top_queries(stores),
        "backup": _backup(metrics),
    }
    return Response(orjson.dumps(body, default=str), media_type="application/json")


def install_dashboard(app: FastAPI) -> None:
    """Serve the page, its JSON and its static files."""
    app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")
