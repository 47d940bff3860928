"""The real app on real stores, driven over HTTP (ASGI) with real API tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from templator.app import create_app
from templator.audit.service import CLI
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService
from templator.config import PROJECT_ROOT, Settings
from templator.connections import Connections
from templator.dev.localstack.process import free_port
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.kit.ids import new_id
from templator.kit.uow import unit_of_work
from templator.models import User, UserRole
from templator.user.schemas import UserCreate
from templator.user.service import UserService
from tests.plugins.s3 import ACCESS_KEY, SECRET_KEY
from tests.support.factories import hubspot_config


@dataclass
class Caller:
    """A user and their bearer token."""

    id: str
    email: str
    role: UserRole
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def client(store_connections: Connections) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, whose lifespan has run."""
    app = create_app(store_connections.settings, connections=store_connections)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def new_caller(
    conns: Connections, role: UserRole = UserRole.USER, *, scopes: tuple[str, ...] = ()
) -> tuple[Caller, str]:
    """A committed user with a token of `scopes` (the caller, and the token's id); the
    caller deletes it."""
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        email = f"{new_id()}@example.com"
        user = await UserService(session, conns.cache).create(
            UserCreate(email=email, role=role), origin=CLI
        )
        token = await TokenService(session, conns.cache).create(
            user.id,
            TokenCreate.model_validate({"name": "test", "scopes": list(scopes)}),
            origin=CLI,
            owner_role=role,
        )
    return Caller(user.id, email, role, token.token), token.id


async def new_template(
    client: httpx.AsyncClient, owner: Caller, *, name: str = "Private", html: str = "<p>x</p>"
) -> str:
    """The id of a template of `owner`'s, in a new project of theirs, made over HTTP."""
    project = (
        await client.post("/api/v1/projects", json={"name": "Site"}, headers=owner.headers)
    ).json()
    created = await client.post(
        "/api/v1/templates",
        json={
            "project_id": project["id"],
            "name": name,
            "html_content": html,
            "hubspot_config": hubspot_config(),
        },
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    tid: str = created.json()["id"]
    return tid


@pytest.fixture
async def make_caller(store_connections: Connections) -> AsyncIterator[object]:
    """A factory of committed users with tokens; all are deleted after the test."""
    made: list[str] = []

    async def make(role: UserRole = UserRole.USER, *, scopes: tuple[str, ...] = ()) -> Caller:
        caller, _ = await new_caller(store_connections, role, scopes=scopes)
        made.append(caller.id)
        return caller

    yield make
    async with store_connections.sessionmaker() as session:
        await session.execute(delete(User).where(User.id.in_(made)))
        await session.commit()


@dataclass
class LiveApi:
    url: str
    headers: dict[str, str]
    env: dict[str, str]
    """The server's environment, for CLI commands on the same stores."""
    pid: int = 0
    """The server's process (its only worker)."""

    def openapi(self) -> dict[str, Any]:
        """The served OpenAPI document."""
        document: dict[str, Any] = httpx.get(f"{self.url}/openapi.json", timeout=10).json()
        return document


@pytest.fixture(scope="module")
def live_api(
    settings: Settings, s3_server: SeaweedFS, request: pytest.FixtureRequest
) -> Iterator[LiveApi]:
    """`templator serve` in a subprocess on the test stores, and a token for a fresh user
    (a test module may add settings in `LIVE_API_ENV`)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "S3_ENDPOINT_URL": s3_server.endpoint_url,
        "S3_ACCESS_KEY": ACCESS_KEY,
        "S3_SECRET_KEY": SECRET_KEY,
        "S3_BUCKET": f"fuzz-{port}",
        "CACHE_NAMESPACE": "fuzz",
        # Every fuzzed request comes from one address; the limit has tests of its own.
        "AUTH_FAILURE_LIMIT": "1000000",
        **getattr(request.module, "LIVE_API_ENV", {}),
    }
    templator = str(Path(sys.executable).parent / "templator")
    created = subprocess.run(
        [templator, "user", "create", "--email", f"fuzz-{port}@example.com", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert created.returncode == 0
    token = subprocess.run(
        [templator, "token", "create", "--user", f"fuzz-{port}@example.com", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    server = subprocess.Popen(
        [templator, "serve", "--port", str(port)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # importing the app is slow on a loaded 2-core host
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("`templator serve` did not start") from None
                time.sleep(0.2)
        token_header = {"Authorization": f"Bearer {json.loads(token)['token']}"}
        yield LiveApi(url, token_header, env, server.pid)
    finally:
        server.terminate()
        server.wait(15)
