"""All SQL about users (SQLAlchemy Core: one statement, one row, no ORM objects)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update

from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, paginate_newest_first
from templator.kit.raw import driver_connection
from templator.kit.repository import JsonRow, Repository
from templator.models import User, UserRole
from templator.user import schemas
from templator.user.errors import EmailTaken

_COLUMNS = (User.id, User.email, User.name, User.role, User.created_at, User.updated_at)


_SELECT_BY_ID = "SELECT id, email, name, role, created_at, updated_at FROM users WHERE id = %s"
_INSERT = (
    "INSERT INTO users (id, email, name, role) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (email) DO NOTHING RETURNING id, email, name, role, created_at, updated_at"
)


def _to_schema(row: Any) -> schemas.User:
    return schemas.User.model_validate(row._mapping)


def _from_tuple(row: tuple[Any, ...]) -> schemas.User:
    # Rows come from our own table: construct without re-validating every field.
    user_id, email, name, role, created_at, updated_at = row
    return schemas.User.model_construct(
        id=user_id,
        email=email,
        name=name,
        role=UserRole(role),
        created_at=created_at,
        updated_at=updated_at,
    )


class UserRepository(Repository):
    """Reads and writes of the users table, on the caller's session."""

    __slots__ = ()

    async def get(self, user_id: str) -> schemas.User | None:
        """The user with this id, or None (hot path: raw psycopg, one round trip)."""
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(_SELECT_BY_ID, (user_id,))
            row = await cursor.fetchone()
        return _from_tuple(row) if row else None

    async def get_by_email(self, email: str) -> schemas.User | None:
        """The user with this email (however written: `schemas.normalize_email`), or None."""
        conn = await self.session.connection()
        wanted = schemas.normalize_email(email)
        row = (await conn.execute(select(*_COLUMNS).where(User.email == wanted))).first()
        return _to_schema(row) if row else None

    async def insert(self, data: schemas.UserCreate) -> schemas.User:
        """Insert one user in one statement; a duplicate email raises EmailTaken.

        ON CONFLICT DO NOTHING keeps the caller's transaction usable (no error, no
        savepoint round trips) and writes nothing when the email is taken.
        """
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(
                _INSERT,
                (new_id(), schemas.normalize_email(data.email), data.name, data.role.value),
            )
            row = await cursor.fetchone()
        if row is None:
            raise EmailTaken(data.email)
        return _from_tuple(row)

    async def list(self, params: PageParams) -> Page[schemas.User]:
        """Users, newest first."""
        conn = await self.session.connection()
        statement = paginate_newest_first(
            select(*_COLUMNS), created_at=User.created_at, id_column=User.id, params=params
        )
        rows = [_to_schema(r) for r in (await conn.execute(statement)).all()]
        return make_page(rows, params=params, key=lambda u: (u.created_at, u.id))

    async def _set(self, user_id: str, **values: object) -> schemas.User | None:
        statement = update(User).where(User.id == user_id).values(**values).returning(*_COLUMNS)
        row = await self.one(statement)
        return _to_schema(row) if row else None

    async def update(self, user_id: str, data: schemas.UserUpdate) -> schemas.User | None:
        """Apply the fields `data` sets; None when the user does not exist."""
        return await self._set(user_id, **data.model_dump(exclude_unset=True))

    async def set_role(self, user_id: str, role: UserRole) -> schemas.User | None:
        """Change a user's role."""
        return await self._set(user_id, role=role)

    async def lock(self, user_id: str) -> bool:
        """Lock the user's row FOR UPDATE; False when there is no such user."""
        return (
            await self.one(select(User.id).where(User.id == user_id).with_for_update()) is not None
        )

    async def any_exists(self) -> bool:
        """Whether there is at least one user."""
        conn = await self.session.connection()
        return bool((await conn.execute(select(select(User.id).exists()))).scalar())

    async def delete(self, user_id: str) -> bool:
        """Delete the user; the database cascades to everything that is theirs."""
        conn = await self.session.connection()
        result = await conn.execute(delete(User).where(User.id == user_id))
        return bool(result.rowcount)

    async def export_row(self, user_id: str) -> JsonRow | None:
        """The user's row in its JSON form, or None."""
        rows = await self.json_rows(select(User.__table__).where(User.id == user_id))
        return rows[0] if rows else None
