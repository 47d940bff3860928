"""An exhausted database pool is overload, not a bug: 503 with Retry-After, nothing written."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from sqlalchemy import func, select

from templator.app import create_app
from templator.config import ProcessRole
from templator.connections import Connections, StoreUrls
from templator.models import Project
from tests.api.conftest import Caller

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]


async def test_pool_exhausted_answers_503_busy_and_writes_nothing(
    store_connections: Connections, make_caller: MakeCaller
) -> None:
    owner = await make_caller()
    conf = store_connections.settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 1}
    )
    urls = StoreUrls(store_connections.urls.database_url, store_connections.urls.redis_url, None)
    conns = Connections(conf, urls=urls, role=ProcessRole.TEST)
    app = create_app(conf, connections=conns)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                warm = await client.get("/api/v1/projects", headers=owner.headers)
                assert warm.status_code == 200  # the token record is cached now
                async with conns.engine.connect() as held:  # the only connection
                    await held.exec_driver_sql("SELECT 1")
                    response = await client.post(
                        "/api/v1/projects", json={"name": "Busy"}, headers=owner.headers
                    )
    finally:
        await conns.close()

    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "busy"
    async with store_connections.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Project).where(Project.user_id == owner.id)
        )
    assert count == 0
