"""Small batches take the one-statement INSERT; limits; pages over equal timestamps."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session.errors import AiSessionNotFound
from templator.connections import Connections
from templator.kit.actor import Actor
from templator.kit.pagination import PageParams
from templator.models import LogLevel, ProcessingLog, UserRole
from templator.processing_log import schemas
from templator.processing_log.errors import LogBatchTooLarge
from templator.processing_log.schemas import LogLine, LogQuery
from templator.processing_log.service import COPY_THRESHOLD, LogService
from tests.support.factories import actor_of, make_session, make_user


async def _count(db_session: AsyncSession, session_id: str) -> int:
    statement = select(func.count()).where(ProcessingLog.session_id == session_id)
    return (await db_session.execute(statement)).scalar_one()


async def test_a_small_batch_is_written_whole_with_data_and_special_characters(
    db_session: AsyncSession, connections: Connections
) -> None:
    ai = await make_session(db_session)
    actor = Actor(ai.user_id, UserRole.USER)
    lines = [
        LogLine(level=LogLevel.WARN, phase="upload", message=f"tab\there {i}\\", data={"i": i})
        for i in range(COPY_THRESHOLD - 1)
    ]

    assert await LogService(db_session, connections.cache).append_many(actor, ai.id, lines) == len(
        lines
    )

    page = await LogService(db_session, connections.cache).query(
        actor, ai.id, LogQuery(), PageParams(limit=200)
    )
    assert sorted(item.data["i"] for item in page.items) == list(range(len(lines)))
    assert {item.message.split(" ")[0] for item in page.items} == {"tab\there"}
    assert {item.level for item in page.items} == {LogLevel.WARN}


async def test_a_small_batch_to_a_foreign_session_is_refused_and_writes_nothing(
    db_session: AsyncSession, connections: Connections
) -> None:
    ai = await make_session(db_session)
    stranger = actor_of(await make_user(db_session))

    with pytest.raises(AiSessionNotFound, match=ai.id):
        await LogService(db_session, connections.cache).append_many(
            stranger, ai.id, [LogLine(phase="upload", message="x")]
        )
    assert await _count(db_session, ai.id) == 0


async def test_a_small_batch_to_an_unknown_session_is_refused_for_trusted_writers_too(
    db_session: AsyncSession, connections: Connections
) -> None:
    with pytest.raises(AiSessionNotFound):
        await LogService(db_session, connections.cache).append_many(
            None, "q" * 25, [LogLine(phase="upload", message="x")]
        )


async def test_an_admin_may_append_to_any_session(
    db_session: AsyncSession, connections: Connections
) -> None:
    ai = await make_session(db_session)
    admin = actor_of(await make_user(db_session, role=UserRole.ADMIN))

    await LogService(db_session, connections.cache).append_many(
        admin, ai.id, [LogLine(phase="upload", message="x")]
    )

    assert await _count(db_session, ai.id) == 1


async def test_an_oversize_batch_is_refused_naming_the_limit_and_writes_nothing(
    db_session: AsyncSession, connections: Connections
) -> None:
    ai = await make_session(db_session)
    lines = [LogLine(phase="upload", message="x")] * (schemas.MAX_BATCH + 1)

    with pytest.raises(LogBatchTooLarge, match="10,001 lines in one batch; the limit is 10,000"):
        await LogService(db_session, connections.cache).append_many(None, ai.id, lines)
    assert await _count(db_session, ai.id) == 0


async def test_pages_over_lines_with_equal_timestamps_have_no_gaps_or_duplicates(
    db_session: AsyncSession, connections: Connections
) -> None:
    ai = await make_session(db_session)
    actor = Actor(ai.user_id, UserRole.USER)
    # One transaction: every line gets the same now(); only the id breaks the tie.
    await LogService(db_session, connections.cache).append_many(
        actor, ai.id, [LogLine(phase="upload", message=f"m{i}") for i in range(300)]
    )

    seen: list[str] = []
    params = PageParams(limit=7)
    while True:
        page = await LogService(db_session, connections.cache).query(
            actor, ai.id, LogQuery(), params
        )
        seen += [item.id for item in page.items]
        if page.next_cursor is None:
            break
        params = PageParams(limit=7, cursor=page.next_cursor)

    assert len(seen) == len(set(seen)) == 300
    assert seen == sorted(seen, reverse=True)


async def test_an_empty_batch_writes_nothing(
    db_session: AsyncSession, connections: Connections
) -> None:
    ai = await make_session(db_session)

    assert await LogService(db_session, connections.cache).append_many(None, ai.id, []) == 0
