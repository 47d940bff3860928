"""PostgreSQL unreachable, refusing or hung: every endpoint answers 503 problem+json
`database_unavailable` with Retry-After, within the configured timeouts, with one log
line per failure and no traceback, and recovers by itself (issue #10, deliverable 3)."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from templator.app import create_app
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.process import free_port
from templator.kit.ids import new_id
from tests.resilience.conftest import Api, SupervisedStack, postgres_processes, signal_all

BOUNDS = {"db_connect_timeout": 1, "db_statement_timeout_ms": 1500, "db_pool_timeout": 3}


def _settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=redis_url,
        cache_namespace=f"outage-{new_id()}",
        **BOUNDS,  # type: ignore[arg-type]
    )


@pytest.fixture
async def app_on(
    redis_url: str,
) -> AsyncIterator[object]:
    """A factory: the real app (lifespan run) on a given PostgreSQL URL."""
    opened: list[tuple[Connections, object]] = []

    async def make(database_url: str) -> httpx.AsyncClient:
        conf = _settings(database_url, redis_url)
        assert conf.database_url and conf.redis_url
        conns = Connections(
            conf, urls=StoreUrls(conf.database_url, conf.redis_url, None), role=ProcessRole.TEST
        )
        app = create_app(conf, connections=conns)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        # raise_app_exceptions=False: what a client of uvicorn gets, not the test's traceback.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        opened.append((conns, (lifespan, client)))
        return client

    yield make
    for conns, (lifespan, client) in opened:  # type: ignore[misc]
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        await conns.close()


def _operations(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    app = client._transport.app  # type: ignore[attr-defined]
    schema = app.openapi()
    found = []
    for path, operations in schema["paths"].items():
        for method in operations:
            found.append((method.upper(), re.sub(r"\{[^}]+\}", new_id(), path)))
    return found


def _assert_database_unavailable(response: httpx.Response, where: str) -> None:
    assert response.status_code == 503, (where, response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json", where
    assert response.json()["code"] == "database_unavailable", (where, response.text[:300])
    assert int(response.headers["retry-after"]) >= 1, where


async def test_refused_postgres_answers_every_endpoint_503_with_one_log_line_each(
    app_on: object, caplog: pytest.LogCaptureFixture
) -> None:
    client = await app_on(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")  # type: ignore[operator]
    headers = {"Authorization": "Bearer tpl_abcdefgh_" + "s" * 40}
    operations = [op for op in _operations(client) if not op[1].startswith(("/health", "/metrics"))]
    assert len(operations) > 30
    caplog.set_level(logging.WARNING)
    refused_early = []
    for method, path in operations:
        caplog.clear()
        started = time.monotonic()
        response = await client.request(method, path, headers=headers, json={})
        assert time.monotonic() - started < 5, (method, path)
        if response.status_code in (401, 404, 405, 422):
            # Refused before any store is asked (a malformed token, a bad body): no
            # database involved, nothing to report as an outage.
            assert response.json()["code"] != "internal_error"
            refused_early.append((method, path, response.status_code))
            continue
        _assert_database_unavailable(response, f"{method} {path}")
        # Per request, one line; the background tasks (the work queue's listener, which
        # says once that it lost its connection) report the outage on their own loggers.
        lines = [
            r
            for r in caplog.records
            if r.levelno >= logging.WARNING and not r.name.startswith("templator.work")
        ]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert lines[0].exc_info is None and "database unavailable" in lines[0].getMessage()
    # A well-formed token needs the database to be checked: nearly every operation got there.
    assert len(refused_early) <= 3, refused_early


async def test_a_real_token_meets_503_not_401_when_postgres_refuses(
    app_on: object, api: Api
) -> None:
    """The token is fine, the database is gone: the client must not be told to re-login."""
    client = await app_on(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")  # type: ignore[operator]
    for method, path in (
        ("GET", "/api/v1/users/me"),
        ("GET", "/api/v1/projects"),
        ("POST", "/api/v1/projects"),
        ("GET", f"/api/v1/templates/{new_id()}"),
    ):
        response = await client.request(method, path, headers=api.headers, json={"name": "x"})
        _assert_database_unavailable(response, f"{method} {path}")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a hung host."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    listener.settimeout(0.1)
    stop = False

    def accept() -> None:
        while not stop:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop = True
    thread.join(2)
    for conn in accepted:
        conn.close()
    listener.close()


async def test_a_server_that_never_answers_is_503_within_the_connect_timeout(
    app_on: object, silent_server: int
) -> None:
    client = await app_on(f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/x")  # type: ignore[operator]
    headers = {"Authorization": "Bearer tpl_abcdefgh_" + "s" * 40}
    started = time.monotonic()
    response = await client.post("/api/v1/projects", json={"name": "x"}, headers=headers)
    took = time.monotonic() - started
    _assert_database_unavailable(response, "POST /api/v1/projects")
    assert took < BOUNDS["db_connect_timeout"] + 2, took
    started = time.monotonic()
    ready = await client.get("/health/ready")
    assert ready.status_code == 503 and time.monotonic() - started < 2.0 + 1


async def test_a_paused_postgres_gives_503_within_the_bound_then_recovers_by_itself(
    app_on: object, supervised: SupervisedStack, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP of the postmaster and every backend: the kernel still acknowledges every
    packet, so only the client-side bound notices; the pooled connection is dropped, and
    once the server runs again the next request is served on a fresh one."""
    client = await app_on(supervised.stack.urls.database_url)  # type: ignore[operator]
    created = await client.post("/api/v1/projects", json={"name": "warm"}, headers=api.headers)
    assert created.status_code == 201, created.text
    bound = BOUNDS["db_statement_timeout_ms"] / 1000 + BOUNDS["db_connect_timeout"]
    paused = postgres_processes(supervised.stack)
    signal_all(paused, signal.SIGSTOP)
    try:
        caplog.set_level(logging.WARNING)
        started = time.monotonic()
        write, ready = await asyncio.gather(
            client.post("/api/v1/projects", json={"name": "during"}, headers=api.headers),
            client.get("/health/ready"),
        )
        took = time.monotonic() - started
        _assert_database_unavailable(write, "POST /api/v1/projects (paused)")
        assert took < bound + 2, took
        assert ready.status_code == 503
        assert ready.json()["components"]["postgres"]["latency_ms"] < 2500
        assert not any(r.exc_info for r in caplog.records)
    finally:
        signal_all(paused, signal.SIGCONT)
    again = await client.post("/api/v1/projects", json={"name": "after"}, headers=api.headers)
    assert again.status_code == 201, again.text
    assert (await client.get("/health/ready")).status_code == 200
