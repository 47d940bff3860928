"""Processing log rules: batched appends, filtered newest-first reads, batched retention."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from templator.ai_session.errors import AiSessionNotFound
from templator.ai_session.service import AiSessionService
from templator.cache import Cache
from templator.exceptions import ValidationFailed
from templator.kit.actor import Actor
from templator.kit.ids import new_ids
from templator.kit.pagination import Page, PageParams, decode_cursor, make_page
from templator.kit.repository import JsonRow
from templator.processing_log import schemas
from templator.processing_log.errors import LogBatchTooLarge, LogLineTooLarge
from templator.processing_log.repository import EncodedLine, LogRepository

COPY_THRESHOLD = 32
"""Batches of at least this many lines go through COPY; smaller ones through one INSERT,
which needs fewer round trips under load (where the two cross: docs/benchmarks.md)."""
MAX_PRUNE_BATCH = 100_000


def _encode(lines: Sequence[schemas.LogLine]) -> list[EncodedLine]:
    """Check every limit first (so a refusal writes nothing), encoding JSON once."""
    if len(lines) > schemas.MAX_BATCH:
        raise LogBatchTooLarge(len(lines), schemas.MAX_BATCH)
    ids = new_ids(len(lines))
    encoded: list[EncodedLine] = []
    append = encoded.append
    limit = schemas.MAX_DATA_BYTES
    for i, line in enumerate(lines):
        data: str | None = None
        if line.data is not None:
            raw = orjson.dumps(line.data)
            if len(raw) > limit:
                raise LogLineTooLarge(i, len(raw), limit)
            data = raw.decode()
        append((ids[i], line.level.value, line.phase, line.message, data, line.timestamp))
    return encoded


class LogService:
    """A session's log; the caller commits."""

    def __init__(self, session: AsyncSession, cache: Cache) -> None:
        self.session = session
        self.cache = cache
        self.repository = LogRepository(session)

    async def count_of_sessions(self, session_ids: list[str]) -> int:
        """How many log lines these sessions have (what their deletion removes)."""
        return await self.repository.count_of_sessions(session_ids)

    async def export_of_sessions(self, session_ids: list[str]) -> list[JsonRow]:
        """These sessions' log lines, whole rows as JSON (a GDPR export)."""
        return await self.repository.export_of_sessions(session_ids)

    async def _check_owner(self, actor: Actor, session_id: str) -> None:
        # The session's domain answers who may use it (one primary-key read).
        await AiSessionService(self.session, self.cache).ensure_access(actor, session_id)

    async def append_many(
        self, actor: Actor | None, session_id: str, lines: Sequence[schemas.LogLine]
    ) -> int:
        """Append lines in one round trip (small) or one COPY (large); return the count.

        An unknown or foreign session, an oversize batch or an oversize line writes
        nothing. `actor=None` is for trusted internal writers (workers): no owner check,
        the foreign key still refuses an unknown session.
        """
        if not lines:
            return 0
        encoded = _encode(lines)
        if len(encoded) < COPY_THRESHOLD:
            written = await self.repository.insert_small(
                session_id,
                encoded,
                actor_id=actor.id if actor else None,
                admin=actor.works_on_any_session if actor else False,
            )
            if written != len(encoded):
                # The join to the session row matched nothing: unknown or not the actor's.
                raise AiSessionNotFound(session_id)
            return written
        if actor is not None:
            await self._check_owner(actor, session_id)
        return await self.repository.copy(session_id, encoded)

    async def query(
        self,
        actor: Actor,
        session_id: str,
        filters: schemas.LogQuery,
        params: PageParams,
    ) -> Page[schemas.ProcessingLog]:
        """Newest first, filtered by level(s) and time range, cursor over (timestamp, id)."""
        await self._check_owner(actor, session_id)
        items = await self.repository.page(
            session_id,
            levels=[level.value for level in filters.levels] if filters.levels else None,
            since=filters.since,
            until=filters.until,
            after=decode_cursor(params.cursor) if params.cursor else None,
            limit=params.limit + 1,
        )
        return make_page(items, params=params, key=lambda line: (line.timestamp, line.id))


async def count_older_than(sessionmaker: async_sessionmaker[AsyncSession], cutoff: datetime) -> int:
    """How many log lines the retention policy would delete at `cutoff`."""
    async with sessionmaker() as session:
        return await LogRepository(session).count_older_than(cutoff)


async def prune_older_than(
    sessionmaker: async_sessionmaker[AsyncSession],
    cutoff: datetime,
    *,
    batch_size: int = 10_000,
    on_batch: Callable[[int], object] | None = None,
) -> int:
    """Delete log lines older than `cutoff` in batches, each its own short transaction.

    `DELETE … WHERE id IN (SELECT id … LIMIT n)`: every batch commits on its own, so no
    lock is held for long and an interrupted prune keeps what it did. Returns the total.
    """
    if not 1 <= batch_size <= MAX_PRUNE_BATCH:
        raise ValidationFailed(
            f"batch size must be between 1 and {MAX_PRUNE_BATCH:,}, not {batch_size:,}",
            field="batch_size",
        )
    total = 0
    while True:
        async with sessionmaker() as session:
            deleted = await LogRepository(session).delete_older_batch(cutoff, batch_size)
            await session.commit()
        total += deleted
        if on_batch is not None:
            on_batch(deleted)
        if deleted < batch_size:
            return total
