"""Units of work: the edge (a request, a CLI command) commits; post-commit effects run after.

Services only flush. What must happen once the data is durable — cache invalidation,
pub/sub notifications, deleting stored objects — they record on the session with
`after_commit_invalidate`, `after_commit_publish` and `after_commit_delete_objects`;
`unit_of_work` commits and then runs them, so a listener never hears of a change it
cannot yet read, a reader never re-caches pre-commit data, and no object goes before the
row that names it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from templator.cache import Cache
from templator.kit.raw import (
    ConnectionSource,
    DriverUnit,
    StatementSource,
    bind_driver_unit,
    refuse_mixed_use,
)

log = logging.getLogger("templator.uow")

_INVALIDATE = "templator.invalidate"
_PUBLISH = "templator.publish"
_TASKS = "templator.tasks"

PostCommitTask = Callable[[], Awaitable[object]]


def after_commit_invalidate(session: AsyncSession, *keys: str) -> None:
    """Drop these cache keys once the session's transaction ends (commit or rollback).

    After a rollback too: a read inside the failed transaction may have cached data
    that never became durable.
    """
    session.info.setdefault(_INVALIDATE, set()).update(keys)


async def invalidate_now(session: AsyncSession, cache: Cache, *keys: str) -> None:
    """Drop keys at once (reads later in this transaction see the change) and again at the end."""
    await cache.invalidate(*keys)
    after_commit_invalidate(session, *keys)


def after_commit_publish(session: AsyncSession, channel: str, message: dict[str, Any]) -> None:
    """Publish `message` on `channel` once the session's transaction commits."""
    session.info.setdefault(_PUBLISH, []).append((channel, message))


def after_commit_call(session: AsyncSession, task: PostCommitTask) -> None:
    """Run `task()` once the session's transaction commits (e.g. delete stored objects)."""
    session.info.setdefault(_TASKS, []).append(task)


DELETE_BATCH = 1000
"""Objects per S3 DeleteObjects request, so a failure part-way leaves an exact count."""


class ObjectDeleter(Protocol):
    """What deleting objects after a commit needs of the object store (`ObjectStore`)."""

    def delete_many(self, keys: list[str]) -> int: ...

    def delete_prefix(self, prefix: str) -> int: ...


@dataclass
class ObjectDeletion:
    """Objects to delete after the commit, and how many the store has deleted so far."""

    requested: int
    deleted: int = 0


def after_commit_delete_objects(
    session: AsyncSession,
    store: ObjectDeleter,
    keys: Sequence[str] = (),
    *,
    prefixes: Sequence[str] = (),
) -> ObjectDeletion:
    """Delete `keys` (in batches) and everything under `prefixes` once the transaction commits.

    A store is required: a caller that may have none asks `storage.errors.require_store`
    before the rows go, so a missing store fails the transaction instead of orphaning
    the objects silently.
    """
    deletion = ObjectDeletion(len(keys))
    if not (keys or prefixes):
        return deletion
    objects, batches = store, list(keys)

    async def remove() -> None:
        for start in range(0, len(batches), DELETE_BATCH):
            batch = batches[start : start + DELETE_BATCH]
            deletion.deleted += await asyncio.to_thread(objects.delete_many, batch)
        for prefix in prefixes:
            await asyncio.to_thread(objects.delete_prefix, prefix)

    after_commit_call(session, remove)
    return deletion


def discard_pending(session: AsyncSession) -> None:
    """Forget recorded effects (after a rollback)."""
    session.info.pop(_INVALIDATE, None)
    session.info.pop(_PUBLISH, None)
    session.info.pop(_TASKS, None)


async def run_post_commit(session: AsyncSession, cache: Cache) -> None:
    """Run the effects recorded on `session`; call right after a successful commit."""
    keys: set[str] = session.info.pop(_INVALIDATE, set())
    messages: list[tuple[str, dict[str, Any]]] = session.info.pop(_PUBLISH, [])
    tasks: list[PostCommitTask] = session.info.pop(_TASKS, [])
    await cache.invalidate_and_publish(sorted(keys), messages)
    for task in tasks:
        try:
            await task()
        except Exception:  # the commit stands; what a task leaves behind, gc collects
            log.exception("post-commit task failed")


