"""Where the test suite finds its PostgreSQL and Redis, and the guard that keeps it local."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}

ADMIN_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def assert_local(url: str) -> None:
    """Refuse to run destructive tests against anything but a server on this machine."""
    host = urlsplit(url).hostname or ""
    if host not in LOCAL_HOSTS and not host.startswith("/"):
        raise RuntimeError(
            f"refusing to run the test suite against {host!r}: tests create and drop "
            "databases and flush Redis, so only local servers are allowed"
        )


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path=f"/{database}").geturl()


def create_database(prefix: str = "templator_test") -> tuple[str, str]:
    """Create an empty database; return (name, sqlalchemy url)."""
    assert_local(ADMIN_DATABASE_URL)
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(ADMIN_DATABASE_URL, name)
    return name, url.replace("postgresql://", "postgresql+psycopg://", 1)


def drop_database(name: str) -> None:
    """Drop a database made by `create_database`, closing its sessions first."""
    with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
