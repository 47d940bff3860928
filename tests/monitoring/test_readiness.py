"""Honest readiness: the cache down is `degraded` (200, the API still serves), PostgreSQL
down is 503; pool figures are numbers; `templator health` says the same (issue #13.6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from templator.app import create_app
from templator.config import PROJECT_ROOT, ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.process import free_port

POOL_FIELDS = {"size", "open", "checked_out", "idle", "overflow", "waiting"}


@pytest.fixture
async def ready_of(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    """GET /health/ready of the real app on the given stores."""
    opened: list[Connections] = []

    async def ready(*, database_url: str, redis_url: str) -> httpx.Response:
        conns = Connections(
            settings, urls=StoreUrls(database_url, redis_url, None), role=ProcessRole.TEST
        )
        opened.append(conns)
        app = create_app(settings, connections=conns)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                await client.get("/health")  # the read pool opens with the lifespan
                return await client.get("/health/ready")

    yield ready
    for conns in opened:
        await conns.close()


async def test_redis_down_is_degraded_and_still_ready(
    ready_of: Callable[..., Any], settings: Settings
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    response = await ready_of(database_url=settings.database_url, redis_url=dead)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "degraded"
    assert body["down"] == ["redis"]
    assert body["components"]["redis"]["role"] == "cache"
    assert body["components"]["postgres"]["status"] == "up"


async def test_postgres_down_is_not_ready(ready_of: Callable[..., Any], settings: Settings) -> None:
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"
    response = await ready_of(database_url=dead, redis_url=settings.redis_url)
    assert response.status_code == 503
    body = response.json()
    # The schema revision cannot be read either while PostgreSQL is down.
    assert body["status"] == "down" and body["down"] in (["postgres"], ["postgres", "schema"])
    assert body["components"]["postgres"]["role"] == "required"


async def test_pool_figures_are_numbers(ready_of: Callable[..., Any], settings: Settings) -> None:
    response = await ready_of(database_url=settings.database_url, redis_url=settings.redis_url)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "up" and body["down"] == []
    details = body["components"]["postgres"]["details"]
    for name in ("pool", "read_pool"):
        figures = details[name]
        assert figures.keys() >= POOL_FIELDS, figures
        assert all(isinstance(figures[k], int) and figures[k] >= 0 for k in POOL_FIELDS)
    assert details["pool"]["size"] == settings.db_pool_size
    # The probe itself held one connection, which is back in the pool now.
    assert details["pool"]["open"] >= 1 and details["pool"]["overflow"] == 0


def _health(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    templator = str(Path(sys.executable).parent / "templator")
    return subprocess.run(
        [templator, "health", "--json", "--timeout", "2"],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_templator_health_agrees_with_readiness(settings: Settings) -> None:
    assert settings.database_url and settings.redis_url
    degraded = _health(
        {"DATABASE_URL": settings.database_url, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    )
    assert degraded.returncode == 0, degraded.stdout + degraded.stderr
    assert json.loads(degraded.stdout)["status"] == "degraded"
    down = _health(
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
            "REDIS_URL": settings.redis_url,
        }
    )
    assert down.returncode == 1
    assert json.loads(down.stdout)["status"] == "down"
