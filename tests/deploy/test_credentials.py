"""Credentials with any character, over TLS, through the real Settings → URL → server path,
and the least-privilege roles of the compose file's init script."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text

from templator.config import PROJECT_ROOT, ProcessRole, Settings
from templator.connections import Connections
from templator.migrations import runner
from tests.deploy.tls_servers import SUPERUSER, TlsPostgres, make_certs, tls_postgres, tls_redis

# What `openssl rand -base64` and people produce: '/', '+', '=', '@', ':', '%', '#', '?'.
AWKWARD = "p@ss/w:rd%2F#?+= x"
INIT_ROLES = PROJECT_ROOT / "deploy" / "postgres" / "initdb" / "10-roles.sh"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA and server certificates from scripts/deploy-certs.sh."""
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def pg(certs: Path) -> Iterator[TlsPostgres]:
    """PostgreSQL with scram-sha-256 and hostssl only."""
    with tls_postgres(certs) as server:
        yield server


def _settings(certs: Path, pg: TlsPostgres, **parts: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        db_host="localhost",
        db_port=pg.port,
        db_sslmode="verify-full",
        db_sslrootcert=certs / "ca.crt",
        db_read_pool_size=1,
        db_connect_timeout=20,  # a TLS handshake on a loaded 2-core host
        **parts,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def roles(pg: TlsPostgres, certs: Path) -> Iterator[dict[str, str]]:
    """A database set up by deploy/postgres/initdb/10-roles.sh, as the image runs it."""
    suffix = uuid.uuid4().hex[:6]
    names = {
        "POSTGRES_USER": SUPERUSER,
        "POSTGRES_DB": f"templator_{suffix}",
        "DB_USER": f"app_{suffix}",
        "DB_PASSWORD": AWKWARD,
        "DB_MIGRATION_USER": f"migrator_{suffix}",
        "DB_MIGRATION_PASSWORD": "m/" + AWKWARD,
    }
    with psycopg.connect(pg.admin_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names["POSTGRES_DB"])))
    env = {
        **os.environ,
        **names,
        "PGHOST": "localhost",
        "PGPORT": str(pg.port),
        "PGPASSWORD": "super/secret@1",
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": str(certs / "ca.crt"),
    }
    subprocess.run(["sh", str(INIT_ROLES)], env=env, check=True, capture_output=True)
    yield names


def test_awkward_database_password_reaches_postgres_over_verified_tls(
    pg: TlsPostgres, certs: Path, roles: dict[str, str]
) -> None:
    """DB_PASSWORD with '@', '/', ':', '%' … is quoted into the URL the engine uses."""
    conf = _settings(
        certs,
        pg,
        db_name=roles["POSTGRES_DB"],
        db_user=roles["DB_MIGRATION_USER"],
        db_password=roles["DB_MIGRATION_PASSWORD"],
    )
    assert conf.database_url is not None
    runner.upgrade(conf.database_url)  # the migrate service's path: Alembic, sync psycopg
    assert runner.current_revision(conf.database_url) == runner.head_revision()


async def test_app_role_connects_with_tls_and_owns_nothing(
    pg: TlsPostgres, certs: Path, roles: dict[str, str]
) -> None:
    """The API's role reads and writes rows through both pools, and may not change schema."""
    runner.upgrade(
        _settings(
            certs,
            pg,
            db_name=roles["POSTGRES_DB"],
            db_user=roles["DB_MIGRATION_USER"],
            db_password=roles["DB_MIGRATION_PASSWORD"],
        ).database_url
        or ""
    )
    conf = _settings(
        certs,
        pg,
        db_name=roles["POSTGRES_DB"],
        db_user=roles["DB_USER"],
        db_password=roles["DB_PASSWORD"],
        redis_url="redis://127.0.0.1:1/0",
    )
    assert conf.database_url is not None
    conns = Connections.from_settings(conf, role=ProcessRole.TEST)
    try:
        async with conns.engine.connect() as conn:
            ssl = (
                await conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
            ).scalar_one()
            assert ssl is True
            await conn.execute(
                text(
                    "INSERT INTO users (id, email, name, role) "
                    "VALUES ('u1', 'a@example.com', 'A', 'USER')"
                )
            )
            owned = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_class c JOIN pg_roles r "
                        "ON r.oid = c.relowner WHERE r.rolname = current_user"
                    )
                )
            ).scalar_one()
            assert owned == 0
            with pytest.raises(Exception, match="permission denied"):
                await conn.execute(text("CREATE TABLE intruder (id int)"))
            await conn.rollback()
            with pytest.raises(Exception, match="must be owner"):
                await conn.execute(text("DROP TABLE users"))
        await conns.open_read_pool()
        assert conns.read_pool is not None
        row = await conns.read_pool.fetchrow("SELECT current_user, 1")
        assert row is not None and row[0] == roles["DB_USER"]
    finally:
        await conns.close()


async def test_awkward_redis_password_reaches_redis_over_verified_tls(certs: Path) -> None:
    """REDIS_PASSWORD with '/' (38 % of base64 secrets) no longer breaks the URL."""
    password = "a/b+c/" + AWKWARD
    with tls_redis(certs, password=password) as port:
        conf = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url="postgresql://unused@127.0.0.1:1/x",
            redis_host="localhost",
            redis_port=port,
            redis_password=password,
            redis_tls=True,
            redis_ca_certs=certs / "ca.crt",
            redis_connect_timeout=20.0,  # a TLS handshake on a loaded 2-core host
            redis_socket_timeout=20.0,
        )
        conns = Connections.from_settings(conf, role=ProcessRole.TEST)
        try:
            await conns.verify_redis()
            await conns.redis.set("deploy-test", "1")
            assert await conns.redis.get("deploy-test") == b"1"
        finally:
            await conns.close()


def test_settings_build_urls_only_from_parts_when_no_url_is_given() -> None:
    """DATABASE_URL / REDIS_URL, when set, win over the parts."""
    conf = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="postgresql://x@h1/db",
        db_host="h2",
        redis_url="redis://h3:6379/0",
        redis_host="h4",
    )
    assert conf.database_url == "postgresql+psycopg://x@h1/db"
    assert conf.redis_url == "redis://h3:6379/0"
