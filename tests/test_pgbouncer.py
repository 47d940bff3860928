"""The platform through a real PgBouncer in transaction mode (DB_PGBOUNCER=true).

Transaction pooling hands each transaction whatever server connection is free: session
state (startup parameters, SET) and named prepared statements do not follow a client.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from templator.config import PROJECT_ROOT, ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.demo.flow import run_story
from templator.dev.localstack.process import free_port
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.postgres import ReadUnavailable
from tests.plugins.s3 import ACCESS_KEY, SECRET_KEY
from tests.support.pgbouncer import Bouncer, pgbouncer

pytestmark = pytest.mark.skipif(
    not Path("/usr/sbin/pgbouncer").exists() and not os.environ.get("CI"),
    reason="pgbouncer is installed by scripts/install-system-deps.sh",
)

TIMEOUT_MS = 4321


@pytest.fixture(scope="module")
def bouncer(settings: Settings) -> Iterator[Bouncer]:
    assert settings.database_url is not None
    with pgbouncer(settings.database_url, pool_size=2) as running:
        yield running


@pytest.fixture
async def bounced(settings: Settings, bouncer: Bouncer) -> AsyncIterator[Connections]:
    """The connection layer on the bouncer, in PgBouncer mode."""
    assert settings.database_url is not None and settings.redis_url is not None
    conf = settings.model_copy(
        update={"db_pgbouncer": True, "db_statement_timeout_ms": TIMEOUT_MS, "db_pool_size": 6}
    )
    urls = StoreUrls(bouncer.url_for(settings.database_url), settings.redis_url, None)
    conns = Connections(conf, urls=urls, role=ProcessRole.TEST)
    await conns.open_read_pool()
    yield conns
    await conns.close()


async def test_statement_timeout_holds_in_every_transaction(bounced: Connections) -> None:
    async def timeout_seen() -> str:
        async with bounced.sessionmaker() as session:
            value = (await session.execute(text("SHOW statement_timeout"))).scalar_one()
            await session.commit()
            return str(value)

    seen = await asyncio.gather(*(timeout_seen() for _ in range(12)))
    assert set(seen) == {f"{TIMEOUT_MS}ms"}


async def test_autocommit_reads_keep_the_statement_timeout(bounced: Connections) -> None:
    async with bounced.read_sessionmaker() as session:
        value = (await session.execute(text("SHOW statement_timeout"))).scalar_one()
    assert value == f"{TIMEOUT_MS}ms"


async def test_repeated_statements_on_shared_server_connections(bounced: Connections) -> None:
    """psycopg prepares a statement after its 5th run on a connection; through transaction
    pooling the next run lands on a server connection that never saw it."""

    async def worker(n: int) -> int:
        total = 0
        for _ in range(15):
            async with bounced.sessionmaker() as session:
                conn = await session.connection()
                raw = (await conn.get_raw_connection()).driver_connection
                async with raw.cursor() as cursor:
                    await cursor.execute("SELECT %s::int + 1", (n,))
                    row = await cursor.fetchone()
                    assert row is not None
                    total += row[0]
                await session.commit()
        return total

    results = await asyncio.gather(*(worker(n) for n in range(6)))
    assert results == [15 * (n + 1) for n in range(6)]


async def test_read_pool_works_and_keeps_its_timeout(bounced: Connections) -> None:
    pool = bounced.read_pool
    assert pool is not None

    async def read(n: int) -> int:
        total = 0
        for _ in range(15):
            row = await pool.fetchrow("SELECT $1::int * 2", n)
            assert row is not None
            total += row[0]
        return total

    assert await asyncio.gather(*(read(n) for n in range(6))) == [30 * n for n in range(6)]
    with pytest.raises(ReadUnavailable):
        await pool.fetchrow("SELECT pg_sleep($1)", (TIMEOUT_MS + 1500) / 1000)


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    templator = str(Path(sys.executable).parent / "templator")
    with log.open("wb") as out:
        server = subprocess.Popen(
            [templator, "serve", "--port", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise AssertionError(f"the API did not start: {log.read_text(errors='replace')[-2000:]}")


@pytest.mark.slow
def test_api_flows_through_pgbouncer_with_zero_errors(
    settings: Settings, bouncer: Bouncer, s3_server: SeaweedFS, tmp_path: Path
) -> None:
    assert settings.database_url is not None and settings.redis_url is not None
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": bouncer.url_for(settings.database_url),
        "DB_PGBOUNCER": "true",
        "REDIS_URL": settings.redis_url,
        "S3_ENDPOINT_URL": s3_server.endpoint_url,
        "S3_ACCESS_KEY": ACCESS_KEY,
        "S3_SECRET_KEY": SECRET_KEY,
        "S3_BUCKET": f"bouncer-{port}",
        "CACHE_NAMESPACE": f"bouncer-{port}",
    }
    templator = str(Path(sys.executable).parent / "templator")
    email = f"bouncer-{port}@example.com"
    subprocess.run([templator, "user", "create", "--email", email], env=env, check=True)
    token = json.loads(
        subprocess.run(
            [templator, "token", "create", "--user", email, "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["token"]

    admin = f"bouncer-worker-{port}@example.com"
    subprocess.run(
        [templator, "user", "create", "--email", admin, "--role", "ADMIN"], env=env, check=True
    )
    worker = json.loads(
        subprocess.run(
            [templator, "token", "create", "--user", admin, "--scope", "worker", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["token"]

    log = tmp_path / "api.log"
    server = _serve(env, port, log)
    try:
        url = f"http://127.0.0.1:{port}"
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(
                    lambda _: run_story(
                        url, token, worker_token=worker, sessions=2, workers=1, env=env
                    ),
                    range(4),
                )
            )
        for result in results:
            assert [r.status for r in result.sessions] == ["COMPLETED"] * 2, result.sessions
            assert result.download_url is not None
    finally:
        server.terminate()
        server.wait(15)

    # The same reads with Redis gone: the hot read's asyncpg pool goes through the bouncer.
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    server = _serve(env, port, tmp_path / "api-no-redis.log")
    try:
        headers = {"Authorization": f"Bearer {token}"}
        template_ids = [s.template_id for r in results for s in r.sessions if s.template_id]
        assert template_ids
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            for _ in range(10):
                for template_id in template_ids:
                    answer = http.get(f"/api/v1/templates/{template_id}")
                    assert answer.status_code == 200, answer.text
    finally:
        server.terminate()
        server.wait(15)
    logged = log.read_text(errors="replace") + bouncer.log.read_text(errors="replace")
    assert "prepared statement" not in logged
    assert "unsupported startup parameter" not in logged
