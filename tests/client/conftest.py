"""The client and the worker runtime against the real app (ASGI, real auth, real stores)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from templator.app import create_app
from templator.audit.service import CLI
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService
from templator.client import AsyncClient
from templator.connections import Connections
from templator.kit.uow import unit_of_work
from templator.models import UserRole
from tests.api.conftest import Caller, live_api, make_caller

__all__ = ["live_api", "make_caller"]
MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]
BASE = "http://testserver"


@pytest.fixture
async def api_app(store_connections: Connections) -> AsyncIterator[FastAPI]:
    """The app, its lifespan run (the claim's wake-ups and the rescuer live there)."""
    app = create_app(store_connections.settings, connections=store_connections)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def web(api_app: FastAPI, make_caller: MakeCaller) -> AsyncIterator[AsyncClient]:
    """The web app's client: a USER's token."""
    owner = await make_caller()
    transport = httpx.ASGITransport(app=api_app)
    async with AsyncClient(BASE, owner.token, transport=transport) as client:
        yield client


@pytest.fixture
async def worker_token(make_caller: MakeCaller, store_connections: Connections) -> str:
    """A worker credential: an ADMIN's token with scope `worker`."""
    admin = await make_caller(UserRole.ADMIN)
    conns = store_connections
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        created = await TokenService(session, conns.cache).create(
            admin.id,
            TokenCreate(name="worker", scopes=["worker"]),
            origin=CLI,
            owner_role=UserRole.ADMIN,
        )
    return created.token


@pytest.fixture
async def worker_client(api_app: FastAPI, worker_token: str) -> AsyncIterator[AsyncClient]:
    """A worker's client (`worker_token`)."""
    transport = httpx.ASGITransport(app=api_app)
    async with AsyncClient(BASE, worker_token, transport=transport) as client:
        yield client
