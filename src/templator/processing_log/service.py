"""Append (COPY, one round trip), query and prune processing logs."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import psycopg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from templator.ai_session.errors import SessionNotFound
from templator.exceptions import PayloadTooLarge, ValidationFailed
from templator.kit.actor import Actor
from templator.kit.ids import new_ids
from templator.kit.pagination import Page, PageParams
from templator.kit.raw import driver_connection
from templator.processing_log import schemas

_COPY = "COPY processing_logs (id, session_id, level, phase, message, data, timestamp) FROM STDIN"
_OWNER = "SELECT user_id FROM ai_sessions WHERE id = %s"


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def encode_cursor(stamp: datetime, row_id: str) -> str:
    """Cursor over (timestamp, id)."""
    return base64.urlsafe_b64encode(orjson.dumps([stamp.isoformat(), row_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Parse a log cursor; a tampered one names `cursor`."""
    try:
        stamp, row_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(stamp), str(row_id)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationFailed("invalid pagination cursor", field="cursor") from None


class LogService:
    """A session's log; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _check_owner(self, actor: Actor, session_id: str) -> None:
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(_OWNER, (session_id,))
            row = await cursor.fetchone()
        if row is None or not actor.may_access(str(row[0])):
            raise SessionNotFound(session_id)

    async def append_many(
        self, actor: Actor | None, session_id: str, lines: Sequence[schemas.LogLine]
    ) -> int:
        """Append lines in one COPY; an unknown session or an oversize line writes nothing.

        `actor=None` is for trusted internal writers (workers) that skip the owner check;
        the foreign key still refuses an unknown session.
        """
        if len(lines) > schemas.MAX_BATCH:
            raise PayloadTooLarge(
                f"{len(lines):,} lines in one batch; the limit is {schemas.MAX_BATCH:,}",
                field="lines",
            )
        if actor is not None:
            await self._check_owner(actor, session_id)
        ids = new_ids(len(lines))
        buffer: list[str] = []
        for i, line in enumerate(lines):
            data = "\\N"
            if line.data is not None:
                encoded = orjson.dumps(line.data)
                if len(encoded) > schemas.MAX_DATA_BYTES:
                    raise PayloadTooLarge(
                        f"lines[{i}].data is {len(encoded):,} bytes; the limit is "
                        f"{schemas.MAX_DATA_BYTES:,}",
                        field=f"lines[{i}].data",
                    )
                data = _copy_escape(encoded.decode())
            stamp = line.timestamp.isoformat() if line.timestamp else "now"
            buffer.append(
                f"{ids[i]}\t{session_id}\t{line.level.value}\t{_copy_escape(line.phase)}\t"
                f"{_copy_escape(line.message)}\t{data}\t{stamp}\n"
            )
        raw = await driver_connection(self.session)
        try:
            # No savepoint: a failed COPY aborts the caller's transaction, which the unit of
            # work rolls back; nothing half-written survives either way.
            async with raw.cursor() as cursor, cursor.copy(_COPY) as copy:
                await copy.write("".join(buffer))
        except psycopg.errors.ForeignKeyViolation:
            raise SessionNotFound(session_id) from None
        return len(lines)

    async def query(
        self,
        actor: Actor,
        session_id: str,
        filters: schemas.LogQuery,
        params: PageParams,
    ) -> Page[schemas.ProcessingLog]:
        """Newest first, filtered by level(s) and time range (index: session_id, timestamp DESC)."""
        await self._check_owner(actor, session_id)
        clauses = ["session_id = %(session)s"]
        values: dict[str, Any] = {"session": session_id, "limit": params.limit + 1}
        if filters.levels:
            clauses.append("level = ANY(%(levels)s::log_level[])")
            values["levels"] = [level.value for level in filters.levels]
        if filters.since:
            clauses.append("timestamp >= %(since)s")
            values["since"] = filters.since
        if filters.until:
            clauses.append("timestamp < %(until)s")
            values["until"] = filters.until
        if params.cursor:
            stamp, row_id = decode_cursor(params.cursor)
            clauses.append("(timestamp, id) < (%(c_stamp)s, %(c_id)s)")
            values.update(c_stamp=stamp, c_id=row_id)
        statement = (
            "SELECT id, session_id, level, phase, message, data, timestamp FROM processing_logs "
            f"WHERE {' AND '.join(clauses)} ORDER BY timestamp DESC, id DESC LIMIT %(limit)s"
        )
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(statement, values)
            rows = await cursor.fetchall()
        items = [
            schemas.ProcessingLog(
                id=r[0],
                session_id=r[1],
                level=r[2],
                phase=r[3],
                message=r[4],
                data=r[5],
                timestamp=r[6],
            )
            for r in rows[: params.limit]
        ]
        cursor_out = (
            encode_cursor(items[-1].timestamp, items[-1].id) if len(rows) > params.limit else None
        )
        return Page(items, cursor_out)


async def prune_older_than(
    sessionmaker: async_sessionmaker[AsyncSession],
    cutoff: datetime,
    *,
    batch_size: int = 10_000,
    on_batch: Any = None,
) -> int:
    """Delete log lines older than `cutoff` in short transactions of `batch_size` rows.

    Each batch commits on its own, so no lock is held for long and an interrupted prune
    keeps what it did. Uses the BRIN index on timestamp to find candidates.
    """
    if batch_size < 1 or batch_size > 100_000:
        raise ValidationFailed("batch size must be between 1 and 100,000", field="batch_size")
    total = 0
    statement = (
        "DELETE FROM processing_logs WHERE id IN (SELECT id FROM processing_logs "
        "WHERE timestamp < %s LIMIT %s)"
    )
    while True:
        async with sessionmaker() as session:
            raw = await driver_connection(session)
            async with raw.cursor() as cursor:
                await cursor.execute(statement, (cutoff, batch_size))
                deleted = cursor.rowcount
            await session.commit()
        total += deleted
        if on_batch is not None:
            on_batch(deleted)
        if deleted < batch_size:
            return total
