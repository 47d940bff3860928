"""Fault drills (issue #13): a server of the supervised stack is killed or paused under a
bounded load against `templator serve`; the API answers through it, the supervisor
restarts it, and nothing acknowledged is lost. Each drill also checks that the alert that
should fire (RedisDown, ObjectStoreDown, PostgresDown) fires on what /metrics showed during
the outage, and not on what it showed before (promtool evaluates the real rules).

Each drill is bounded in time (a few seconds of load) and in count (`max_requests`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter

import httpx
import psutil
import psycopg
import pytest

from templator.storage.service import ObjectStore
from tests.resilience.conftest import (
    OUTAGE_ANSWER_BOUND,
    Api,
    Outcome,
    SupervisedStack,
    metric,
    postgres_processes,
    ready_state,
    run_load,
    scrape,
    signal_all,
    supervised_stack,
)
from tests.support.alerts import fires
from tests.support.factories import image_bytes

pytestmark = pytest.mark.slow

PNG = image_bytes("PNG")  # a real image: uploads are parsed whole


def _summary(outcomes: list[Outcome]) -> Counter[tuple[int | None, str | None]]:
    return Counter((o.status, o.code) for o in outcomes)


def _no_tracebacks(api: Api) -> None:
    log = api.log_text()
    assert "Traceback" not in log, log[-3000:]


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


async def _stop(done: asyncio.Event, load: asyncio.Task[list[Outcome]]) -> list[Outcome]:
    done.set()
    return await load


async def _wait_ready_status(
    api: Api, wanted: str, timeout: float
) -> tuple[float, int, dict[str, object]]:
    """(seconds until readiness said `wanted`, its HTTP status, its body)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        status, body = await asyncio.to_thread(ready_state, api)
        if body["status"] == wanted:
            return time.monotonic() - started, status, body
        await asyncio.sleep(0.1)
    raise AssertionError(f"readiness never became {wanted!r} within {timeout}s: {body}")


async def test_r1_redis_killed_under_load_fails_nothing_and_caching_resumes(
    http: httpx.AsyncClient, api: Api, supervised: SupervisedStack
) -> None:
    project = (await http.post("/api/v1/projects", json={"name": "r1"})).json()["id"]

    def read(client: httpx.AsyncClient, n: int) -> object:
        path = "/api/v1/users/me" if n % 2 else f"/api/v1/projects/{project}"
        return client.get(path)

    before = await asyncio.to_thread(scrape, api)
    done = asyncio.Event()
    load = asyncio.create_task(run_load(http, read, workers=3, until=done, max_requests=3000))
    try:
        await asyncio.sleep(0.5)
        restarts = supervised.supervisor.states["redis"].restarts
        old_pid = supervised.pid("redis")
        _kill(old_pid)
        degraded_after, status, body = await _wait_ready_status(api, "degraded", timeout=5)
        during = await asyncio.to_thread(scrape, api)
        await asyncio.to_thread(supervised.wait_restarted, "redis", restarts, 30)
        await _wait_ready_status(api, "up", timeout=10)
        await asyncio.sleep(2.5)  # the cache's own back-off after an error (Cache.retry_after)
    finally:
        outcomes = await _stop(done, load)
    # Caching resumed: reads of our own after the restart are answered from Redis. (The
    # background load is bounded in count, so on a fast host it may be over by now.)
    hits = metric(api, "templator_cache_requests_total", outcome="hit")
    for n in range(20):
        assert (await read(http, n)).status_code == 200  # type: ignore[attr-defined]
    hits_after = metric(api, "templator_cache_requests_total", outcome="hit")
    seen = {
        name: metric(api, name, **labels)
        for name, labels in (
            ("templator_cache_requests_total", {"outcome": "miss"}),
            ("templator_cache_bypass_total", {}),
        )
    }

    assert degraded_after < 2.0, degraded_after
    assert status == 200 and body["down"] == ["redis"]
    # The alert that should fire does, on what /metrics showed during the outage only.
    assert fires(during, "RedisDown") and not fires(before, "RedisDown")
    assert len(outcomes) > 20
    failed = [o.body for o in outcomes if o.status != 200]
    assert _summary(outcomes) == Counter({(200, None): len(outcomes)}), (_summary(outcomes), failed)
    # The old process is reaped (no zombie left behind) and the new one is recorded.
    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() != "zombie"
    assert supervised.pid("redis") != old_pid
    redis_lines = [line for line in api.log_text().splitlines() if "Redis" in line]
    assert hits_after > hits, (hits, hits_after, seen, redis_lines[-5:])
    assert any("Redis" in m and "killed by SIGKILL" in m for _, m in supervised.events)
    _no_tracebacks(api)


