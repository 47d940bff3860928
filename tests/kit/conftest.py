"""Fixtures of the unit-of-work tests: a connection layer of the test's own, with small
driver and statement pools (two connections each) and a short pool timeout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls


@pytest.fixture
async def conns(settings: Settings) -> AsyncIterator[Connections]:
    conf = settings.model_copy(
        update={"db_driver_pool_size": 2, "db_statement_pool_size": 2, "db_pool_timeout": 0.5}
    )
    assert conf.database_url is not None and conf.redis_url is not None
    layer = Connections(
        conf, urls=StoreUrls(conf.database_url, conf.redis_url, None), role=ProcessRole.TEST
    )
    try:
        yield layer
    finally:
        await layer.close()
