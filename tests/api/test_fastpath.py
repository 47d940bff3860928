"""The cached-read fast path answers exactly what the route would, and nothing else.

`TemplateReadFastPath` may answer a GET of a template only when the token record and the
template are both cached, or Redis is unavailable and one statement on the read pool finds
both, and the same checks as the route pass; every other request must fall through to the
route. A spy on the fast path records what it answered.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest

from templator.api.fastpath import READ_POOL_FALLBACKS, TemplateReadFastPath
from templator.connections import Connections
from templator.models import UserRole
from tests.api.conftest import Caller
from tests.support import servers
from tests.support.factories import hubspot_config

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """One entry per template GET that reached the fast path: True when it answered."""
    calls: list[bool] = []
    real = TemplateReadFastPath._answer

    async def spy(scope: Any, template_id: str) -> bytes | None:
        body = await real(scope, template_id)
        calls.append(body is not None)
        return body

    monkeypatch.setattr(TemplateReadFastPath, "_answer", staticmethod(spy))
    yield calls


async def _template(client: httpx.AsyncClient, owner: Caller, **extra: Any) -> str:
    project = (
        await client.post("/api/v1/projects", json={"name": "Site"}, headers=owner.headers)
    ).json()
    body = {
        "project_id": project["id"],
        "name": "Hero banner",
        "html_content": "<section>{{ module.title }}</section>",
        "hubspot_config": hubspot_config(),
        **extra,
    }
    created = await client.post("/api/v1/templates", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    tid: str = created.json()["id"]
    return tid


async def test_a_cached_read_is_answered_with_the_routes_exact_response(
    client: httpx.AsyncClient, make_caller: MakeCaller, answered: list[bool]
) -> None:
    owner = await make_caller()
    tid = await _template(client, owner, tags=["hero", "banner"])

    by_route = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)
    by_fast_path = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)

    assert answered == [False, True]  # the first read was a miss: the route loaded it
    assert by_route.status_code == by_fast_path.status_code == 200
    assert by_fast_path.content == by_route.content
    assert by_fast_path.headers["content-type"] == by_route.headers["content-type"]
    assert by_fast_path.headers["content-length"] == by_route.headers["content-length"]
    assert by_fast_path.headers["x-request-id"]
    assert "owner_id" not in by_fast_path.json()


async def test_another_users_token_falls_through_to_the_routes_404(
    client: httpx.AsyncClient, make_caller: MakeCaller, answered: list[bool]
) -> None:
    owner, stranger = await make_caller(), await make_caller()
    tid = await _template(client, owner)
    assert (await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)).status_code == 200
    await client.get("/api/v1/tokens", headers=stranger.headers)  # the stranger's record cached

    response = await client.get(f"/api/v1/templates/{tid}", headers=stranger.headers)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert answered[-1] is False


async def test_a_revoked_token_is_refused_although_everything_was_cached(
    client: httpx.AsyncClient, make_caller: MakeCaller, answered: list[bool]
) -> None:
    owner = await make_caller()
    tid = await _template(client, owner)
    for _ in range(2):
        assert (await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)).is_success
    assert answered[-1] is True
    token_id = (await client.get("/api/v1/tokens", headers=owner.headers)).json()[0]["id"]

    revoked = await client.delete(f"/api/v1/tokens/{token_id}", headers=owner.headers)
    assert revoked.status_code == 200, revoked.text
    response = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)

    assert response.status_code == 401
    assert answered[-1] is False


async def test_a_role_change_applies_to_the_next_cached_read(
    client: httpx.AsyncClient, make_caller: MakeCaller, answered: list[bool]
) -> None:
    """An ADMIN reads a USER's draft from the fast path; demoted, the next read is refused."""
    owner, admin, root = (
        await make_caller(),
        await make_caller(UserRole.ADMIN),
        await make_caller(UserRole.ADMIN),
    )
    tid = await _template(client, owner)
    for _ in range(2):
        assert (await client.get(f"/api/v1/templates/{tid}", headers=admin.headers)).is_success
    assert answered[-1] is True

    demoted = await client.put(
        f"/api/v1/users/{admin.id}/role", json={"role": "USER"}, headers=root.headers
    )
    assert demoted.status_code == 200, demoted.text
    response = await client.get(f"/api/v1/templates/{tid}", headers=admin.headers)

    assert response.status_code == 404
    assert answered[-1] is False


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer tpl_x_short"}],
    ids=["none", "other-scheme", "malformed"],
)
async def test_missing_or_malformed_credentials_get_the_routes_401(
    client: httpx.AsyncClient,
    make_caller: MakeCaller,
    answered: list[bool],
    headers: dict[str, str],
) -> None:
    owner = await make_caller()
    tid = await _template(client, owner)
    for _ in range(2):
        await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)

    response = await client.get(f"/api/v1/templates/{tid}", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert answered[-1] is False


@contextmanager
def _redis_down(conns: Connections) -> Iterator[None]:
    conns.cache._mark_down(ConnectionError("test: Redis marked unreachable"))
    try:
        yield
    finally:
        conns.cache._down_until = 0.0


@contextmanager
def _without_read_pool(conns: Connections) -> Iterator[None]:
    pool, conns.read_pool = conns.read_pool, None
    try:
        yield
    finally:
        conns.read_pool = pool


async def test_redis_down_a_read_is_answered_from_postgres_with_the_routes_exact_bytes(
    client: httpx.AsyncClient,
    make_caller: MakeCaller,
    answered: list[bool],
    store_connections: Connections,
) -> None:
    owner = await make_caller()
    tid = await _template(client, owner, tags=["hero"], description="Top of the page")
    with _redis_down(store_connections):
        with _without_read_pool(store_connections):
            by_route = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)
        bypasses = store_connections.cache.stats.bypasses
        by_fast_path = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)

    assert answered == [False, True]
    assert by_route.status_code == by_fast_path.status_code == 200
    assert by_fast_path.content == by_route.content
    assert by_fast_path.headers["content-type"] == by_route.headers["content-type"]
    assert by_fast_path.json()["id"] == tid and "owner_id" not in by_fast_path.json()
    assert store_connections.cache.stats.bypasses == bypasses + 2  # token and template
    cached = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)
    assert cached.content == by_route.content  # and the same as Redis serves afterwards