async def test_r2_object_store_killed_during_uploads_gives_clean_503s_and_no_dangling_rows(
    http: httpx.AsyncClient, api: Api, supervised: SupervisedStack
) -> None:
    project = (await http.post("/api/v1/projects", json={"name": "r2"})).json()["id"]
    session = (await http.post("/api/v1/sessions", json={"project_id": project})).json()["id"]

    def upload(client: httpx.AsyncClient, n: int) -> object:
        files = {"file": (f"d{n}.png", PNG, "image/png")}
        return client.post(f"/api/v1/sessions/{session}/designs", files=files)

    before = await asyncio.to_thread(scrape, api)
    done = asyncio.Event()
    load = asyncio.create_task(run_load(http, upload, workers=2, until=done, max_requests=400))
    try:
        await asyncio.sleep(1.0)
        restarts = supervised.supervisor.states["seaweedfs"].restarts
        _kill(supervised.pid("seaweedfs"))
        _, status, body = await _wait_ready_status(api, "degraded", timeout=5)
        during = await asyncio.to_thread(scrape, api)
        await asyncio.to_thread(supervised.wait_restarted, "seaweedfs", restarts, 60)
        await asyncio.sleep(1.0)
    finally:
        outcomes = await _stop(done, load)
    after = await upload(http, 10_000)  # type: ignore[misc]

    summary = _summary(outcomes)
    assert status == 200 and body["down"] == ["object_store"]
    assert fires(during, "ObjectStoreDown") and not fires(before, "ObjectStoreDown")
    assert set(summary) <= {(201, None), (503, "storage_unavailable")}, summary
    assert summary[(201, None)] > 0
    assert all(o.retry_after for o in outcomes if o.status == 503)
    assert after.status_code == 201, after.text  # uploads work again after the restart
    # No row points at a missing object.
    store = ObjectStore.from_settings(
        api.settings, endpoint_url=supervised.stack.urls.s3_endpoint_url
    )
    with psycopg.connect(supervised.stack.urls.database_url.replace("+psycopg", "")) as conn:
        keys = [
            row[0]
            for row in conn.execute(
                "SELECT key FROM stored_objects WHERE session_id = %s", (session,)
            )
        ]
    assert len(keys) >= summary[(201, None)]
    missing = [key for key in keys if not store.exists(key)]
    assert missing == []
    _no_tracebacks(api)


async def test_r3_postgres_killed_then_paused_under_writes_loses_no_acknowledged_write(
    http: httpx.AsyncClient, api: Api, supervised: SupervisedStack
) -> None:
    marker = f"r3-{time.time_ns()}"

    def write(client: httpx.AsyncClient, n: int) -> object:
        return client.post("/api/v1/projects", json={"name": f"{marker}-{n}"})

    before = await asyncio.to_thread(scrape, api)
    done = asyncio.Event()
    load = asyncio.create_task(run_load(http, write, workers=3, until=done, max_requests=2000))
    try:
        await asyncio.sleep(1.0)
        # SIGKILL of the postmaster: the supervisor reaps it, clears the stale
        # postmaster.pid and the orphaned backends, and starts it again.
        restarts = supervised.supervisor.states["postgres"].restarts
        assert supervised.stack.postgres is not None
        lock = supervised.stack.postgres.data / "postmaster.pid"
        _kill(supervised.pid("postgres"))
        killed_at = time.monotonic()
        stale_lock = lock.exists()  # what a SIGKILL leaves behind for the restart to handle
        await asyncio.to_thread(supervised.wait_restarted, "postgres", restarts, 60)
        await _wait_ready_status(api, "up", timeout=20)
        await asyncio.sleep(1.0)
        # SIGSTOP of every PostgreSQL process, for a while, then SIGCONT.
        paused = postgres_processes(supervised.stack)
        signal_all(paused, signal.SIGSTOP)
        paused_at = time.monotonic()
        try:
            await asyncio.sleep(5)
            status, body = await asyncio.to_thread(ready_state, api)
            during = await asyncio.to_thread(scrape, api)
        finally:
            signal_all(paused, signal.SIGCONT)
        resumed_at = time.monotonic()
        await asyncio.sleep(2.0)
    finally:
        outcomes = await _stop(done, load)

    summary = _summary(outcomes)
    assert stale_lock
    assert set(summary) <= {(201, None), (503, "database_unavailable"), (503, "busy")}, summary
    assert summary[(503, "database_unavailable")] > 0
    assert all(o.retry_after for o in outcomes if o.status == 503)
    assert max(o.seconds for o in outcomes) < OUTAGE_ANSWER_BOUND, max(o.seconds for o in outcomes)
    assert status == 503 and body["status"] == "down"
    assert fires(during, "PostgresDown") and not fires(before, "PostgresDown")
    # Writes succeed again after each fault.
    assert any(o.status == 201 and killed_at + 1 < o.started < paused_at for o in outcomes)
    assert any(o.status == 201 and o.started > resumed_at for o in outcomes)
    # Zero acknowledged writes lost: every 201 is in the database after the faults.
    acknowledged = {o.body["id"] for o in outcomes if o.status == 201 and o.body}
    with psycopg.connect(supervised.stack.urls.database_url.replace("+psycopg", "")) as conn:
        stored = {
            row[0]
            for row in conn.execute("SELECT id FROM projects WHERE name LIKE %s", (f"{marker}-%",))
        }
    assert acknowledged and acknowledged <= stored, acknowledged - stored
    assert any("PostgreSQL" in m and "restarted" in m for _, m in supervised.events)
    _no_tracebacks(api)
    # One log line per failed request, no more (the log holds only this drill's failures).
    log = api.log_text()
    assert log.count("database unavailable on ") == summary[(503, "database_unavailable")]


def test_stopping_names_only_the_servers_still_running() -> None:
    """Ctrl-C of `templator up`: supervisor first, then the stack, which must not claim to
    stop a server that is already gone. On a stack of its own: it ends the stack, and the
    package's shared one is still needed by drills that pytest-xdist may run after it (the
    queue's PostgreSQL-restart drill once found the shared stack stopped by this test)."""
    with supervised_stack() as own:
        own.supervisor.stop()
        redis = own.stack.records["redis"]
        _kill(redis.pid)
        assert own.stack.redis is not None and own.stack.redis.process is not None
        own.stack.redis.process.wait(10)
        own.events.clear()
        own.stack.stop()
        said = [message for _, message in own.events]
        assert "stopping PostgreSQL" in said and "stopping SeaweedFS S3" in said, said
        assert "stopping Redis" not in said, said
