"""Drills of issue #24 against `templator serve` (a subprocess on the test stores) and worker
processes: many workers with random failures, a worker killed or paused mid-session.

Bounded: every wait has a deadline, every worker exits when the queue stays empty.
Sizes come from DRILL_WORKERS / DRILL_SESSIONS: 8 workers × 2,000 sessions (the issue's
size) by default. On the shared 2-core host at a load average of 3 to 5 that test takes
about 75 s (47 s of it the drill itself; 8 × 400: 43 s, 19 s); it took 6 minutes at a
load of 19 (docs/benchmarks.md, "Drills"). Set DRILL_SESSIONS lower for a quick run.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from templator.connections import Connections
from templator.kit.ids import new_id
from templator.kit.uow import unit_of_work
from tests.api.conftest import LiveApi
from tests.support.factories import make_project, make_user

# The server rescues every second, and retries are due at once.
LIVE_API_ENV = {
    "WORK_RESCUE_INTERVAL_SECONDS": "1",
    "WORK_RETRY_BASE_SECONDS": "0",
    "WORK_RETRY_MAX_SECONDS": "0",
    "DB_POOL_SIZE": "10",
}
WORKER = str(Path(__file__).with_name("drill_worker.py"))
WORKERS = int(os.environ.get("DRILL_WORKERS", "8"))
SESSIONS = int(os.environ.get("DRILL_SESSIONS", "2000"))
TENANTS = 4
LEASE = 5  # the `hold` worker's lease (the shortest a claim may ask)
RESCUE_INTERVAL = 1


@pytest.fixture(scope="module")
def worker_token(live_api: LiveApi) -> str:
    """A worker token (its ADMIN made with the CLI: `templator token create --scope worker`)."""
    templator = str(Path(sys.executable).parent / "templator")
    email = f"drill-{new_id()}@example.com"
    run = {"env": live_api.env, "capture_output": True, "text": True, "check": True}
    subprocess.run(
        [templator, "user", "create", "--email", email, "--role", "ADMIN", "--json"], **run
    )
    out = subprocess.run(
        [templator, "token", "create", "--user", email, "--scope", "worker", "--json"], **run
    ).stdout
    token: str = json.loads(out)["token"]
    return token


async def _queue(connections: Connections, count: int) -> list[str]:
    """`count` ready sessions spread over TENANTS new users (made in SQL: the drill is about
    the workers), the queue emptied of anything else, and one NOTIFY."""
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        await session.execute(
            text("UPDATE ai_sessions SET ready_at = NULL WHERE status = 'PENDING'")
        )
        await session.execute(
            text("UPDATE ai_sessions SET status = 'CANCELLED' WHERE status = 'PROCESSING'")
        )
        owners = []
        for _ in range(TENANTS):
            user = await make_user(session)
            owners.append((user.id, (await make_project(session, user=user)).id))
        ids = [new_id() for _ in range(count)]
        await session.execute(
            text(
                "INSERT INTO ai_sessions (id, project_id, user_id, ready_at, max_attempts) "
                "SELECT i, p, u, now(), 3 FROM unnest(CAST(:ids AS text[]), "
                "CAST(:projects AS text[]), CAST(:users AS text[])) AS t(i, p, u)"
            ),
            {
                "ids": ids,
                "projects": [owners[i % TENANTS][1] for i in range(count)],
                "users": [owners[i % TENANTS][0] for i in range(count)],
            },
        )
        await session.execute(text("SELECT pg_notify('templator_work', '')"))
    return ids


def _start(
    mode: str, live_api: LiveApi, token: str, name: str, *args: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, mode, live_api.url, token, name, *args],
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Worker processes, killed at the end whatever happened."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def test_workers_with_random_failures_lose_nothing_and_process_nothing_twice(
    live_api: LiveApi,
    worker_token: str,
    connections: Connections,
    processes: list[subprocess.Popen[str]],
) -> None:
    ids = await _queue(connections, SESSIONS)
    processes.extend(
        _start("run", live_api, worker_token, f"w{i}", str(i), "8") for i in range(WORKERS)
    )
    reports = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0
        reports.append(json.loads(out))

    assert [r["unexpected"] for r in reports] == [[]] * WORKERS
    async with connections.sessionmaker() as session:
        by_status = dict(
            (
                await session.execute(
                    text(
                        "SELECT status::text, count(*) FROM ai_sessions "
                        "WHERE id = ANY(:ids) GROUP BY 1"
                    ),
                    {"ids": ids},
                )
            ).all()
        )
        # Per session, by the platform's own record: attempts never overlap, at most one
        # completed, and the last one explains the final status.
        rows = (
            await session.execute(
                text(
                    "SELECT s.id, s.status::text, s.error_log IS NOT NULL, "
                    "count(a.id) FILTER (WHERE a.outcome = 'completed'), "
                    "count(a.id) FILTER (WHERE a.outcome = 'running'), "
                    "bool_and(a.ended_at IS NOT NULL), "
                    "(array_agg(a.outcome ORDER BY a.id DESC))[1], "
                    "count(*) FILTER (WHERE a.claimed_at < a.prev_end), "
                    "(SELECT count(*) FROM templates t WHERE t.session_id = s.id) "
                    "FROM ai_sessions s JOIN (SELECT *, lag(ended_at) OVER "
                    "(PARTITION BY session_id ORDER BY id) AS prev_end FROM session_attempts) a "
                    "ON a.session_id = s.id WHERE s.id = ANY(:ids) GROUP BY s.id, s.status, "
                    "s.error_log"
                ),
                {"ids": ids},
            )
        ).all()
    assert set(by_status) <= {"COMPLETED", "FAILED"}, by_status  # 0 lost, 0 left PROCESSING
    assert sum(by_status.values()) == SESSIONS
    assert len(rows) == SESSIONS  # every session was claimed at least once
    for sid, status, has_error, completed, running, all_ended, last, overlaps, made in rows:
        assert overlaps == 0 and running == 0 and all_ended, sid
        if status == "COMPLETED":  # with its one template (made in the same transaction)
            assert completed == 1 and last == "completed" and made == 1, sid
        else:
            assert completed == 0 and has_error and last == "failed" and made == 0, sid
    completed_by_workers = [sid for r in reports for sid in r["completed"]]
    assert len(completed_by_workers) == len(set(completed_by_workers))  # none twice
    assert len(completed_by_workers) == by_status.get("COMPLETED", 0)
    assert sum(len(r["retry"]) for r in reports) > 0  # failures were retried


def _line(process: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    """The worker's next JSON line, waited for at most `timeout` seconds."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"the worker printed nothing within {timeout:g}s"
    line = process.stdout.readline()
    assert line, "the worker exited without answering"
    found: dict[str, Any] = json.loads(line)
    return found


