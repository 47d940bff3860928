"""All SQL about users (SQLAlchemy Core: one statement, one row, no ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, paginate_newest_first
from templator.kit.raw import driver_connection
from templator.models import (
    AISession,
    ApiToken,
    ProcessingLog,
    Project,
    StoredObject,
    Template,
    TemplateVersion,
    User,
    UserRole,
)
from templator.user import schemas
from templator.user.errors import EmailTaken

_COLUMNS = (User.id, User.email, User.name, User.role, User.created_at, User.updated_at)


_SELECT_BY_ID = "SELECT id, email, name, role, created_at, updated_at FROM users WHERE id = %s"
_INSERT = (
    "INSERT INTO users (id, email, name, role) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (email) DO NOTHING RETURNING id, email, name, role, created_at, updated_at"
)


def _plain(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row._mapping.items()}


@dataclass(frozen=True, slots=True)
class Owned:
    """What goes with a user: ids of their sessions and templates, token prefixes, objects."""

    session_ids: list[str]
    template_ids: list[str]
    token_prefixes: list[str]
    object_keys: list[str]


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


class UserRepository:
    """Reads and writes of the users table, on the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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

    async def update(self, user_id: str, values: dict[str, Any]) -> schemas.User | None:
        """Apply `values`; None when the user does not exist."""
        conn = await self.session.connection()
        statement = update(User).where(User.id == user_id).values(**values).returning(*_COLUMNS)
        row = (await conn.execute(statement)).first()
        return _to_schema(row) if row else None

    async def set_role(self, user_id: str, role: UserRole) -> schemas.User | None:
        """Change a user's role."""
        return await self.update(user_id, {"role": role})

    async def count_owned(self, user_id: str) -> dict[str, int]:
        """How many rows of each table belong to the user (what erasure removes)."""
        conn = await self.session.connection()
        projects = select(Project.id).where(Project.user_id == user_id).scalar_subquery()
        sessions = select(AISession.id).where(AISession.user_id == user_id).scalar_subquery()
        counts = select(
            select(func.count()).where(Project.user_id == user_id).scalar_subquery(),
            select(func.count()).where(AISession.user_id == user_id).scalar_subquery(),
            select(func.count()).where(Template.project_id.in_(projects)).scalar_subquery(),
            select(func.count()).where(ProcessingLog.session_id.in_(sessions)).scalar_subquery(),
        )
        row = (await conn.execute(counts)).one()
        return dict(
            zip(("projects", "ai_sessions", "templates", "processing_logs"), row, strict=True)
        )

    async def lock_with_contents(self, user_id: str) -> Owned | None:
        """Lock the user, their projects, sessions and templates; None if there is no user.

        Parents are locked before children (as a project delete does), so a project,
        session, template, token or object row being added for the user either commits
        before its ids are read here or waits and fails on its foreign key once the
        erasure has committed.
        """
        conn = await self.session.connection()
        found = await conn.execute(select(User.id).where(User.id == user_id).with_for_update())
        if found.first() is None:
            return None
        projects = select(Project.id).where(Project.user_id == user_id)
        await conn.execute(projects.order_by(Project.id).with_for_update())

        async def scalars(statement: Any) -> list[str]:
            return list((await conn.execute(statement)).scalars())

        sessions = select(AISession.id).where(
            or_(AISession.user_id == user_id, AISession.project_id.in_(projects))
        )
        templates = select(Template.id).where(Template.project_id.in_(projects))
        return Owned(
            session_ids=await scalars(sessions.order_by(AISession.id).with_for_update()),
            template_ids=await scalars(templates.order_by(Template.id).with_for_update()),
            token_prefixes=await scalars(
                select(ApiToken.prefix).where(ApiToken.user_id == user_id)
            ),
            object_keys=await scalars(
                select(StoredObject.key).where(
                    StoredObject.session_id.in_(sessions) | StoredObject.template_id.in_(templates)
                )
            ),
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

    async def export_rows(self, user_id: str) -> dict[str, Any] | None:
        """Every row that is the user's, table by table, JSON-ready (None: no such user).

        Token rows leave out their secret hashes.
        """
        conn = await self.session.connection()
        user = (await conn.execute(select(User.__table__).where(User.id == user_id))).first()
        if user is None:
            return None
        projects = select(Project.id).where(Project.user_id == user_id)
        sessions = select(AISession.id).where(AISession.user_id == user_id)
        templates = select(Template.id).where(Template.project_id.in_(projects))

        async def rows(statement: Any) -> list[dict[str, Any]]:
            return [_plain(r) for r in (await conn.execute(statement)).all()]

        tokens = select(
            ApiToken.id,
            ApiToken.name,
            ApiToken.prefix,
            ApiToken.created_at,
            ApiToken.expires_at,
            ApiToken.revoked_at,
        )
        objects = await rows(
            select(StoredObject.__table__).where(
                StoredObject.session_id.in_(sessions) | StoredObject.template_id.in_(templates)
            )
        )
        return {
            "user": _plain(user),
            "projects": await rows(select(Project.__table__).where(Project.user_id == user_id)),
            "ai_sessions": await rows(
                select(AISession.__table__).where(AISession.user_id == user_id)
            ),
            "templates": await rows(
                select(Template.__table__).where(Template.project_id.in_(projects))
            ),
            "template_versions": await rows(
                select(TemplateVersion.__table__).where(TemplateVersion.template_id.in_(templates))
            ),
            "processing_logs": await rows(
                select(ProcessingLog.__table__).where(ProcessingLog.session_id.in_(sessions))
            ),
            "api_tokens": await rows(tokens.where(ApiToken.user_id == user_id)),
            "objects": objects,
        }
