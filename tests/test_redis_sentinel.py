"""REDIS_URL=redis+sentinel://…: a real master, replica and sentinel, and a failover."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from templator.cache import Cache
from templator.config import ProcessRole, Settings
from templator.dev.localstack.process import free_port
from templator.redis import SentinelUrl, create_client

SERVICE = "templator-master"


@dataclass
class Sentinelled:
    master: int
    replica: int
    sentinel: int

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel}/{SERVICE}/0"


def _wait(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def sentinelled() -> Iterator[Sentinelled]:
    folder = Path(tempfile.mkdtemp(prefix="templator-sentinel-"))
    ports = Sentinelled(free_port(), free_port(), free_port())
    # --dir: a replica writes the RDB of its full sync to disk (into the cwd otherwise).
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)]
    quiet: dict[str, object] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [
        subprocess.Popen(["redis-server", "--port", str(ports.master), *common], **quiet),
        subprocess.Popen(
            [
                *("redis-server", "--port", str(ports.replica), *common),
                *("--replicaof", "127.0.0.1", str(ports.master)),
            ],
            **quiet,
        ),
    ]
    conf = folder / "sentinel.conf"
    conf.write_text(
        f"port {ports.sentinel}\nbind 127.0.0.1\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {ports.master} 1\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 5000\n"
    )
    try:
        _wait(
            lambda: (
                redis.Redis(port=ports.replica).info("replication")["master_link_status"] == "up"
            ),
            "the replica to sync",
        )
        processes.append(subprocess.Popen(["redis-server", str(conf), "--sentinel"], **quiet))
        _wait(
            lambda: redis.Redis(port=ports.sentinel).sentinel_slaves(SERVICE),
            "the sentinel to find the replica",
        )
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def test_sentinel_urls_parse() -> None:
    url = SentinelUrl.parse(
        "rediss+sentinel://:p%40ss%2Fw@10.0.0.1:26379,10.0.0.2/mymaster/3?sentinel_password=s"
    )
    assert url.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26379)]
    assert (url.service, url.db, url.password, url.sentinel_password, url.tls) == (
        "mymaster",
        3,
        "p@ss/w",
        "s",
        True,
    )
    with pytest.raises(ValueError, match="master's name"):
        SentinelUrl.parse("redis+sentinel://127.0.0.1:26379")


async def test_the_cache_works_through_a_sentinel_and_survives_a_failover(
    sentinelled: Sentinelled,
) -> None:
    settings = Settings(_env_file=None, redis_url=sentinelled.url)  # type: ignore[call-arg]
    client = create_client(settings, url=sentinelled.url, role=ProcessRole.TEST)
    cache = Cache(client, namespace="sentinel", default_ttl=60)
    try:
        loaded = await cache.get_or_load(
            cache.key("t", "1"), _loader("one"), encode=str, decode=str
        )
        assert loaded == "one"
        assert await client.exists(cache.key("t", "1")) == 1  # stored through the sentinel's master
        cached = await cache.get_or_load(
            cache.key("t", "1"), _loader("not from the loader"), encode=str, decode=str
        )
        assert cached == "one"
        name = await client.client_getname()
        assert name in ("templator-test", b"templator-test")

        # Promote the replica; the client finds the new master by itself.
        # The sentinel promotes only a replica it has seen in sync (NOGOODSLAVE before).
        _wait(
            lambda: _failover(sentinelled.sentinel),
            "the sentinel to accept the failover",
        )
        _wait(
            lambda: redis.Redis(port=sentinelled.replica).info("replication")["role"] == "master",
            "the failover",
        )
        # Writes the old master took in the switch-over window are lost (Redis replicates
        # asynchronously; for a cache that is a miss later). Once it is demoted, it answers
        # READONLY and the client must move to the new master by itself.
        _wait(
            lambda: redis.Redis(port=sentinelled.master).info("replication")["role"] == "slave",
            "the old master to be demoted",
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                await client.set("after-failover", "ok")
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        assert redis.Redis(port=sentinelled.replica).get("after-failover") == b"ok"
    finally:
        await client.aclose()


def _failover(sentinel_port: int) -> bool:
    try:
        redis.Redis(port=sentinel_port).sentinel_failover(SERVICE)
    except redis.ResponseError as exc:
        if "NOGOODSLAVE" in str(exc):
            return False
        raise
    return True


def _loader(value: str):  # type: ignore[no-untyped-def]
    async def load() -> str:
        return value

    return load
