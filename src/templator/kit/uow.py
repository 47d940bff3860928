"""Units of work: the edge (a request, a CLI command) commits; post-commit effects run after.

Services only flush. What must happen once the data is durable — cache invalidation,
pub/sub notifications — they record on the session with `after_commit_invalidate` and
`after_commit_publish`; `unit_of_work` commits and then runs them, so a listener never
hears of a change it cannot yet read, and a reader never re-caches pre-commit data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from templator.cache import Cache

_INVALIDATE = "templator.invalidate"
_PUBLISH = "templator.publish"


def after_commit_invalidate(session: AsyncSession, *keys: str) -> None:
    """Drop these cache keys once the session's transaction commits."""
    session.info.setdefault(_INVALIDATE, set()).update(keys)


def after_commit_publish(session: AsyncSession, channel: str, message: dict[str, Any]) -> None:
    """Publish `message` on `channel` once the session's transaction commits."""
    session.info.setdefault(_PUBLISH, []).append((channel, message))


def discard_pending(session: AsyncSession) -> None:
    """Forget recorded effects (after a rollback)."""
    session.info.pop(_INVALIDATE, None)
    session.info.pop(_PUBLISH, None)


async def run_post_commit(session: AsyncSession, cache: Cache) -> None:
    """Run the effects recorded on `session`; call right after a successful commit."""
    keys: set[str] = session.info.pop(_INVALIDATE, set())
    messages: list[tuple[str, dict[str, Any]]] = session.info.pop(_PUBLISH, [])
    if keys:
        await cache.invalidate(*sorted(keys))
    for channel, message in messages:
        await cache.publish(channel, message)


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
            discard_pending(session)
            raise
        await run_post_commit(session, cache)
