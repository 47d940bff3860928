"""Claims: ready sessions only, each to one worker at a time, fair across tenants, woken
by NOTIFY; the defects of issue #24 that made a session claimable too early."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from templator.connections import Connections
from templator.kit.uow import unit_of_work
from tests.api.conftest import Caller
from tests.work.conftest import Queue


async def test_a_ready_session_is_claimed_once_under_a_lease(queue: Queue) -> None:
    created = await queue.create()

    first = await queue.claim(5)
    again = await queue.claim(5, worker="w2")

    assert [c["session"]["id"] for c in first] == [created["id"]]
    claim = first[0]
    assert claim["attempt"] == 1 and claim["lease"]["token"]
    assert claim["session"]["status"] == "PROCESSING"
    assert claim["session"]["worker"] == "w1"
    assert claim["session"]["lease_expires_at"] == claim["lease"]["expires_at"]
    assert again == []
    attempts = (await queue.get(f"/sessions/{created['id']}/attempts"))["items"]
    assert [(a["attempt"], a["worker"], a["outcome"]) for a in attempts] == [(1, "w1", "running")]


async def test_a_claim_takes_up_to_its_limit(queue: Queue) -> None:
    for _ in range(3):
        await queue.create()

    assert len(await queue.claim(2)) == 2
    assert len(await queue.claim(2)) == 1
    assert await queue.claim(2) == []


async def test_a_draft_is_not_claimable_until_it_is_submitted(queue: Queue) -> None:
    draft = await queue.create(draft=True)
    assert draft["ready_at"] is None

    before = await queue.claim()
    submitted = await queue.client.post(
        f"/api/v1/sessions/{draft['id']}/submit", headers=queue.owner.headers
    )
    after = await queue.claim()
    twice = await queue.client.post(
        f"/api/v1/sessions/{draft['id']}/submit", headers=queue.owner.headers
    )

    assert before == []
    assert submitted.status_code == 200 and submitted.json()["ready_at"] is not None
    assert [c["session"]["id"] for c in after] == [draft["id"]]
    assert twice.status_code == 409 and twice.json()["code"] == "session_not_draft"


async def test_priority_orders_a_tenants_sessions(queue: Queue) -> None:
    low = await queue.create(priority=-5)
    high = await queue.create(priority=50)
    normal = await queue.create()

    order = [(await queue.claim())[0]["session"]["id"] for _ in range(3)]

    assert order == [high["id"], normal["id"], low["id"]]


async def test_claims_interleave_tenants(queue: Queue, make_caller: object) -> None:
    other: Caller = await make_caller()  # type: ignore[operator]
    big = [(await queue.create())["id"] for _ in range(6)]
    small_project = await queue.project_of(other)
    small = []
    for _ in range(2):
        response = await queue.client.post(
            "/api/v1/sessions", json={"project_id": small_project}, headers=other.headers
        )
        small.append(response.json()["id"])

    taken = [c["session"]["id"] for c in await queue.claim(4)]

    assert sorted(taken[:4]) == sorted([*big[:2], *small])


async def test_a_claim_without_the_worker_scope_is_refused(
    queue: Queue, make_caller: object
) -> None:
    from templator.models import UserRole

    admin: Caller = await make_caller(UserRole.ADMIN)  # type: ignore[operator]
    created = await queue.create()
    for who in (queue.owner, admin):
        response = await queue.client.post(
            "/api/v1/work/claim", json={"worker": "w"}, headers=who.headers
        )
        assert response.status_code == 403
        assert response.json()["code"] == "worker_scope_required"
    state = await queue.get(f"/sessions/{created['id']}")
    assert state["status"] == "PENDING" and state["attempt"] == 0


async def test_only_an_admin_makes_a_worker_token(queue: Queue, make_caller: object) -> None:
    from templator.models import UserRole

    admin: Caller = await make_caller(UserRole.ADMIN)  # type: ignore[operator]
    body = {"name": "w", "scopes": ["worker"]}
    by_user = await queue.client.post("/api/v1/tokens", json=body, headers=queue.owner.headers)
    by_admin = await queue.client.post("/api/v1/tokens", json=body, headers=admin.headers)

    assert by_user.status_code == 403 and by_user.json()["code"] == "admin_required"
    assert by_admin.status_code == 201 and by_admin.json()["scopes"] == ["worker"]
    listed = await queue.client.get("/api/v1/tokens", headers=queue.owner.headers)
    assert all(not t["scopes"] for t in listed.json())


async def test_a_worker_token_reaches_nothing_outside_the_queue(queue: Queue) -> None:
    created = await queue.create()
    for method, path in [
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/audit"),
        ("GET", f"/api/v1/users/{queue.owner.id}/export"),
        ("DELETE", f"/api/v1/sessions/{created['id']}"),
        ("GET", f"/api/v1/projects/{queue.project}"),
    ]:
        response = await queue.client.request(method, path, headers=queue.worker.headers)
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "scope_forbidden"
    assert (await queue.get(f"/sessions/{created['id']}"))["status"] == "PENDING"


async def test_a_waiting_claim_is_woken_by_the_notification_of_a_new_session(
    queue: Queue,
) -> None:
    signal = queue.client.app.state.work_signal  # type: ignore[attr-defined]
    generation = signal.generation
    waiting = asyncio.create_task(queue.claim(wait=20))
    await asyncio.sleep(0)
    created = await queue.create()

    claims = await waiting

    assert [c["session"]["id"] for c in claims] == [created["id"]]
    # Woken by the NOTIFY of the commit (the rescuer, which also wakes waiters, runs
    # only hourly here).
    assert signal.generation > generation


async def test_a_draft_wakes_nobody_until_it_is_submitted(queue: Queue) -> None:
    signal = queue.client.app.state.work_signal  # type: ignore[attr-defined]
    draft = await queue.create(draft=True)
    generation = signal.generation
    await queue.client.post(f"/api/v1/sessions/{draft['id']}/submit", headers=queue.owner.headers)
    await signal.wait_past(generation, 20)
    assert signal.generation > generation


async def test_tenant_b_is_served_before_tenant_a_takes_50_more(
    queue: Queue, make_caller: object, work_connections: Connections
) -> None:
    """The fairness drill: A has 1,000 ready, B submits 10; B's 10 are claimed before
    A's next 50."""
    async with unit_of_work(work_connections.sessionmaker, work_connections.cache) as session:
        await session.execute(
            text(
                "INSERT INTO ai_sessions (id, project_id, user_id, ready_at) "
                "SELECT 'a' || lpad(g::text, 24, '0'), :project, :user, "
                "now() - make_interval(secs => 2000 - g) FROM generate_series(1, 1000) g"
            ),
            {"project": queue.project, "user": queue.owner.id},
        )
    first = await queue.claim(5)
    assert {c["session"]["user_id"] for c in first} == {queue.owner.id}
    other: Caller = await make_caller()  # type: ignore[operator]
    project = await queue.project_of(other)
    b = set()
    for _ in range(10):
        response = await queue.client.post(
            "/api/v1/sessions", json={"project_id": project}, headers=other.headers
        )
        b.add(response.json()["id"])

    taken_a = 0
    while b:
        claim = (await queue.claim())[0]["session"]
        if claim["user_id"] == other.id:
            b.discard(claim["id"])
        else:
            taken_a += 1
    assert taken_a < 50, taken_a