async def _claim_again(live_api: LiveApi, token: str, session_id: str) -> tuple[str, float]:
    """Claim as another worker until `session_id` comes back (bounded): its lease token and
    how long it took."""
    started = time.monotonic()
    deadline = started + LEASE + RESCUE_INTERVAL + 20  # slack for a loaded 2-core host
    async with httpx.AsyncClient(
        base_url=live_api.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        while time.monotonic() < deadline:
            response = await client.post(
                "/api/v1/work/claim", json={"worker": "rescuer-test", "wait": 2, "limit": 5}
            )
            for claim in response.json()["items"]:
                if claim["session"]["id"] == session_id:
                    return claim["lease"]["token"], time.monotonic() - started
    raise AssertionError(f"session {session_id} was not claimed again in time")


async def test_a_killed_workers_session_is_taken_again_after_its_lease(
    live_api: LiveApi,
    worker_token: str,
    connections: Connections,
    processes: list[subprocess.Popen[str]],
) -> None:
    (session_id,) = await _queue(connections, 1)
    holder = _start("hold", live_api, worker_token, "doomed", "600")
    processes.append(holder)
    assert _line(holder)["session"] == session_id

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    _, waited = await _claim_again(live_api, worker_token, session_id)

    async with connections.sessionmaker() as session:
        outcomes = (
            await session.execute(
                text(
                    "SELECT worker, outcome FROM session_attempts WHERE session_id = :id "
                    "ORDER BY id"
                ),
                {"id": session_id},
            )
        ).all()
    assert [tuple(o) for o in outcomes] == [
        ("doomed", "lease_expired"),
        ("rescuer-test", "running"),
    ]
    # The bound the issue sets (lease + one rescue interval), with slack for the host.
    assert waited < LEASE + RESCUE_INTERVAL + 20


async def test_a_paused_workers_late_writes_are_refused(
    live_api: LiveApi,
    worker_token: str,
    connections: Connections,
    processes: list[subprocess.Popen[str]],
) -> None:
    (session_id,) = await _queue(connections, 1)
    holder = _start("hold", live_api, worker_token, "sleepy", "1")
    processes.append(holder)
    assert _line(holder)["session"] == session_id
    os.kill(holder.pid, signal.SIGSTOP)
    async with httpx.AsyncClient(
        base_url=live_api.url, headers={"Authorization": f"Bearer {worker_token}"}, timeout=30
    ) as client:
        try:
            token, _ = await _claim_again(live_api, worker_token, session_id)
            mine = {"Lease-Token": token}
            phase = {"phase": "ai_analysis", "payload": {"by": "new"}, "progress": 0.6}
            response = await client.post(
                f"/api/v1/sessions/{session_id}/phases", json=phase, headers=mine
            )
            assert response.status_code == 200
        finally:
            os.kill(holder.pid, signal.SIGCONT)
        late = _line(holder)["late"]
        done = await client.post(
            f"/api/v1/sessions/{session_id}/complete",
            json={"final_result": {"by": "new"}},
            headers=mine,
        )

    assert late == [[409, "lease_lost"]] * 4
    assert done.status_code == 200
    async with connections.sessionmaker() as session:
        final = (
            await session.execute(
                text(
                    "SELECT status::text, final_result, sections, ai_analysis FROM ai_sessions "
                    "WHERE id = :id"
                ),
                {"id": session_id},
            )
        ).one()
    assert tuple(final) == ("COMPLETED", {"by": "new"}, None, {"by": "new"})


async def _frames(response: httpx.Response) -> Any:
    """(event, data) of each SSE frame, keep-alive comments skipped."""
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield event, json.loads(line.removeprefix("data: "))


async def test_a_cancel_reaches_the_worker_on_its_event_stream_and_heartbeat(
    live_api: LiveApi, worker_token: str, connections: Connections
) -> None:
    await _queue(connections, 0)
    owner = httpx.AsyncClient(base_url=live_api.url, headers=live_api.headers, timeout=30)
    worker = httpx.AsyncClient(
        base_url=live_api.url, headers={"Authorization": f"Bearer {worker_token}"}, timeout=30
    )
    async with owner, worker:
        project = (await owner.post("/api/v1/projects", json={"name": "cancel"})).json()["id"]
        sid = (await owner.post("/api/v1/sessions", json={"project_id": project})).json()["id"]
        claim = (await worker.post("/api/v1/work/claim", json={"worker": "w", "wait": 10})).json()
        assert [c["session"]["id"] for c in claim["items"]] == [sid]
        lease = {"Lease-Token": claim["items"][0]["lease"]["token"]}
        seen = []
        async with worker.stream("GET", f"/api/v1/sessions/{sid}/events", timeout=20) as stream:
            frames = _frames(stream)
            seen.append(await anext(frames))
            assert (await owner.post(f"/api/v1/sessions/{sid}/cancel")).status_code == 200
            async for frame in frames:  # the stream ends with the final status
                seen.append(frame)
        beat = await worker.post(f"/api/v1/work/{sid}/heartbeat", headers=lease, json={})
        late = await worker.post(
            f"/api/v1/sessions/{sid}/phases",
            headers=lease,
            json={"phase": "ai_analysis", "payload": {}, "progress": 0.5},
        )

    assert seen[0][0] == "state" and seen[0][1]["status"] == "PROCESSING"
    assert seen[-1][0] == "progress" and seen[-1][1]["status"] == "CANCELLED"
    assert beat.json() == {"expires_at": None, "cancelled": True}
    assert late.status_code == 409 and late.json()["code"] == "session_finished"
