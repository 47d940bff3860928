"""/metrics and /health/ready can be closed to all but the scraper (issue #21): with
MONITORING_TOKEN (or MONITORING_TOKEN_FILE) set they need it as a bearer token; /health
stays open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from templator.app import create_app
from templator.connections import Connections

TOKEN = "monitoring-token-for-the-test-0123456789"
GUARDED = ["/metrics", "/health/ready"]


@asynccontextmanager
async def _client(conns: Connections, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    conf = conns.settings.model_copy(update=settings)
    app = create_app(conf, connections=conns)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.mark.parametrize("path", GUARDED)
async def test_with_a_token_set_the_endpoint_refuses_anyone_without_it(
    store_connections: Connections, path: str
) -> None:
    async with _client(store_connections, monitoring_token=SecretStr(TOKEN)) as http:
        bare = await http.get(path)
        wrong = await http.get(path, headers={"Authorization": "Bearer not-it"})
        right = await http.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        live = await http.get("/health")
    assert bare.status_code == 401, bare.text
    assert bare.headers["content-type"].startswith("application/problem+json")
    assert "MONITORING_TOKEN" in bare.json()["detail"]
    assert wrong.status_code == 401
    assert right.status_code == 200, right.text
    assert live.status_code == 200


async def test_the_token_may_come_from_a_file(
    store_connections: Connections, tmp_path: Path
) -> None:
    secret = tmp_path / "monitoring.token"
    secret.write_text(TOKEN + "\n")
    async with _client(store_connections, monitoring_token_file=secret) as http:
        assert (await http.get("/metrics")).status_code == 401
        ok = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "templator_" in ok.text


async def test_without_a_token_they_stay_open(store_connections: Connections) -> None:
    async with _client(store_connections) as http:
        for path in GUARDED:
            assert (await http.get(path)).status_code == 200
