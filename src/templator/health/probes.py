"""One-shot probes of the three stores, for `templator health`.

The API's readiness (`Connections.health`) probes through the clients it already holds
(the SQLAlchemy pool, the pooled Redis client, boto3). A command that only asks "is each
store up?" opens one connection with the lightest client instead — asyncpg, redis-py,
botocore without boto3 — imported inside each probe, so the command starts without
SQLAlchemy or boto3. Each probe checks what readiness checks: PostgreSQL answers a query,
Redis answers PING (and reports its memory), the bucket answers HEAD.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

from templator.config import ProcessRole, Settings
from templator.health.checks import Check, Probe, Role
from templator.store_urls import StoreUrls, with_store_keys


def describe_postgres(url: str) -> str:
    """host:port/database of a PostgreSQL URL, without credentials."""
    parts = urlsplit(url)
    host = parts.hostname or parse_qs(parts.query).get("host", ["local socket"])[0]
    return f"{host}:{parts.port or 5432}/{parts.path.lstrip('/')}"


def describe_redis(url: str) -> str:
    """host:port/db of a Redis URL, without credentials (as `templator.redis` shows it)."""
    return url.split("://", 1)[-1].rsplit("@", 1)[-1] or url


def postgres_probe(settings: Settings, url: str, *, role: ProcessRole) -> Probe:
    """Connect, ask the server's version, disconnect."""

    async def probe() -> dict[str, Any]:
        import asyncpg

        dsn = "postgresql://" + url.split("://", 1)[-1]
        conn = await asyncpg.connect(
            dsn,
            timeout=settings.db_connect_timeout,
            server_settings={"application_name": f"templator-{role.value}"},
        )
        try:
            return {"server_version": await conn.fetchval("SHOW server_version")}
        finally:
            await conn.close()

    return probe


def redis_probe(settings: Settings, url: str, *, role: ProcessRole) -> Probe:
    """PING, then the memory figures readiness reports."""

    async def probe() -> dict[str, Any]:
        from redis.asyncio import Redis

        client = Redis.from_url(
            url,
            socket_timeout=settings.redis_socket_timeout,
            socket_connect_timeout=settings.redis_connect_timeout,
            client_name=f"templator-{role.value}",
        )
        try:
            await client.ping()
            info = await client.info("memory")
        finally:
            await client.aclose()
        return {
            "used_memory": info.get("used_memory"),
            "maxmemory": info.get("maxmemory"),
            "maxmemory_policy": info.get("maxmemory_policy"),
        }

    return probe


def object_store_probe(settings: Settings, endpoint_url: str) -> Probe:
    """HEAD the bucket with a botocore client (no boto3, no transfer manager)."""

    def head() -> dict[str, Any]:
        import botocore.session
        from botocore.config import Config

        client: Any = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=settings.s3_region,
            **settings.s3_static_keys(),  # type: ignore[arg-type]
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": settings.s3_addressing_style},
                connect_timeout=settings.s3_connect_timeout,
                read_timeout=settings.s3_read_timeout,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )
        try:
            client.head_bucket(Bucket=settings.s3_bucket)
        finally:
            client.close()
        return {
            "bucket": settings.s3_bucket,
            "public_endpoint": settings.s3_public_endpoint_url or endpoint_url,
        }

    async def probe() -> dict[str, Any]:
        return await asyncio.to_thread(head)

    return probe


def schema_probe(settings: Settings, url: str, *, role: ProcessRole) -> Probe:
    """The database's Alembic revision against the scripts' head, as readiness checks it."""

    async def probe() -> dict[str, Any]:
        import asyncpg

        from templator.health.revisions import SchemaBehind, script_revisions

        head, known = script_revisions()
        dsn = "postgresql://" + url.split("://", 1)[-1]
        conn = await asyncpg.connect(
            dsn,
            timeout=settings.db_connect_timeout,
            server_settings={"application_name": f"templator-{role.value}"},
        )
        try:
            try:
                rows = await conn.fetch("SELECT version_num FROM alembic_version")
            except asyncpg.UndefinedTableError:
                rows = []
        finally:
            await conn.close()
        current = sorted(str(row[0]) for row in rows)
        if head is not None and head not in current:
            if not current or all(rev in known for rev in current):
                raise SchemaBehind(
                    f"database at revision {', '.join(current) or 'none (never migrated)'}, "
                    f"the code expects {head}: run `templator db migrate`"
                )
            return {"revision": current, "head": head, "ahead": True}
        return {"revision": current, "head": head}

    return probe


def store_probes(
    settings: Settings, urls: StoreUrls, *, role: ProcessRole = ProcessRole.CLI
) -> list[Check]:
    """(name, target, probe, role) of every configured store, as `run_checks` takes them,
    in the order and with the roles of the API's readiness (`Connections.health_probes`)."""
    probes: list[Check] = [
        (
            "postgres",
            describe_postgres(urls.database_url),
            postgres_probe(settings, urls.database_url, role=role),
            Role.REQUIRED,
        ),
        (
            "redis",
            describe_redis(urls.redis_url),
            redis_probe(settings, urls.redis_url, role=role),
            Role.CACHE,
        ),
    ]
    if urls.s3_endpoint_url:
        probes.append(
            (
                "object_store",
                urls.s3_endpoint_url,
                object_store_probe(with_store_keys(settings, urls), urls.s3_endpoint_url),
                Role.UPLOADS,
            )
        )
    probes.append(
        (
            "schema",
            "alembic_version",
            schema_probe(settings, urls.database_url, role=role),
            Role.REQUIRED,
        )
    )
    return probes
