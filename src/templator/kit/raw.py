"""The psycopg connection under an SQLAlchemy session, for hot paths.

Hot single-row statements go straight to psycopg on the session's own connection: the
same transaction, none of the per-call Core compilation and result machinery. psycopg
prepares a statement after it has run a few times on a connection, so repeated calls
also skip parsing and planning on the server.

Finding that connection costs one hop into SQLAlchemy's greenlet (`run_sync`, which
also begins the transaction); it is then remembered on the session for as long as the
transaction lasts, so the transaction's next statements cost no hop at all.
"""

from __future__ import annotations

from typing import Any, cast

import psycopg
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

_DRIVER = "templator.driver_connection"


def _begin(session: Session) -> tuple[SessionTransaction | None, Any]:
    """(the session's transaction, its psycopg connection), beginning it if needed."""
    driver = session.connection().connection.driver_connection
    return session.get_transaction(), driver


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg AsyncConnection the session is using (begun if it was not)."""
    known: tuple[SessionTransaction, Any] | None = session.info.get(_DRIVER)
    if known is not None:
        transaction, driver = known
        if transaction.is_active and session.sync_session.get_transaction() is transaction:
            return cast(psycopg.AsyncConnection[Any], driver)
    began, connection = await session.run_sync(_begin)
    if began is not None:
        session.info[_DRIVER] = (began, connection)
    return cast(psycopg.AsyncConnection[Any], connection)
