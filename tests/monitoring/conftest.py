"""The real app on the test stores, with the store collector's cache off, and its scrape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete

from templator.app import create_app
from templator.audit.service import CLI
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.kit.ids import new_id
from templator.kit.uow import unit_of_work
from templator.models import User, UserRole
from templator.user.schemas import UserCreate
from templator.user.service import UserService
from tests.api.conftest import Caller
from tests.plugins.s3 import s3_settings


@dataclass
class Scrape:
    """One scrape of /metrics, parsed: sample values by name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    text: str

    def value(self, name: str, **labels: str) -> float:
        """The one sample `name` with exactly these labels."""
        return self.samples[(name, frozenset(labels.items()))]

    def all(self, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return {
            found: value
            for (sample, found), value in self.samples.items()
            if sample == name and wanted <= found
        }

    def total(self, name: str, **labels: str) -> float:
        """The sum of every sample `name` whose labels include `labels`."""
        return sum(self.all(name, **labels).values())


def parse(text: str) -> Scrape:
    """Parse a text exposition."""
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return Scrape(samples, text)


ScrapeFn = Callable[[], Coroutine[Any, Any, Scrape]]


def monitored_settings(settings: Settings, s3_server: SeaweedFS, **overrides: Any) -> Settings:
    """The test stores, every scrape asking the stores afresh."""
    values: dict[str, Any] = {
        "database_url": settings.database_url,
        "redis_url": settings.redis_url,
        "cache_namespace": settings.cache_namespace,
        "var_dir": settings.var_dir,
        "backup_dir": settings.var_dir / "backups",
        "metrics_cache_seconds": 0,
        "metrics_object_store_seconds": 0,
        **overrides,
    }
    return s3_settings(s3_server, **values)


@pytest.fixture
async def monitored(settings: Settings, s3_server: SeaweedFS) -> AsyncIterator[Connections]:
    """The connection layer on PostgreSQL, Redis and a fresh bucket, no metrics cache."""
    conf = monitored_settings(settings, s3_server)
    assert conf.database_url and conf.redis_url
    conns = Connections(
        conf,
        urls=StoreUrls(conf.database_url, conf.redis_url, s3_server.endpoint_url),
        role=ProcessRole.TEST,
    )
    store = conns.require_store()
    store.ensure_bucket()
    yield conns
    store.delete_many([o["key"] for o in store.iter_objects()])
    store.client.delete_bucket(Bucket=store.bucket)
    await conns.close()


@pytest.fixture
async def api(monitored: Connections) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, whose lifespan has run."""
    app = create_app(monitored.settings, connections=monitored)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
def scrape(api: httpx.AsyncClient) -> ScrapeFn:
    """GET /metrics and parse it."""

    async def get() -> Scrape:
        response = await api.get("/metrics")
        assert response.status_code == 200
        return parse(response.text)

    return get


@pytest.fixture
async def caller(monitored: Connections) -> AsyncIterator[Callable[..., Any]]:
    """A factory of committed users with tokens; all are deleted after the test."""
    made: list[str] = []

    async def make(role: UserRole = UserRole.USER) -> Caller:
        async with unit_of_work(monitored.sessionmaker, monitored.cache) as session:
            email = f"{new_id()}@example.com"
            user = await UserService(session, monitored.cache).create(
                UserCreate(email=email, role=role), origin=CLI
            )
            token = await TokenService(session, monitored.cache).create(
                user.id, TokenCreate(name="test"), origin=CLI
            )
        made.append(user.id)
        return Caller(user.id, email, role, token.token)

    yield make
    async with monitored.sessionmaker() as session:
        await session.execute(delete(User).where(User.id.in_(made)))
        await session.commit()
