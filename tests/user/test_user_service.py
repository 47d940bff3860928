"""Users: creation, lookup, roles and erasure against the real database."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from templator.audit.service import CLI
from templator.connections import Connections
from templator.kit.pagination import PageParams
from templator.models import User, UserRole
from templator.user.errors import EmailTaken, UserNotFound
from templator.user.schemas import UserCreate, UserUpdate
from templator.user.service import UserService
from tests.support.factories import make_project, make_session, make_template


async def test_create_normalises_email_and_defaults_role(
    db_session: AsyncSession, connections: Connections
) -> None:
    user = await UserService(db_session, connections.cache).create(
        UserCreate(email="Ana@Example.COM"), origin=CLI
    )
    assert user.email == "ana@example.com"
    assert user.role is UserRole.USER


async def test_duplicate_email_is_refused_and_the_transaction_stays_usable(
    db_session: AsyncSession, connections: Connections
) -> None:
    service = UserService(db_session, connections.cache)
    await service.create(UserCreate(email="dup@example.com"), origin=CLI)
    with pytest.raises(EmailTaken, match=r"dup@example\.com"):
        await service.create(UserCreate(email="DUP@example.com"), origin=CLI)
    other = await service.create(UserCreate(email="other@example.com"), origin=CLI)
    assert other.email == "other@example.com"


async def test_a_fullwidth_address_is_the_same_account_as_its_ascii_form(
    db_session: AsyncSession, connections: Connections
) -> None:
    service = UserService(db_session, connections.cache)
    user = await service.create(UserCreate(email="a@example.com"), origin=CLI)
    with pytest.raises(EmailTaken):
        await service.create(UserCreate(email="\uff41@example.com"), origin=CLI)  # ａ
    with pytest.raises(EmailTaken):
        await service.create(UserCreate(email="\uff21@ＥＸＡＭＰＬＥ.com"), origin=CLI)  # Ａ
    assert (await service.find("\uff41@example.com")).id == user.id
    fresh = await service.create(UserCreate(email="\uff42@example.com"), origin=CLI)
    assert fresh.email == "b@example.com"


def test_invalid_email_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="email"):
        UserCreate(email="not-an-email")
    with pytest.raises(ValidationError, match="extra"):
        UserCreate.model_validate({"email": "a@b.co", "is_admin": True})


async def test_find_by_id_or_email(db_session: AsyncSession, connections: Connections) -> None:
    service = UserService(db_session, connections.cache)
    user = await service.create(UserCreate(email="find@example.com"), origin=CLI)
    assert (await service.find(user.id)).id == user.id
    assert (await service.find("FIND@example.com")).id == user.id
    with pytest.raises(UserNotFound):
        await service.find("nobody@example.com")


async def test_role_change_and_profile_update(
    db_session: AsyncSession, connections: Connections
) -> None:
    service = UserService(db_session, connections.cache)
    user = await service.create(UserCreate(email="role@example.com"), origin=CLI)
    assert (await service.set_role(user.id, UserRole.EXPERT, origin=CLI)).role is UserRole.EXPERT
    assert (await service.update(user.id, UserUpdate(name="Ana"))).name == "Ana"
    with pytest.raises(UserNotFound):
        await service.set_role("a" * 25, UserRole.ADMIN, origin=CLI)


async def test_erase_removes_everything_and_reports_counts(
    db_session: AsyncSession, connections: Connections
) -> None:
    service = UserService(db_session, connections.cache)
    user = await service.create(UserCreate(email="gone@example.com"), origin=CLI)
    owner = await db_session.get(User, user.id)
    assert owner is not None
    project = await make_project(db_session, user=owner)
    await make_session(db_session, project=project)
    await make_template(db_session, project=project)
    erasure = await service.erase(user.id, origin=CLI)
    assert erasure.rows == {"projects": 1, "ai_sessions": 1, "templates": 1, "processing_logs": 0}
    with pytest.raises(UserNotFound):
        await service.get(user.id)


async def test_list_pages_have_no_gaps_or_duplicates(
    db_session: AsyncSession, connections: Connections
) -> None:
    service = UserService(db_session, connections.cache)
    made = {
        (await service.create(UserCreate(email=f"p{i}@example.com"), origin=CLI)).id
        for i in range(7)
    }
    seen: list[str] = []
    params = PageParams(limit=3)
    while True:
        page = await service.list(params)
        seen += [u.id for u in page.items]
        if page.next_cursor is None:
            break
        params = PageParams(limit=3, cursor=page.next_cursor)
    assert made <= set(seen)
    assert len(seen) == len(set(seen))
