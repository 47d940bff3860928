"""The app with a work queue whose timing the tests control: retries are due at once
(backoff 0), and the rescuer runs only when a test (or a short claim) asks for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from templator.app import create_app
from templator.connections import Connections
from templator.kit.uow import unit_of_work
from templator.models import UserRole
from tests.api.conftest import Caller, live_api, make_caller

__all__ = ["live_api", "make_caller"]  # the fixtures, shared with tests/api

QUIET_RESCUER = {"work_retry_base_seconds": 0.0, "work_rescue_interval_seconds": 3600.0}


@pytest.fixture
async def work_connections(store_connections: Connections) -> AsyncIterator[Connections]:
    """The test stores, with the queue's timing above; every ready session other tests
    left behind is made a draft again, so claims see only this test's sessions."""
    settings = store_connections.settings.model_copy(update=QUIET_RESCUER)
    conns = Connections(settings, urls=store_connections.urls, role=store_connections.role)
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        await session.execute(
            text("UPDATE ai_sessions SET ready_at = NULL WHERE status = 'PENDING'")
        )
        await session.execute(
            text(
                "UPDATE ai_sessions SET status = 'CANCELLED', lease_expires_at = NULL "
                "WHERE status = 'PROCESSING'"
            )
        )
    yield conns
    await conns.close()


@pytest.fixture
async def work_client(work_connections: Connections) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app (its lifespan runs: the LISTEN connection is up)."""
    app = create_app(work_connections.settings, connections=work_connections)
    async with app.router.lifespan_context(app):
        await app.state.work_listener.connected.wait()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


@dataclass
class Queue:
    """A tenant (a user with a project), a worker token, and the calls of both."""

    client: httpx.AsyncClient
    owner: Caller
    worker: Caller
    project: str

    async def create(self, owner: Caller | None = None, **body: Any) -> dict[str, Any]:
        """A session in the owner's (or `owner`'s) first project."""
        who = owner or self.owner
        project = self.project if owner is None else await self.project_of(who)
        response = await self.client.post(
            "/api/v1/sessions", json={"project_id": project, **body}, headers=who.headers
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def project_of(self, who: Caller) -> str:
        response = await self.client.post(
            "/api/v1/projects", json={"name": "p"}, headers=who.headers
        )
        assert response.status_code == 201, response.text
        project: str = response.json()["id"]
        return project

    async def claim(self, limit: int = 1, *, worker: str = "w1", **body: Any) -> list[Any]:
        """The claims of one claim request (asserting it succeeded)."""
        response = await self.client.post(
            "/api/v1/work/claim",
            json={"worker": worker, "limit": limit, **body},
            headers=self.worker.headers,
        )
        assert response.status_code == 200, response.text
        items: list[Any] = response.json()["items"]
        return items

    async def write(
        self, method: str, path: str, lease: str | None, **kwargs: Any
    ) -> httpx.Response:
        """A worker's write with (or without) a Lease-Token."""
        headers = dict(self.worker.headers)
        if lease is not None:
            headers["Lease-Token"] = lease
        return await self.client.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    async def get(self, path: str) -> Any:
        response = await self.client.get(f"/api/v1{path}", headers=self.owner.headers)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
async def queue(work_client: httpx.AsyncClient, make_caller: Any) -> Queue:
    """A tenant and a worker on a quiet queue."""
    owner = await make_caller()
    worker = await make_caller(UserRole.ADMIN, scopes=("worker",))
    q = Queue(work_client, owner, worker, "")
    q.project = await q.project_of(owner)
    return q
