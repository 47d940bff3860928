"""All SQL about idempotency_keys (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from templator.kit.repository import Repository
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


class IdempotencyRepository(Repository):
    """Reads and writes of idempotency_keys (SQLAlchemy Core), on the caller's session."""

    __slots__ = ()

    async def try_lock(self, user_id: str, key: str) -> bool:
        """Hold (user, key) until this transaction ends; False when another holds it."""
        lock = func.pg_try_advisory_xact_lock(func.hashtextextended(f"{user_id}:{key}", _LOCK_SEED))
        return bool(await self.scalar(select(lock)))

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
        row = await self.one(stmt)
        return None if row is None else KeyRecord(*tuple(row))

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
        await self.execute(stmt)

    async def delete_expired(self, now: datetime, *, dry_run: bool = False) -> int:
        """Delete (with `dry_run`, count) every key that expired before `now`."""
        expired = IdempotencyKey.expires_at < now
        if dry_run:
            return int(
                await self.scalar(select(func.count()).select_from(IdempotencyKey).where(expired))
            )
        return await self.execute(delete(IdempotencyKey).where(expired))
