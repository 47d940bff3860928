"""The psycopg connection under an SQLAlchemy session, for hot paths.

Hot single-row statements go straight to psycopg on the session's own connection: the
same transaction, none of the per-call Core compilation and result machinery. psycopg
prepares a statement after it has run a few times on a connection, so repeated calls
also skip parsing and planning on the server.
"""

from __future__ import annotations

from typing import Any, cast

import psycopg
from sqlalchemy.ext.asyncio import AsyncSession


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg AsyncConnection the session is using (begun if it was not)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return cast(psycopg.AsyncConnection[Any], raw.driver_connection)
