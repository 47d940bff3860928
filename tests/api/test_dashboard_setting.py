"""DASHBOARD_ENABLED=false removes the page, its JSON and its static files."""

from __future__ import annotations

import httpx

from templator.app import create_app
from templator.connections import Connections


async def test_a_disabled_dashboard_is_not_served(store_connections: Connections) -> None:
    conf = store_connections.settings.model_copy(update={"dashboard_enabled": False})
    app = create_app(conf, connections=store_connections)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            for path in ("/dashboard", "/dashboard/api/summary", "/dashboard/static/dashboard.js"):
                assert (await http.get(path)).status_code == 404, path


async def test_an_enabled_dashboard_serves_its_page_and_vendored_chart_library(
    store_connections: Connections,
) -> None:
    app = create_app(store_connections.settings, connections=store_connections)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            page = await http.get("/dashboard")
            library = await http.get("/dashboard/static/vendor/uPlot.iife.min.js")
    assert page.status_code == 200 and "uPlot.iife.min.js" in page.text
    assert "http" not in page.text.split("<body>")[1].replace("http.", "")  # nothing remote
    assert library.status_code == 200 and "uPlot" in library.text
