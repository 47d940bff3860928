"""User rules: creation, lookup and role changes (erasure: `user.gdpr`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from templator.kit.pagination import Page, PageParams
from templator.models import UserRole
from templator.user import schemas
from templator.user.errors import UserNotFound
from templator.user.repository import UserRepository


class UserService:
    """What can be done with users; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.repository = UserRepository(session)

    async def create(self, data: schemas.UserCreate) -> schemas.User:
        """Create a user (email normalised to lowercase; duplicates refused)."""
        return await self.repository.insert(data)

    async def get(self, user_id: str) -> schemas.User:
        """The user, or UserNotFound."""
        user = await self.repository.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        return user

    async def find(self, id_or_email: str) -> schemas.User:
        """Look a user up by id or email."""
        user = (
            await self.repository.get_by_email(id_or_email)
            if "@" in id_or_email
            else await self.repository.get(id_or_email)
        )
        if user is None:
            raise UserNotFound(id_or_email)
        return user

    async def list(self, params: PageParams) -> Page[schemas.User]:
        """All users, newest first."""
        return await self.repository.list(params)

    async def update(self, user_id: str, data: schemas.UserUpdate) -> schemas.User:
        """Change a user's profile."""
        values = data.model_dump(exclude_unset=True)
        user = await self.repository.update(user_id, values) if values else await self.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        return user

    async def set_role(self, user_id: str, role: UserRole) -> schemas.User:
        """Change a user's role (the caller checks that the actor is ADMIN)."""
        user = await self.repository.set_role(user_id, role)
        if user is None:
            raise UserNotFound(user_id)
        return user
