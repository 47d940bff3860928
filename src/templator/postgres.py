"""The async SQLAlchemy engine on psycopg 3, and how sessions are made from it."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from templator.config import ProcessRole, Settings


def describe_url(url: str) -> str:
    """host:port/database of a URL, without credentials, for messages."""
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "local socket"
    return f"{host}:{parsed.port or 5432}/{parsed.database or ''}"


def create_engine(settings: Settings, *, url: str, role: ProcessRole) -> AsyncEngine:
    """Build the pooled engine: pre-ping, recycle, short connect timeout, named connections."""
    options = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        echo=settings.db_echo,
        connect_args={
            "connect_timeout": settings.db_connect_timeout,
            "application_name": f"templator-{role.value}",
            "options": options,
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (no hidden reloads in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
