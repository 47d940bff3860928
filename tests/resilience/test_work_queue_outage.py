"""The work queue while PostgreSQL restarts: workers keep claiming; no session is lost or
held by two (issue #24's drill), on the private supervised stack of tests/resilience."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from templator.audit.service import CLI
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService
from templator.config import ProcessRole
from templator.connections import Connections, StoreUrls
from templator.kit.ids import new_id
from templator.kit.uow import unit_of_work
from templator.models import UserRole
from templator.user.schemas import UserCreate
from templator.user.service import UserService
from tests.resilience.conftest import Api, SupervisedStack

WORKER = str(Path(__file__).parents[1] / "work" / "drill_worker.py")
WORKERS, SESSIONS = 4, 200
# What a worker may meet while the database restarts: 503s, its lease lost or expired in
# the meantime, a connection dropped mid-answer.
TOLERATED = ("503", "lease_expired", "lease_lost", "Error(")


async def _worker_token(api: Api) -> str:
    conf = api.settings
    assert conf.database_url and conf.redis_url
    conns = Connections(
        conf, urls=StoreUrls(conf.database_url, conf.redis_url, None), role=ProcessRole.TEST
    )
    try:
        async with unit_of_work(conns.sessionmaker, conns.cache) as session:
            user = await UserService(session, conns.cache).create(
                UserCreate(email=f"worker-{new_id()}@example.com", role=UserRole.ADMIN), origin=CLI
            )
            token = await TokenService(session, conns.cache).create(
                user.id,
                TokenCreate.model_validate({"name": "w", "scopes": ["worker"]}),
                origin=CLI,
                owner_role=UserRole.ADMIN,
            )
        return token.token
    finally:
        await conns.close()


def _queue(dsn: str, owner: str) -> list[str]:
    ids = [new_id() for _ in range(SESSIONS)]
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE ai_sessions SET ready_at = NULL WHERE status = 'PENDING'")
        project = new_id()
        conn.execute(
            "INSERT INTO projects (id, name, user_id) VALUES (%s, 'queue drill', %s)",
            (project, owner),
        )
        conn.execute(
            "INSERT INTO ai_sessions (id, project_id, user_id, ready_at) "
            "SELECT i, %s, %s, now() FROM unnest(%s::text[]) AS i",
            (project, owner, ids),
        )
        conn.execute("SELECT pg_notify('templator_work', '')")
    return ids


def _start_workers(url: str, token: str) -> list[subprocess.Popen[str]]:
    """WORKERS drill workers (leases of 10 s; each exits after 20 empty claims)."""
    return [
        subprocess.Popen(
            [sys.executable, WORKER, "run", url, token, f"w{i}", str(i), "20", "10"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]


def _wait_accepting(dsn: str, timeout: float = 60) -> None:
    """Until PostgreSQL accepts a connection (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                message = f"the supervised stack's PostgreSQL is not accepting: {exc}"
                raise AssertionError(message) from exc
            time.sleep(0.5)


def _sweeper(url: str, token: str) -> subprocess.Popen[str]:
    """One more drill worker, patient for 40 empty claims."""
    return subprocess.Popen(
        [sys.executable, WORKER, "run", url, token, "sweep", "99", "40", "10"],
        stdout=subprocess.PIPE,
        text=True,
    )


async def test_postgres_restarted_while_workers_claim_loses_no_session_and_doubles_none(
    api: Api, supervised: SupervisedStack
) -> None:
    dsn = supervised.stack.urls.database_url.replace("+psycopg", "")
    _wait_accepting(dsn)  # an earlier drill of this stack may have just restarted it
    ids = _queue(dsn, api.user_id)
    token = await _worker_token(api)
    workers = _start_workers(api.url, token)
    try:
        await asyncio.sleep(2.0)  # the workers are claiming
        restarts = supervised.supervisor.states["postgres"].restarts
        os.kill(supervised.pid("postgres"), signal.SIGKILL)
        await asyncio.to_thread(supervised.wait_restarted, "postgres", restarts, 60)
        reports = []
        for process in workers:
            out, _ = await asyncio.to_thread(process.communicate, timeout=400)
            assert process.returncode == 0
            reports.append(json.loads(out))
        # A claim committed while its answer was lost to the outage holds its session until
        # the lease (10 s) expires and the rescuer returns it: a last worker, patient for
        # 40 empty claims (40 s), takes what the rescuer hands back.
        sweeper = _sweeper(api.url, token)
        workers.append(sweeper)
        out, _ = await asyncio.to_thread(sweeper.communicate, timeout=400)
        assert sweeper.returncode == 0
        reports.append(json.loads(out))
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()

    odd = [u for r in reports for u in r["unexpected"] if not any(t in u for t in TOLERATED)]
    assert not odd, odd
    with psycopg.connect(dsn) as conn:
        statuses = dict(
            conn.execute(
                "SELECT status::text, count(*) FROM ai_sessions WHERE id = ANY(%s) GROUP BY 1",
                (ids,),
            ).fetchall()
        )
        doubled = conn.execute(
            "SELECT a.session_id FROM session_attempts a WHERE a.session_id = ANY(%s) "
            "GROUP BY a.session_id HAVING count(*) FILTER (WHERE outcome = 'completed') > 1 "
            "OR count(*) FILTER (WHERE outcome = 'running') > 0",
            (ids,),
        ).fetchall()
        overlapping = conn.execute(
            "SELECT session_id FROM (SELECT session_id, claimed_at, lag(ended_at) OVER "
            "(PARTITION BY session_id ORDER BY id) AS prev_end FROM session_attempts "
            "WHERE session_id = ANY(%s)) a WHERE claimed_at < prev_end",
            (ids,),
        ).fetchall()
        # The workers complete with POST /work/{id}/complete: the template is made in the
        # completion's transaction, so a restart mid-way leaves both or neither.
        unmatched = conn.execute(
            "SELECT s.id, s.status::text, count(t.id) FROM ai_sessions s LEFT JOIN templates t "
            "ON t.session_id = s.id WHERE s.id = ANY(%s) GROUP BY s.id, s.status "
            "HAVING count(t.id) <> (CASE WHEN s.status = 'COMPLETED' THEN 1 ELSE 0 END)",
            (ids,),
        ).fetchall()
    assert set(statuses) <= {"COMPLETED", "FAILED"}, statuses  # none lost or left held
    assert unmatched == []  # no COMPLETED session without its one template
    assert sum(statuses.values()) == SESSIONS
    assert doubled == [] and overlapping == []  # never held by two
