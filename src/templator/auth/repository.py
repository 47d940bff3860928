"""All SQL about API tokens: the hot lookup by prefix is raw psycopg (kit/raw.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import insert, select, text, update

from templator.auth import schemas
from templator.epoch import BUMP
from templator.kit.ids import new_id
from templator.kit.raw import driver_connection
from templator.kit.repository import JsonRow, Repository
from templator.models import ApiToken


def lookup_sql(placeholder: str) -> str:
    """The lookup of a token by prefix with its user's role and the authentication epoch
    of the same snapshot (the columns of `TokenLookup`), the prefix bound to
    `placeholder`: `%s` for psycopg, `$n` where another statement composes it for
    asyncpg (the hot read's fast path)."""
    return (
        "SELECT t.user_id, u.role, t.secret_hash, t.expires_at, t.revoked_at, e.epoch, "
        "t.scopes FROM api_tokens t JOIN users u ON u.id = t.user_id CROSS JOIN auth_epoch e "
        f"WHERE t.prefix = {placeholder}"
    )


LOOKUP = lookup_sql("%s")
_COLUMNS = (
    ApiToken.id,
    ApiToken.user_id,
    ApiToken.prefix,
    ApiToken.name,
    ApiToken.created_at,
    ApiToken.expires_at,
    ApiToken.revoked_at,
    ApiToken.scopes,
)


class TokenLookup(NamedTuple):
    """What authentication needs of a token: its user, the user's role, hash and dates,
    and the authentication epoch they were read at."""

    user_id: str
    role: str
    secret_hash: str
    expires_at: datetime | None
    revoked_at: datetime | None
    epoch: int
    scopes: list[str]


class TokenOwner(NamedTuple):
    """The user owning a token, and the token's prefix."""

    user_id: str
    prefix: str


class TokenRepository(Repository):
    """Reads and writes of api_tokens, on the caller's session."""

    __slots__ = ()

    async def export_of_user(self, user_id: str) -> list[JsonRow]:
        """The user's tokens in their JSON form, without their secret hashes."""
        return await self.json_rows(
            select(
                ApiToken.id,
                ApiToken.name,
                ApiToken.prefix,
                ApiToken.created_at,
                ApiToken.expires_at,
                ApiToken.revoked_at,
            ).where(ApiToken.user_id == user_id)
        )

    async def insert(
        self,
        *,
        user_id: str,
        prefix: str,
        secret_hash: str,
        name: str,
        expires_at: datetime | None,
        scopes: list[str],
    ) -> schemas.TokenInfo:
        """Insert one token; its columns (without the hash)."""
        conn = await self.session.connection()
        row = (
            await conn.execute(
                insert(ApiToken)
                .values(
                    id=new_id(),
                    user_id=user_id,
                    prefix=prefix,
                    secret_hash=secret_hash,
                    name=name,
                    expires_at=expires_at,
                    scopes=scopes,
                )
                .returning(*_COLUMNS)
            )
        ).one()
        return schemas.TokenInfo.model_validate(row._mapping)

    async def lookup(self, prefix: str) -> TokenLookup | None:
        """The token with this prefix and its user's role (one round trip), or None."""
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(LOOKUP, (prefix,))
            row = await cursor.fetchone()
        return None if row is None else TokenLookup(*row)

    async def list_for_user(self, user_id: str) -> list[schemas.TokenInfo]:
        """A user's tokens, newest first."""
        conn = await self.session.connection()
        rows = await conn.execute(
            select(*_COLUMNS)
            .where(ApiToken.user_id == user_id)
            .order_by(ApiToken.created_at.desc())
        )
        return [schemas.TokenInfo(**r._mapping) for r in rows]

    async def owner(self, token_id: str) -> TokenOwner | None:
        """The token's user and prefix, or None when it does not exist."""
        conn = await self.session.connection()
        row = (
            await conn.execute(
                select(ApiToken.user_id, ApiToken.prefix).where(ApiToken.id == token_id)
            )
        ).first()
        return None if row is None else TokenOwner(row.user_id, row.prefix)

    async def revoke(self, token_id: str) -> schemas.TokenInfo:
        """Mark the (existing) token revoked now."""
        conn = await self.session.connection()
        row = (
            await conn.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id)
                .values(revoked_at=datetime.now(UTC))
                .returning(*_COLUMNS)
            )
        ).one()
        return schemas.TokenInfo(**row._mapping)

    async def bump_epoch(self) -> int:
        """Make every cached token record untrusted once this transaction commits (and
        notify the API processes): the new authentication epoch."""
        conn = await self.session.connection()
        return int((await conn.execute(text(BUMP))).scalar_one())

    async def prefixes_of(self, user_id: str) -> list[str]:
        """Prefixes of all of a user's tokens."""
        conn = await self.session.connection()
        return list(
            (
                await conn.execute(select(ApiToken.prefix).where(ApiToken.user_id == user_id))
            ).scalars()
        )
