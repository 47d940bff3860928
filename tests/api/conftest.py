"""The real app on real stores, driven over HTTP (ASGI) with real API tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import delete

from templator.app import create_app
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService
from templator.connections import Connections
from templator.kit.ids import new_id
from templator.kit.uow import unit_of_work
from templator.models import User, UserRole
from templator.user.schemas import UserCreate
from templator.user.service import UserService


@dataclass
class Caller:
    """A user and their bearer token."""

    id: str
    email: str
    role: UserRole
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def client(store_connections: Connections) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, whose lifespan has run."""
    app = create_app(store_connections.settings, connections=store_connections)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
async def make_caller(store_connections: Connections) -> AsyncIterator[object]:
    """A factory of committed users with tokens; all are deleted after the test."""
    made: list[str] = []

    async def make(role: UserRole = UserRole.USER) -> Caller:
        async with unit_of_work(store_connections.sessionmaker, store_connections.cache) as session:
            email = f"{new_id()}@example.com"
            user = await UserService(session).create(UserCreate(email=email, role=role))
            token = await TokenService(session, store_connections.cache).create(
                user.id, TokenCreate(name="test")
            )
        made.append(user.id)
        return Caller(user.id, email, role, token.token)

    yield make
    async with store_connections.sessionmaker() as session:
        await session.execute(delete(User).where(User.id.in_(made)))
        await session.commit()
