"""Processing logs: batched appends, filtered newest-first reads, batched retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session.errors import AiSessionNotFound
from templator.connections import Connections
from templator.exceptions import PayloadTooLarge
from templator.kit.actor import Actor
from templator.kit.pagination import PageParams
from templator.kit.uow import unit_of_work
from templator.models import LogLevel, ProcessingLog, UserRole
from templator.processing_log.schemas import LogLine, LogQuery
from templator.processing_log.service import LogService, prune_older_than
from tests.support.factories import Committed, actor_of, make_session, make_user


async def _count(db_session: AsyncSession, session_id: str) -> int:
    return (
        await db_session.execute(select(func.count()).where(ProcessingLog.session_id == session_id))
    ).scalar_one()


async def test_append_many_writes_every_line_in_one_copy(
    db_session: AsyncSession, connections: Connections
) -> None:
    ai = await make_session(db_session)
    actor = Actor(ai.user_id, UserRole.USER)
    lines = [
        LogLine(
            level=LogLevel.INFO, phase="upload", message=f"tab\there\nline {i}\\", data={"i": i}
        )
        for i in range(500)
    ]
    assert await LogService(db_session, connections.cache).append_many(actor, ai.id, lines) == 500
    assert await _count(db_session, ai.id) == 500
    page = await LogService(db_session, connections.cache).query(
        actor, ai.id, LogQuery(), PageParams(limit=1)
    )
    assert page.items[0].message.startswith("tab\there\nline") and page.items[0].message.endswith(
        "\\"
    )


async def test_unknown_session_fails_the_whole_unit_of_work(
    connections: Connections, committed: Committed
) -> None:
    from templator.ai_session.schemas import AiSessionCreate
    from templator.ai_session.service import AiSessionService

    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        ai = await AiSessionService(session, connections.cache).create(
            committed.actor, AiSessionCreate(project_id=committed.project_id)
        )
    with pytest.raises(AiSessionNotFound):
        async with unit_of_work(connections.sessionmaker, connections.cache) as session:
            await LogService(session, connections.cache).append_many(
                None, ai.id, [LogLine(phase="upload", message="first batch")]
            )
            await LogService(session, connections.cache).append_many(
                None, "q" * 25, [LogLine(phase="upload", message="x")]
            )
    async with connections.sessionmaker() as session:
        assert await _count(session, ai.id) == 0


async def test_oversize_data_is_refused_naming_the_line_and_nothing_is_written(
    db_session: AsyncSession, connections: Connections
) -> None:
    ai = await make_session(db_session)
    lines = [
        LogLine(phase="upload", message="ok"),
        LogLine(phase="upload", message="big", data={"x": "y" * 70_000}),
    ]
    with pytest.raises(PayloadTooLarge, match=r"lines\[1\]\.data"):
        await LogService(db_session, connections.cache).append_many(None, ai.id, lines)
    assert await _count(db_session, ai.id) == 0


async def test_query_filters_by_level_and_time_newest_first_with_pages(
    db_session: AsyncSession, connections: Connections
) -> None:
    ai = await make_session(db_session)
    actor = Actor(ai.user_id, UserRole.USER)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    levels = [LogLevel.DEBUG, LogLevel.INFO, LogLevel.WARN, LogLevel.ERROR]
    lines = [
        LogLine(
            level=levels[i % 4],
            phase="ai_analysis",
            message=f"m{i}",
            timestamp=base + timedelta(minutes=i),
        )
        for i in range(40)
    ]
    await LogService(db_session, connections.cache).append_many(actor, ai.id, lines)
    query = LogQuery(
        levels=[LogLevel.WARN, LogLevel.ERROR],
        since=base + timedelta(minutes=10),
        until=base + timedelta(minutes=30),
    )
    seen: list[str] = []
    params = PageParams(limit=3)
    while True:
        page = await LogService(db_session, connections.cache).query(actor, ai.id, query, params)
        seen += [item.message for item in page.items]
        if page.next_cursor is None:
            break
        params = PageParams(limit=3, cursor=page.next_cursor)
    expected = [
        f"m{i}" for i in range(29, 9, -1) if levels[i % 4] in (LogLevel.WARN, LogLevel.ERROR)
    ]
    assert seen == expected


async def test_another_users_session_log_is_not_found(
    db_session: AsyncSession, connections: Connections
) -> None:
    ai = await make_session(db_session)
    stranger = actor_of(await make_user(db_session))
    with pytest.raises(AiSessionNotFound):
        await LogService(db_session, connections.cache).query(
            stranger, ai.id, LogQuery(), PageParams()
        )
    with pytest.raises(AiSessionNotFound):
        await LogService(db_session, connections.cache).append_many(
            stranger, ai.id, [LogLine(phase="upload", message="x")]
        )


async def test_prune_deletes_only_old_lines_in_batches(
    connections: Connections, committed: Committed
) -> None:
    from templator.ai_session.schemas import AiSessionCreate
    from templator.ai_session.service import AiSessionService

    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        ai = await AiSessionService(session, connections.cache).create(
            committed.actor, AiSessionCreate(project_id=committed.project_id)
        )
        now = datetime.now(UTC)
        old = [
            LogLine(phase="upload", message=f"old {i}", timestamp=now - timedelta(days=40))
            for i in range(250)
        ]
        new = [LogLine(phase="upload", message=f"new {i}", timestamp=now) for i in range(20)]
        await LogService(session, connections.cache).append_many(committed.actor, ai.id, old + new)
    batches: list[int] = []
    cutoff = datetime.now(UTC) - timedelta(days=30)
    # Other tests' rows may be old too: count only this session's survivors.
    await prune_older_than(
        connections.sessionmaker, cutoff, batch_size=100, on_batch=batches.append
    )
    assert batches[:2] == [100, 100] and all(b <= 100 for b in batches)
    async with connections.sessionmaker() as session:
        page = await LogService(session, connections.cache).query(
            committed.actor, ai.id, LogQuery(), PageParams(limit=200)
        )
    assert sorted(item.message for item in page.items) == sorted(f"new {i}" for i in range(20))
