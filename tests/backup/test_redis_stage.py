"""The Redis stage: batched dump, restore parsed by the server, the pipeline fallback."""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from templator.backup import redis_dump
from templator.backup.errors import BackupCorrupt
from templator.config import PROJECT_ROOT
from templator.dev.localstack.redis import LocalRedis

PATTERN = "ns:*"
BIG = b"\x00\xffbig" * (900 * 1024)  # 3.6 MB: more than one script call's worth on its own


@pytest.fixture
def server() -> Iterator[LocalRedis]:
    """A Redis of the test's own (its users and scripts are changed by the tests)."""
    folder = PROJECT_ROOT / "var" / f"test-redis-stage-{uuid.uuid4().hex[:8]}"
    redis = LocalRedis(Path(folder))
    redis.start()
    try:
        redis.wait_ready()
        yield redis
    finally:
        redis.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _fill(conn: Redis) -> None:
    with conn.pipeline(transaction=False) as pipe:
        for i in range(5_000):  # several SCAN batches and several script calls
            pipe.set(f"ns:key:{i}", f"value {i}".encode() * 20)
        pipe.execute()
    conn.set("ns:ttl", b"expires", ex=3600)
    conn.hset("ns:hash", mapping={"a": "1", "b": "2"})
    conn.set("ns:big", BIG)
    conn.set("other:untouched", b"outside the namespace")


def _snapshot(conn: Redis) -> dict[bytes, bytes]:
    return {k: conn.dump(k) for k in conn.scan_iter(match=PATTERN, count=1000)}  # type: ignore[misc]


def _round_trip(conn: Redis, *, chunk: int = 65_536) -> None:
    _fill(conn)
    before = _snapshot(conn)
    out = io.BytesIO()
    facts = redis_dump.dump(conn, out, pattern=PATTERN, advance=lambda n: None)
    assert facts["keys"] == len(before) == 5_003
    assert (facts["keys"], facts["digest"]) == redis_dump.digest_of(conn, PATTERN)

    conn.set("ns:created-after", b"must go")
    conn.delete("ns:key:7")
    conn.set("ns:key:8", b"changed")
    conn.set("other:untouched", b"changed outside the namespace")
    data = out.getvalue()
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    advanced: list[int] = []
    restored = redis_dump.restore(
        conn, iter(chunks), pattern=PATTERN, what="test", advance=advanced.append
    )

    assert restored == sum(advanced) == len(before)
    assert _snapshot(conn) == before
    assert conn.get("other:untouched") == b"changed outside the namespace"
    assert 3500 < int(conn.ttl("ns:ttl")) <= 3600  # type: ignore[arg-type]
    assert int(conn.ttl("ns:key:1")) == -1  # type: ignore[arg-type]


def test_a_restore_mirrors_the_namespace_byte_for_byte_with_ttls(server: LocalRedis) -> None:
    conn = Redis.from_url(server.url)
    try:
        _round_trip(conn)
    finally:
        conn.close()


def _evals(conn: Redis) -> int:
    return int(conn.info("commandstats").get("cmdstat_eval", {}).get("calls", 0))


def test_one_huge_chunk_is_restored_a_bounded_call_at_a_time(server: LocalRedis) -> None:
    conn = Redis.from_url(server.url)
    try:
        with conn.pipeline(transaction=False) as pipe:
            for i in range(5_000):  # incompressible: DUMP payloads keep their size
                pipe.set(f"ns:random:{i}", os.urandom(1_000))
            pipe.execute()
        before = _snapshot(conn)
        out = io.BytesIO()
        redis_dump.dump(conn, out, pattern=PATTERN, advance=lambda n: None)
        data = out.getvalue()
        calls = _evals(conn)
        redis_dump.restore(conn, iter([data]), pattern=PATTERN, what="t", advance=lambda n: None)
        calls = _evals(conn) - calls - 1  # the first asks whether scripts may run
        assert calls >= len(data) // redis_dump.RESTORE_BYTES >= 4
        assert _snapshot(conn) == before
    finally:
        conn.close()


def test_a_server_that_refuses_scripts_gets_the_same_result_through_pipelines(
    server: LocalRedis,
) -> None:
    admin = Redis.from_url(server.url)
    admin.acl_setuser(
        "noscripts", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-@scripting"]
    )
    conn = Redis(host="127.0.0.1", port=server.port, username="noscripts", password="pw")
    try:
        with pytest.raises(Exception, match=r"(?i)noperm|permission"):
            conn.eval("return 1", 0)
        _round_trip(conn)
    finally:
        conn.close()
        admin.close()


def test_a_truncated_stream_is_refused_naming_it(server: LocalRedis) -> None:
    conn = Redis.from_url(server.url)
    try:
        conn.set("ns:a", b"x" * 100)
        out = io.BytesIO()
        redis_dump.dump(conn, out, pattern=PATTERN, advance=lambda n: None)
        cut = out.getvalue()[:-10]
        with pytest.raises(BackupCorrupt, match=r"set-x: redis\.bin ends inside a record"):
            redis_dump.restore(
                conn, iter([cut]), pattern=PATTERN, what="set-x: redis.bin", advance=lambda n: None
            )
    finally:
        conn.close()
