"""All SQL about idempotency_keys (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from templator.models import IdempotencyKey

# pg_try_advisory_xact_lock(bigint) of hashtextextended(user:key, this seed): the lock
# space of a request in flight (the one-key form shares no space with the two-key form).
_LOCK_SEED = 0x1DE4


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key's first request (method, path, fingerprint) and the answer it got."""

    method: str
    path: str
    fingerprint: bytes
    response_status: int
    response_body: Any
    expires_at: datetime


class IdempotencyRepository:
    """Reads and writes of idempotency_keys, on the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def try_lock(self, user_id: str, key: str) -> bool:
        """Hold (user, key) until this transaction ends; False when another holds it."""
        lock = func.pg_try_advisory_xact_lock(func.hashtextextended(f"{user_id}:{key}", _LOCK_SEED))
        conn = await self.session.connection()
        return bool((await conn.execute(select(lock))).scalar_one())

    async def find(self, user_id: str, key: str) -> KeyRecord | None:
        """The key's record, expired or not."""
        t = IdempotencyKey.__table__
        stmt = select(
            t.c.method,
            t.c.path,
            t.c.fingerprint,
            t.c.response_status,
            t.c.response_body,
            t.c.expires_at,
        ).where(t.c.user_id == user_id, t.c.key == key)
        conn = await self.session.connection()
        row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else KeyRecord(*row)

    async def save(self, user_id: str, key: str, record: KeyRecord) -> None:
        """Write the key's record (replacing an expired one)."""
        values = {
            "user_id": user_id,
            "key": key,
            "method": record.method,
            "path": record.path,
            "fingerprint": record.fingerprint,
            "response_status": record.response_status,
            "response_body": record.response_body,
            "expires_at": record.expires_at,
        }
        stmt = insert(IdempotencyKey).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "key"],
            set_={name: stmt.excluded[name] for name in values if name not in ("user_id", "key")}
            | {"created_at": func.now()},
        )
        conn = await self.session.connection()
        await conn.execute(stmt)

    async def delete_expired(self, now: datetime, *, dry_run: bool = False) -> int:
        """Delete (with `dry_run`, count) every key that expired before `now`."""
        conn = await self.session.connection()
        expired = IdempotencyKey.expires_at < now
        if dry_run:
            stmt = select(func.count()).select_from(IdempotencyKey).where(expired)
            return int((await conn.execute(stmt)).scalar_one())
        result = await conn.execute(delete(IdempotencyKey).where(expired))
        return int(result.rowcount or 0)
