"""Fixtures for session tests that need real commits (races, cache, pub/sub)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import delete

from templator.connections import Connections
from templator.kit.actor import Actor
from templator.kit.ids import new_id
from templator.models import Project, User, UserRole


@dataclass
class Committed:
    """A user and project committed for real (deleted after the test)."""

    actor: Actor
    project_id: str


@pytest.fixture
async def committed(connections: Connections) -> AsyncIterator[Committed]:
    user_id, project_id = new_id(), new_id()
    async with connections.sessionmaker() as session:
        session.add(User(id=user_id, email=f"{user_id}@example.com", role=UserRole.USER))
        await session.flush()
        session.add(Project(id=project_id, user_id=user_id, name="Race track"))
        await session.commit()
    yield Committed(Actor(user_id, UserRole.USER), project_id)
    async with connections.sessionmaker() as session:
        await session.execute(delete(User).where(User.id == user_id))
        await session.commit()
