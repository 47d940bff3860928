"""All SQL about processing logs: text SQL on the session's own psycopg connection
(kit/repository.py; COPY straight on that connection, which the base has no helper for).

Two ways in, chosen by batch size (measured, see benchmarks/bench_log_ingestion.py):
* small batches: ONE `INSERT … SELECT … FROM unnest(arrays)` joined to the session row,
  so the ownership check, the foreign key and the insert cost a single round trip;
* large batches: `COPY … FROM STDIN` of pre-encoded text (COPY needs a second exchange
  for its protocol handshake, but streams rows far faster than any INSERT).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import psycopg

from templator.ai_session.errors import AiSessionNotFound
from templator.kit.raw import driver_connection
from templator.kit.repository import JsonRow, Repository, RowModel
from templator.processing_log import schemas

_NULL = "\\N"  # COPY text format's NULL
_COPY_COLUMNS = "id, session_id, level, phase, message, data"
_INSERT_UNNEST = (
    "INSERT INTO processing_logs (id, session_id, level, phase, message, data, timestamp) "
    "SELECT u.id, s.id, u.level::log_level, u.phase, u.message, u.data::jsonb, "
    "COALESCE(u.ts, now()) "
    "FROM ai_sessions s, unnest(%(ids)s::text[], %(levels)s::text[], %(phases)s::text[], "
    "%(messages)s::text[], %(data)s::text[], %(stamps)s::timestamptz[]) "
    "AS u(id, level, phase, message, data, ts) "
    "WHERE s.id = %(session)s AND (%(trusted)s OR s.user_id = %(actor)s OR %(admin)s)"
)
LINE = RowModel(schemas.ProcessingLog)
_SELECT = f"SELECT {LINE.columns} FROM processing_logs"
_COUNT_OLDER = "SELECT count(*) FROM processing_logs WHERE timestamp < %s"
_PRUNE_BATCH = (
    "DELETE FROM processing_logs WHERE id IN (SELECT id FROM processing_logs "
    "WHERE timestamp < %s LIMIT %s)"
)


EncodedLine = tuple[str, str, str, str, str | None, datetime | None]
"""(id, level, phase, message, data as encoded JSON or None, timestamp or None).

Plain tuples: 10,000 of them are built per large batch, and a tuple costs a fraction of
any class instance."""

_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _identity(text: str) -> str:
    return text


def copy_text(session_id: str, lines: Sequence[EncodedLine], *, stamped: bool) -> str:
    """The COPY text-format block for `lines`.

    Escaping is skipped when no free-text field of the batch holds a backslash, tab or
    newline (one regex pass over the whole batch, in C): the usual case for log lines.
    """
    content = "".join(f"{line[2]}{line[3]}{line[4] or ''}" for line in lines)
    esc = _copy_escape if _NEEDS_ESCAPE.search(content) else _identity
    sid = _copy_escape(session_id)
    if stamped:
        return "".join(
            f"{line[0]}\t{sid}\t{line[1]}\t{esc(line[2])}\t{esc(line[3])}\t"
            f"{_NULL if line[4] is None else esc(line[4])}\t"
            f"{line[5].isoformat() if line[5] else 'now'}\n"
            for line in lines
        )
    return "".join(
        f"{line[0]}\t{sid}\t{line[1]}\t{esc(line[2])}\t{esc(line[3])}\t"
        f"{_NULL if line[4] is None else esc(line[4])}\n"
        for line in lines
    )


class LogRepository(Repository):
    """Reads and writes of processing_logs, on the caller's session."""

    __slots__ = ()

    async def count_of_sessions(self, session_ids: list[str]) -> int:
        """How many log lines these sessions have."""
        row = await self.fetch_one(
            "SELECT count(*) FROM processing_logs WHERE session_id = ANY(%s)", (session_ids,)
        )
        return int(row[0]) if row else 0

    async def export_of_sessions(self, session_ids: list[str]) -> list[JsonRow]:
        """These sessions' log lines, whole rows in their JSON form."""
        return await self.fetch_json_rows(
            "SELECT * FROM processing_logs WHERE session_id = ANY(%s)", (session_ids,)
        )

    async def insert_small(
        self,
        session_id: str,
        lines: Sequence[EncodedLine],
        *,
        actor_id: str | None,
        admin: bool,
    ) -> int:
        """One statement; 0 rows when the session is unknown or not the actor's."""
        return await self.run(
            _INSERT_UNNEST,
            {
                "ids": [line[0] for line in lines],
                "levels": [line[1] for line in lines],
                "phases": [line[2] for line in lines],
                "messages": [line[3] for line in lines],
                "data": [line[4] for line in lines],
                "stamps": [line[5] for line in lines],
                "session": session_id,
                "trusted": actor_id is None,
                "actor": actor_id or "",
                "admin": admin,
            },
        )

    async def copy(self, session_id: str, lines: Sequence[EncodedLine]) -> int:
        """COPY the lines as one text block; an unknown session raises AiSessionNotFound.

        No savepoint: a failed COPY aborts the caller's transaction, which the unit of
        work rolls back, so nothing half-written survives either way. The timestamp
        column is sent only when some line carries one (else the column default, now()).
        """
        stamped = any(line[5] is not None for line in lines)
        text = copy_text(session_id, lines, stamped=stamped)
        columns = f"{_COPY_COLUMNS}, timestamp" if stamped else _COPY_COLUMNS
        statement = f"COPY processing_logs ({columns}) FROM STDIN"
        raw = await driver_connection(self.session)
        try:
            async with raw.cursor() as cursor, cursor.copy(statement) as copy:
                await copy.write(text)
        except psycopg.errors.ForeignKeyViolation:
            raise AiSessionNotFound(session_id) from None
        return len(lines)

    async def page(
        self,
        session_id: str,
        *,
        levels: Sequence[str] | None,
        since: datetime | None,
        until: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[schemas.ProcessingLog]:
        """Up to `limit` rows newest first by (timestamp, id), after the cursor position.

        Served by idx_processing_logs_session_timestamp (session_id, timestamp DESC).
        """
        clauses = ["session_id = %(session)s"]
        values: dict[str, object] = {"session": session_id, "limit": limit}
        if levels:
            clauses.append("level = ANY(%(levels)s::log_level[])")
            values["levels"] = list(levels)
        if since is not None:
            clauses.append("timestamp >= %(since)s")
            values["since"] = since
        if until is not None:
            clauses.append("timestamp < %(until)s")
            values["until"] = until
        if after is not None:
            clauses.append("(timestamp, id) < (%(c_stamp)s, %(c_id)s)")
            values.update(c_stamp=after[0], c_id=after[1])
        statement = (
            f"{_SELECT} WHERE {' AND '.join(clauses)} "
            "ORDER BY timestamp DESC, id DESC LIMIT %(limit)s"
        )
        return [LINE(row) for row in await self.fetch_all(statement, values)]

    async def count_older_than(self, cutoff: datetime) -> int:
        """How many lines are older than `cutoff`."""
        row = await self.fetch_one(_COUNT_OLDER, (cutoff,))
        return int(row[0]) if row else 0

    async def delete_older_batch(self, cutoff: datetime, limit: int) -> int:
        """Delete at most `limit` lines older than `cutoff`; return how many went."""
        return await self.run(_PRUNE_BATCH, (cutoff, limit))