# Every session: SQLAlchemy may not begin beside a driver unit's own transaction.
event.listen(Session, "after_begin", refuse_mixed_use)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
    cache: Cache,
    *,
    driver: ConnectionSource | None = None,
    autocommit: bool = False,
    statements: StatementSource | None = None,
) -> AsyncIterator[AsyncSession]:
    """A session committed on success and rolled back on error, with post-commit effects.

    With `driver` (a `driver_pool.DriverPool`), the unit's raw statements run on a
    connection of that pool, committed here without SQLAlchemy (`kit/raw.py` says when
    SQLAlchemy runs instead); the session still carries the post-commit effects. With
    `autocommit` too, each raw statement commits by itself (no BEGIN and COMMIT round
    trips): only for units whose write is one statement (a heartbeat, a phase, a
    completion — each one conditional UPDATE), where a transaction adds nothing. With
    `statements` too (`driver_pool.StatementPool`), those statements run on its asyncpg
    connections, each taken for one statement (`kit/raw.statement_source`).
    """
    session = sessionmaker()
    unit = (
        bind_driver_unit(session, driver, autocommit=autocommit, statements=statements)
        if driver is not None
        else None
    )
    try:
        yield session
        if unit is None or _has_work(session):
            await session.commit()  # a driver unit's too, once SQLAlchemy joined it
        if unit is not None and unit.conn is not None and not unit.autocommit:
            await unit.conn.commit()  # nothing left to commit if SQLAlchemy did
    except BaseException:
        try:
            if unit is None or session.in_transaction():
                await session.rollback()
            if unit is not None and unit.conn is not None:
                await _end_driver_unit(unit, failed=True)
        finally:
            if not close_idle(session):  # shielded, as AsyncSession's own __aexit__ is
                await asyncio.shield(session.close())
        keys: set[str] = session.info.get(_INVALIDATE, set())
        discard_pending(session)
        if keys:
            await cache.invalidate(*sorted(keys))
        raise
    if unit is not None and unit.conn is not None:
        await _end_driver_unit(unit, failed=False)
    if not close_idle(session):  # the commit gave the connection back: no I/O left
        await session.close()
    await run_post_commit(session, cache)


def _has_work(session: AsyncSession) -> bool:
    """Whether a session has anything to commit: a transaction, or ORM changes."""
    sync = session.sync_session
    # Dirty and deleted objects are in the identity map; new ones are not yet.
    return sync.in_transaction() or bool(sync.identity_map) or bool(sync.new)


async def _end_driver_unit(unit: DriverUnit, *, failed: bool) -> None:
    """Give the unit's connection back (the pool rolls back what is left open); after a
    lost connection or an interrupted wait its state is in doubt, and it is closed."""
    conn, unit.conn = unit.conn, None
    assert conn is not None
    if failed and (conn.closed or conn.broken):
        await unit.source.discard(conn)
        return
    await unit.source.give_back(conn)  # a rollback that fails there drops the connection


def close_idle(session: AsyncSession) -> bool:
    """Close `session` at once if it holds no connection (nothing began, or a commit
    released it): that close does no I/O, so it needs no hop into SQLAlchemy's greenlet
    (`AsyncSession.close()` is one, and as a context manager a task of its own too).
    False when a transaction is open and the caller must `await session.close()`."""
    sync = session.sync_session
    if sync.in_transaction():
        return False
    if sync.identity_map or sync.new or sync.deleted:  # ORM objects to let go of
        sync.close()
    return True  # never began and holds nothing (a driver unit's session): nothing to close


@asynccontextmanager
async def read_session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session for reads that the cache usually answers.

    A session connects only when a statement runs, so a cache hit costs the session
    object (a few µs) and a close without I/O; a miss gets a connection from
    `sessionmaker` (pass `Connections.read_sessionmaker`, autocommit, for
    single-statement reads), closed on exit, never committed.
    """
    session = sessionmaker()
    try:
        yield session
    finally:
        if not close_idle(session):
            await session.close()
