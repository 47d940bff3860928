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
from typing import Any, Protocol, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from templator.cache import Cache

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


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], cache: Cache
) -> AsyncIterator[AsyncSession]:
    """A session committed on success and rolled back on error, with post-commit effects."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            keys: set[str] = session.info.get(_INVALIDATE, set())
            discard_pending(session)
            if keys:
                await cache.invalidate(*sorted(keys))
            raise
        await run_post_commit(session, cache)


class _LazySession:
    """Stands in for an AsyncSession and makes the real one on first use."""

    __slots__ = ("_maker", "real")

    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self._maker = maker
        self.real: AsyncSession | None = None

    def __getattr__(self, name: str) -> Any:
        if self.real is None:
            self.real = self._maker()
        return getattr(self.real, name)


@asynccontextmanager
async def read_session(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session for reads that the cache usually answers: made only if something uses it.

    A cache hit then costs no session object, no greenlet hop and no close; a miss gets
    a session from `sessionmaker` (pass `Connections.read_sessionmaker`, autocommit, for
    single-statement reads), closed on exit, never committed.
    """
    lazy = _LazySession(sessionmaker)
    try:
        yield cast(AsyncSession, lazy)
    finally:
        if lazy.real is not None:
            await lazy.real.close()
