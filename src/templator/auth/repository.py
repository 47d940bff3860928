"""All SQL about API tokens: text SQL on the session's own psycopg connection
(kit/repository.py), the hot lookup by prefix included."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from templator.auth import schemas
from templator.epoch import BUMP
from templator.kit.ids import new_id
from templator.kit.repository import JsonRow, Repository, RowModel


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
TOKEN = RowModel(schemas.TokenInfo)
_INSERT = (
    "INSERT INTO api_tokens (id, user_id, prefix, secret_hash, name, expires_at, scopes) "
    f"VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {TOKEN.columns}"
)
_OF_USER = f"SELECT {TOKEN.columns} FROM api_tokens WHERE user_id = %s ORDER BY created_at DESC"
_OWNER = "SELECT user_id, prefix FROM api_tokens WHERE id = %s"
_REVOKE = f"UPDATE api_tokens SET revoked_at = %s WHERE id = %s RETURNING {TOKEN.columns}"
_PREFIXES = "SELECT prefix FROM api_tokens WHERE user_id = %s"
_EXPORT = (
    "SELECT id, name, prefix, created_at, expires_at, revoked_at FROM api_tokens WHERE user_id = %s"
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
        return await self.fetch_json_rows(_EXPORT, (user_id,))

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
        row = await self.fetch_one(
            _INSERT, (new_id(), user_id, prefix, secret_hash, name, expires_at, scopes)
        )
        assert row is not None  # INSERT … RETURNING returns the row it inserted
        return TOKEN(row)

    async def lookup(self, prefix: str) -> TokenLookup | None:
        """The token with this prefix and its user's role (one round trip), or None."""
        row = await self.fetch_one(LOOKUP, (prefix,))
        return None if row is None else TokenLookup(*row)

    async def list_for_user(self, user_id: str) -> list[schemas.TokenInfo]:
        """A user's tokens, newest first."""
        return [TOKEN(row) for row in await self.fetch_all(_OF_USER, (user_id,))]

    async def owner(self, token_id: str) -> TokenOwner | None:
        """The token's user and prefix, or None when it does not exist."""
        row = await self.fetch_one(_OWNER, (token_id,))
        return None if row is None else TokenOwner(row[0], row[1])

    async def revoke(self, token_id: str) -> schemas.TokenInfo:
        """Mark the (existing) token revoked now."""
        row = await self.fetch_one(_REVOKE, (datetime.now(UTC), token_id))
        assert row is not None  # the caller found the token in this transaction
        return TOKEN(row)

    async def bump_epoch(self) -> int:
        """Make every cached token record untrusted once this transaction commits (and
        notify the API processes): the new authentication epoch."""
        row = await self.fetch_one(BUMP, ())
        assert row is not None  # auth_epoch always has its one row
        return int(row[0])

    async def prefixes_of(self, user_id: str) -> list[str]:
        """Prefixes of all of a user's tokens."""
        return [str(row[0]) for row in await self.fetch_all(_PREFIXES, (user_id,))]