async def test_redis_down_refusals_fall_through_to_the_routes_answers(
    client: httpx.AsyncClient,
    make_caller: MakeCaller,
    answered: list[bool],
    store_connections: Connections,
) -> None:
    """Another user's template, an unknown template, an unknown or revoked token: the
    fast path answers none of them; the route gives each its 404 or 401."""
    owner, stranger = await make_caller(), await make_caller()
    tid = await _template(client, owner)
    token_id = (await client.get("/api/v1/tokens", headers=stranger.headers)).json()[0]["id"]
    unknown_token = {"Authorization": f"Bearer tpl_{'0' * 12}_{'x' * 43}"}
    with _redis_down(store_connections):
        stranger_read = await client.get(f"/api/v1/templates/{tid}", headers=stranger.headers)
        missing = await client.get(f"/api/v1/templates/{'z' * 25}", headers=owner.headers)
        unknown = await client.get(f"/api/v1/templates/{tid}", headers=unknown_token)
        revoked = await client.delete(f"/api/v1/tokens/{token_id}", headers=stranger.headers)
        assert revoked.status_code == 200, revoked.text
        after_revoke = await client.get(f"/api/v1/templates/{tid}", headers=stranger.headers)

    assert (stranger_read.status_code, missing.status_code) == (404, 404)
    assert (unknown.status_code, after_revoke.status_code) == (401, 401)
    assert after_revoke.json()["detail"] == "this API token has been revoked"
    assert answered == [False, False, False, False]


async def test_redis_down_a_killed_read_connection_costs_no_request(
    client: httpx.AsyncClient,
    make_caller: MakeCaller,
    answered: list[bool],
    store_connections: Connections,
) -> None:
    """The pool's connections are killed under it: the read in flight falls through to
    the route (200 all the same) and the next ones are answered again."""
    owner = await make_caller()
    tid = await _template(client, owner)
    with _redis_down(store_connections):
        assert (await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)).is_success
        # This pool's connections only (tests run in parallel, other pools share the
        # application_name); used one read at a time, asyncpg's LIFO queue keeps one.
        pool = store_connections.read_pool
        assert pool is not None
        pids = set()
        for _ in range(3):
            row = await pool.fetchrow("SELECT pg_backend_pid()")
            assert row is not None
            pids.add(row[0])
        with psycopg.connect(servers.ADMIN_DATABASE_URL, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                "FROM pg_stat_activity WHERE pid = ANY(%s)",
                (list(pids),),
            ).fetchone()
        assert killed is not None and killed[0] == len(pids)
        fallbacks = READ_POOL_FALLBACKS._value.get()
        statuses = [
            (await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 200]
    assert answered[0] is True and answered[-1] is True
    # A read that met the dead connection fell through, and was counted; or the pool had
    # already seen the socket close and reconnected.
    assert READ_POOL_FALLBACKS._value.get() - fallbacks == answered.count(False)


@pytest.mark.parametrize(
    ("times", "extra"),
    [
        (
            # a whole second (no fraction written) and a fraction with trailing zeros
            ("2026-03-01 10:00:00+00", "2026-03-01 10:00:00.000120+00"),
            {"quality_score": 0.0, "name": 'Héro ✓ \u2028 "quoted"', "tags": []},
        ),
        (
            ("2026-12-31 23:59:59.999999+00", "2027-01-01 00:00:00.1+00"),
            {"quality_score": 0.30000000000000004, "description": "x" * 2000, "tags": ["a", "b-2"]},
        ),
        (("1999-01-01 00:00:00.5+00", "1999-01-01 00:00:01+00"), {"css_content": "a{}"}),
    ],
)
async def test_redis_down_the_json_built_from_the_row_is_the_models_byte_for_byte(
    client: httpx.AsyncClient,
    make_caller: MakeCaller,
    answered: list[bool],
    store_connections: Connections,
    times: tuple[str, str],
    extra: dict[str, Any],
) -> None:
    """The fast path writes the read's JSON from the row itself (no pydantic model: issue
    #20's uncached read); the route writes it from `schemas.Template`. Times with and
    without a fraction, floats, no description, non-ASCII text and a nested config."""
    owner = await make_caller()
    config = hubspot_config()
    config["fields"].append(
        {
            "name": "spacing",
            "label": "Spacing ✓ ü",
            "type": "number",
            "default": 1.5,
            "min": 1e-7,
            "max": 12345678901234,
            "help_text": None,
        }
    )
    tid = await _template(client, owner, hubspot_config=config, **extra)
    pool = store_connections.read_pool
    assert pool is not None
    await pool.fetchrow(
        "UPDATE templates SET created_at = $2::text::timestamptz, "
        "updated_at = $3::text::timestamptz WHERE id = $1 RETURNING id",
        tid,
        *times,
    )
    with _redis_down(store_connections):
        with _without_read_pool(store_connections):
            by_route = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)
        by_fast_path = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)

    assert answered == [False, True]
    assert by_route.status_code == 200, by_route.text
    assert by_fast_path.content == by_route.content
    assert by_route.json()["created_at"].endswith("Z")
