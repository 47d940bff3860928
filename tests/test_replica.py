"""A real streaming replica (pg_basebackup -R) serving the reads that tolerate lag."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from templator.app import create_app
from templator.audit.service import CLI
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService
from templator.config import PROJECT_ROOT, ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.postgres import LocalPostgres
from templator.dev.localstack.process import free_port
from templator.kit.actor import Actor
from templator.kit.uow import unit_of_work
from templator.migrations import runner
from templator.models import UserRole
from templator.project.schemas import ProjectCreate
from templator.project.service import ProjectService
from templator.template.schemas import TemplateCreate
from templator.template.service import TemplateService
from templator.user.schemas import UserCreate
from templator.user.service import UserService
from tests.support.factories import hubspot_config


@dataclass
class Pair:
    primary: LocalPostgres
    replica: LocalPostgres

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        with psycopg.connect(_plain(self.primary.url), autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
            assert row is not None
            target = row[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(_plain(self.replica.url), autocommit=True) as conn:
            while time.monotonic() < deadline:
                done = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()
                if done and done[0]:
                    return
                time.sleep(0.05)
        raise AssertionError("the replica did not catch up")


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    root = PROJECT_ROOT / "var" / f"test-replica-{uuid.uuid4().hex[:8]}"
    primary = LocalPostgres(root / "primary", socket_dir=root / "s1")
    primary.start()
    primary.wait_ready()
    replica = LocalPostgres(root / "replica", socket_dir=root / "s2")
    try:
        replica._prepare_dirs()
        subprocess.run(
            [
                str(primary.bindir / "pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "templator"),
                *("-D", str(replica.data), "-R", "-X", "stream", "-c", "fast"),
            ],
            user=replica.run_as,
            env={**os.environ, "PGPASSWORD": primary.owner_password},
            check=True,
            capture_output=True,
        )
        replica.start()
        replica.wait_ready()
        runner.upgrade(primary.admin_url)
        yield Pair(primary, replica)
    finally:
        replica.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def replicated(pair: Pair, redis_url: str) -> AsyncIterator[Connections]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=pair.primary.url,
        database_replica_url=pair.replica.url,
        redis_url=redis_url,
        cache_namespace=f"replica-{uuid.uuid4().hex[:6]}",
    )
    urls = StoreUrls(pair.primary.url, redis_url, None, database_replica_url=pair.replica.url)
    conns = Connections(settings, urls=urls, role=ProcessRole.TEST)
    yield conns
    await conns.close()


async def _template(conns: Connections) -> tuple[str, str, str]:
    """A user with a token and one template; returns (token, template id, template name)."""
    name = f"Replica hero {uuid.uuid4().hex[:6]}"
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        user = await UserService(session, conns.cache).create(
            UserCreate(email=f"{uuid.uuid4().hex[:10]}@example.com", role=UserRole.USER),
            origin=CLI,
        )
        token = await TokenService(session, conns.cache).create(
            user.id, TokenCreate(name="t"), origin=CLI
        )
        actor = Actor(user.id, UserRole.USER)
        project = await ProjectService(session, conns.cache).create(
            actor, ProjectCreate(name="Replicated")
        )
        template = await TemplateService(session, conns.cache).create(
            actor,
            TemplateCreate(
                project_id=project.id,
                name=name,
                html_content="<div>{{ module.title }}</div>",
                hubspot_config=hubspot_config(),
            ),
        )
    return token.token, template.id, name


def _backends(url: str, application_name: str) -> int:
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    return int(row[0]) if row else 0


async def test_search_and_the_hot_read_are_served_by_the_replica(
    pair: Pair, replicated: Connections
) -> None:
    token, template_id, name = await _template(replicated)
    await asyncio.to_thread(pair.wait_caught_up)
    app = create_app(replicated.settings, connections=replicated)
    headers = {"Authorization": f"Bearer {token}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            found = await http.get("/api/v1/templates", params={"q": name}, headers=headers)
            assert found.status_code == 200, found.text
            assert [t["id"] for t in found.json()["items"]] == [template_id]
            assert _backends(pair.replica.url, "templator-test") >= 1

            assert replicated.read_pool is not None
            row = await replicated.read_pool.fetchrow("SELECT pg_is_in_recovery()")
            assert row is not None and row[0] is True


async def test_search_falls_back_to_the_primary_when_the_replica_is_down(
    pair: Pair, redis_url: str
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=pair.primary.url,
        database_replica_url=f"postgresql://templator@127.0.0.1:{free_port()}/templator",
        redis_url=redis_url,
    )
    assert settings.database_url and settings.database_replica_url
    urls = StoreUrls(
        settings.database_url, redis_url, None, database_replica_url=settings.database_replica_url
    )
    conns = Connections(settings, urls=urls, role=ProcessRole.TEST)
    try:
        token, template_id, name = await _template(conns)
        app = create_app(settings, connections=conns)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                found = await http.get(
                    "/api/v1/templates",
                    params={"q": name},
                    headers={"Authorization": f"Bearer {token}"},
                )
        assert found.status_code == 200, found.text
        assert [t["id"] for t in found.json()["items"]] == [template_id]
    finally:
        await conns.close()
