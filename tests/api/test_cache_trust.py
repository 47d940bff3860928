"""Nothing written into Redis can grant or widen access (issue #10, finding 1).

Each test plays an attacker who can write to Redis: it writes, alters or replays the
cached token record of a bearer token, then asks the API. The database stays the truth:
a forged record is 401, an altered or replayed one gives no more than the user's real
role, and every refusal is counted.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from templator.auth.cache import record_key
from templator.cache import CACHE_REFUSED
from templator.connections import Connections
from templator.kit.ids import new_id
from templator.models import UserRole
from tests.api.conftest import Caller, new_template

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]


def _refused() -> float:
    return sum(
        CACHE_REFUSED.labels(reason)._value.get()  # type: ignore[attr-defined]
        for reason in ("proof", "expired")
    )


def _forged_token() -> tuple[str, str, str]:
    """(token, prefix, secret) of a well-formed token no database row knows."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32).replace("_", "-")
    return f"tpl_{prefix}_{secret}", prefix, secret


async def test_a_forged_admin_record_without_a_database_row_is_401(
    client: httpx.AsyncClient, store_connections: Connections
) -> None:
    cache = store_connections.cache
    token, prefix, secret = _forged_token()
    forged = {
        "user_id": new_id(),
        "role": "ADMIN",
        "hash": hashlib.sha256(secret.encode()).hexdigest(),
        "expires": (datetime.now(UTC) + timedelta(days=1)).timestamp(),
        "revoked": False,
    }
    await cache.redis.set(record_key(cache, prefix), orjson.dumps(forged), ex=60)
    before = _refused()

    answer = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})

    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert _refused() > before


async def test_a_forged_admin_record_cannot_read_a_cached_template_through_the_fast_path(
    client: httpx.AsyncClient, store_connections: Connections, make_caller: MakeCaller
) -> None:
    cache = store_connections.cache
    owner = await make_caller()
    tid = await new_template(client, owner, html="<p>secret</p>")
    assert (await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)).status_code == 200
    token, prefix, secret = _forged_token()
    forged = {
        "user_id": new_id(),
        "role": "ADMIN",
        "hash": hashlib.sha256(secret.encode()).hexdigest(),
        "expires": None,
        "revoked": False,
    }
    await cache.redis.set(record_key(cache, prefix), orjson.dumps(forged), ex=60)

    answer = await client.get(
        f"/api/v1/templates/{tid}", headers={"Authorization": f"Bearer {token}"}
    )

    assert answer.status_code == 401, answer.text
    assert "secret" not in answer.text


async def test_altering_the_role_of_a_real_cached_record_does_not_widen_access(
    client: httpx.AsyncClient, store_connections: Connections, make_caller: MakeCaller
) -> None:
    cache = store_connections.cache
    user = await make_caller(UserRole.USER)
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    key = record_key(cache, user.token.split("_")[1])
    stored = await cache.redis.get(key)
    assert stored is not None and b'"USER"' in stored  # the record is cached
    await cache.redis.set(key, stored.replace(b'"USER"', b'"ADMIN"'), keepttl=True)
    before = _refused()

    listed = await client.get("/api/v1/users", headers=user.headers)

    assert listed.status_code == 403, listed.text  # the database says USER
    assert _refused() > before
    me = await client.get("/api/v1/users/me", headers=user.headers)
    assert me.json()["role"] == "USER"


async def test_replaying_an_old_admin_record_after_a_downgrade_does_not_widen_access(
    client: httpx.AsyncClient, store_connections: Connections, make_caller: MakeCaller
) -> None:
    cache = store_connections.cache
    admin = await make_caller(UserRole.ADMIN)
    demoted = await make_caller(UserRole.ADMIN)
    assert (await client.get("/api/v1/users", headers=demoted.headers)).status_code == 200
    key = record_key(cache, demoted.token.split("_")[1])
    old = await cache.redis.get(key)
    assert old is not None and b'"ADMIN"' in old
    changed = await client.put(
        f"/api/v1/users/{demoted.id}/role", json={"role": "USER"}, headers=admin.headers
    )
    assert changed.status_code == 200, changed.text
    await cache.redis.set(key, old, ex=60)  # the replay
    before = _refused()

    listed = await client.get("/api/v1/users", headers=demoted.headers)

    assert listed.status_code == 403, listed.text
    assert _refused() > before
