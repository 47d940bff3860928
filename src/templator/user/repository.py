"""All SQL about users: text SQL on the session's own psycopg connection
(kit/repository.py), one statement each, rows out as `schemas.User`."""

from __future__ import annotations

from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page
from templator.kit.repository import JsonRow, Repository, RowModel, keyset_after, keyset_params
from templator.models import UserRole
from templator.user import schemas
from templator.user.errors import EmailTaken

USER = RowModel(schemas.User)
_GET = f"SELECT {USER.columns} FROM users WHERE id = %s"
_GET_BY_EMAIL = f"SELECT {USER.columns} FROM users WHERE email = %s"
_INSERT = (
    "INSERT INTO users (id, email, name, role) VALUES (%s, %s, %s, %s) "
    f"ON CONFLICT (email) DO NOTHING RETURNING {USER.columns}"
)
_PAGE = f"SELECT {USER.columns} FROM users WHERE true "
_SET_ROLE = f"UPDATE users SET role = %s::user_role WHERE id = %s RETURNING {USER.columns}"
_LOCK = "SELECT id FROM users WHERE id = %s FOR UPDATE"
_ANY = "SELECT EXISTS (SELECT FROM users)"
_DELETE = "DELETE FROM users WHERE id = %s"
_EXPORT = "SELECT * FROM users WHERE id = %s"


class UserRepository(Repository):
    """Reads and writes of the users table, on the caller's session."""

    __slots__ = ()

    async def get(self, user_id: str) -> schemas.User | None:
        """The user with this id, or None."""
        row = await self.fetch_one(_GET, (user_id,))
        return None if row is None else USER(row)

    async def get_by_email(self, email: str) -> schemas.User | None:
        """The user with this email (however written: `schemas.normalize_email`), or None."""
        row = await self.fetch_one(_GET_BY_EMAIL, (schemas.normalize_email(email),))
        return None if row is None else USER(row)

    async def insert(self, data: schemas.UserCreate) -> schemas.User:
        """Insert one user in one statement; a duplicate email raises EmailTaken.

        ON CONFLICT DO NOTHING keeps the caller's transaction usable (no error, no
        savepoint round trips) and writes nothing when the email is taken.
        """
        row = await self.fetch_one(
            _INSERT, (new_id(), schemas.normalize_email(data.email), data.name, data.role.value)
        )
        if row is None:
            raise EmailTaken(data.email)
        return USER(row)

    async def list(self, params: PageParams) -> Page[schemas.User]:
        """Users, newest first."""
        rows = await self.fetch_all(_PAGE + keyset_after(params), keyset_params(params))
        users = [USER(row) for row in rows]
        return make_page(users, params=params, key=lambda u: (u.created_at, u.id))

    async def update(self, user_id: str, data: schemas.UserUpdate) -> schemas.User | None:
        """Apply the fields `data` sets; None when the user does not exist."""
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            return await self.get(user_id)
        # The columns are the schema's field names, never a client's.
        assignments = ", ".join(f"{field} = %({field})s" for field in changes)
        row = await self.fetch_one(
            f"UPDATE users SET {assignments} WHERE id = %(id)s RETURNING {USER.columns}",
            {**changes, "id": user_id},
        )
        return None if row is None else USER(row)

    async def set_role(self, user_id: str, role: UserRole) -> schemas.User | None:
        """Change a user's role."""
        row = await self.fetch_one(_SET_ROLE, (role.value, user_id))
        return None if row is None else USER(row)

    async def lock(self, user_id: str) -> bool:
        """Lock the user's row FOR UPDATE; False when there is no such user."""
        return await self.fetch_one(_LOCK, (user_id,)) is not None

    async def any_exists(self) -> bool:
        """Whether there is at least one user."""
        row = await self.fetch_one(_ANY, ())
        return bool(row and row[0])

    async def delete(self, user_id: str) -> bool:
        """Delete the user; the database cascades to everything that is theirs."""
        return bool(await self.run(_DELETE, (user_id,)))

    async def export_row(self, user_id: str) -> JsonRow | None:
        """The user's row in its JSON form, or None."""
        rows = await self.fetch_json_rows(_EXPORT, (user_id,))
        return rows[0] if rows else None
