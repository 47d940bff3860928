"""The authentication epoch watch: learnt from PostgreSQL, unknown (fail closed) while its
connection is lost, known again once it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from templator.config import ProcessRole, Settings
from templator.connections import Connections
from templator.epoch import BUMP, EpochWatch
from tests.support.waiting import until


@pytest.fixture
async def watch(settings: Settings) -> AsyncIterator[EpochWatch]:
    conf = settings.model_copy(update={"auth_epoch_poll_seconds": 0.2})
    epoch = EpochWatch(conf, url=settings.database_url, role=ProcessRole.TEST)
    epoch.start()
    yield epoch
    await epoch.stop()


async def test_an_unstarted_watch_believes_no_record() -> None:
    epoch = EpochWatch()
    assert epoch.current is None
    assert not epoch.believes({"epoch": 1})
    epoch.advance(5)
    assert epoch.current is None  # an unknown epoch stays unknown


async def test_a_bump_committed_elsewhere_is_learnt_and_older_records_are_not_believed(
    watch: EpochWatch, connections: Connections
) -> None:
    await until(lambda: watch.current is not None)
    old = watch.current
    assert watch.believes({"epoch": old})
    async with connections.engine.begin() as conn:
        bumped = (await conn.execute(text(BUMP))).scalar_one()
    await until(lambda: watch.current == bumped)
    assert not watch.believes({"epoch": old})
    assert watch.believes({"epoch": bumped})


async def test_a_lost_connection_makes_the_epoch_unknown_until_it_is_read_again(
    watch: EpochWatch, connections: Connections
) -> None:
    await until(lambda: watch.current is not None)
    async with connections.engine.begin() as conn:
        killed = (
            await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'templator-test-epoch' "
                    "AND datname = current_database()"
                )
            )
        ).scalar_one()
    assert killed >= 1
    await until(lambda: watch.current is None)
    await until(lambda: watch.current is not None)
