"""Idempotent creates (IETF draft-ietf-httpapi-idempotency-key-header, as Stripe runs it).

A create sent with an `Idempotency-Key` runs in one transaction that also holds a
transaction-scoped advisory lock on (user, key) and, before it commits, writes the key's
row with the request's fingerprint and the answer. So:

* a retry after the first committed gets the stored answer (same fingerprint) or
  `idempotency_key_reused` (another method, path or body);
* a retry while the first is still running finds the lock taken: `idempotency_key_in_flight`;
* a create that fails or crashes rolls back with its key: nothing half-done remains and a
  retry runs it afresh (only successful answers are stored; errors are not replayed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from templator.idempotency.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from templator.idempotency.repository import IdempotencyRepository, KeyRecord


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """Who sent which key with which request."""

    user_id: str
    key: str
    method: str
    path: str
    fingerprint: bytes


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The first answer to a key, to be replayed."""

    status: int
    body: Any


def fingerprint(method: str, path: str, parts: list[bytes]) -> bytes:
    """SHA-256 of the method, the path and the body's parts, each length-prefixed."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), *parts):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


class IdempotencyService:
    """Claims keys and stores their answers; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.repository = IdempotencyRepository(session)

    async def claim(self, request: IdempotentRequest) -> StoredAnswer | None:
        """The stored answer to replay, or None: the caller runs the create (holding the
        key until its transaction ends). Raises when the key is in flight or was used
        with another request."""
        if not await self.repository.try_lock(request.user_id, request.key):
            raise IdempotencyKeyInFlight
        record = await self.repository.find(request.user_id, request.key)
        if record is None or record.expires_at <= datetime.now(UTC):
            return None
        if (record.method, record.path, record.fingerprint) != (
            request.method,
            request.path,
            request.fingerprint,
        ):
            raise IdempotencyKeyReused
        return StoredAnswer(record.response_status, record.response_body)

    async def store(
        self, request: IdempotentRequest, *, status: int, body: Any, ttl: timedelta
    ) -> None:
        """Keep the create's answer under its key until `ttl` from now."""
        await self.repository.save(
            request.user_id,
            request.key,
            KeyRecord(
                method=request.method,
                path=request.path,
                fingerprint=request.fingerprint,
                response_status=status,
                response_body=body,
                expires_at=datetime.now(UTC) + ttl,
            ),
        )

    async def prune(self, *, dry_run: bool = False) -> int:
        """Delete (with `dry_run`, count) the expired keys."""
        return await self.repository.delete_expired(datetime.now(UTC), dry_run=dry_run)
