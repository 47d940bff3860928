"""The scrape's Redis source reports Redis as it finds it: one connection attempt, no
retries (the app's client retries a refused connection, which let a Redis restarted
within a second hide its outage from the scrape taken during it)."""

from __future__ import annotations

import socket
import threading

import pytest

from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.monitoring.metrics import store_sources


class Refuser:
    """A TCP listener that accepts each connection and closes it at once, counting them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


async def test_the_redis_source_asks_once_and_reports_down(settings: Settings) -> None:
    refuser = Refuser()
    url = f"redis://127.0.0.1:{refuser.port}/0"
    conf = settings.model_copy(update={"redis_url": url, "redis_retries": 3})
    assert conf.database_url is not None
    conns = Connections(conf, urls=StoreUrls(conf.database_url, url, None), role=ProcessRole.TEST)
    (source,) = [s for s in store_sources(conns, role=ProcessRole.TEST) if s.name == "redis"]
    try:
        with pytest.raises(Exception):  # noqa: B017 - any failure is "down" to the collector
            await source.gather()
        assert refuser.accepted == 1
        with pytest.raises(Exception):  # noqa: B017
            await conns.redis.info()  # the app's own client does retry
        assert refuser.accepted > 2
    finally:
        await source.close()
        await conns.close()
        refuser.sock.close()
