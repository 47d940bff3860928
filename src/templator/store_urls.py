"""Where the stores are: the configured URLs, else those of a running `templator up`.

Kept apart from `connections.py` (which builds the clients) so that a command can find
its stores without importing SQLAlchemy, redis-py and boto3 (cli/health.py). The local
stack is development tooling (`templator.dev.localstack`): its URLs come in through a
`StackFinder` the CLI hands over, never through an import from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from templator.config import Settings
from templator.exceptions import ServiceUnavailable


@dataclass(frozen=True, slots=True)
class StoreUrls:
    """Where the stores are."""

    database_url: str
    redis_url: str
    s3_endpoint_url: str | None
    database_replica_url: str | None = None
    cache_signing_key_file: Path | None = None
    admin_database_url: str | None = None
    """The schema owner's URL (migrations, seed); None = database_url."""
    s3_keys: tuple[str, str] | None = None
    """The local stack's S3 access key and secret when its object store is the one used
    (generated per stack); None = S3_ACCESS_KEY and S3_SECRET_KEY."""


class RunningStack(Protocol):
    """The stores a running local stack recorded (`templator.dev.localstack.StackUrls`)."""

    @property
    def database_url(self) -> str: ...
    @property
    def redis_url(self) -> str: ...
    @property
    def s3_endpoint_url(self) -> str: ...
    @property
    def cache_signing_key_file(self) -> Path | None: ...
    @property
    def admin_database_url(self) -> str | None: ...
    @property
    def s3_keys(self) -> tuple[str, str] | None: ...


StackFinder = Callable[[Path], RunningStack | None]
"""The running local stack under a VAR_DIR, or None: `templator.dev.localstack`'s
`discover_running_stack`, passed in by the CLI (`cli/stack.py`)."""


class StackNotConfigured(ServiceUnavailable):
    """No store URL is set and no local stack is running."""

    code = "stack_not_configured"


def resolve_urls(settings: Settings, *, find_stack: StackFinder | None = None) -> StoreUrls:
    """Configured URLs, else those of the running `templator up` stack `find_stack` finds,
    else a clear error.

    The stack fills in only what is unset, and only when PostgreSQL or Redis is unset:
    with both URLs configured nothing local is used (and no S3 URL means no object store).
    """
    database_url, redis_url, s3_url = (
        settings.database_url,
        settings.redis_url,
        settings.s3_endpoint_url,
    )
    key_file: Path | None = None
    s3_keys: tuple[str, str] | None = None
    admin_url = settings.database_admin_url
    if (database_url is None or redis_url is None) and find_stack is not None:
        stack = find_stack(settings.var_dir)
        if stack is not None:
            database_url = database_url or stack.database_url
            redis_url = redis_url or stack.redis_url
            if s3_url is None:
                s3_url, s3_keys = stack.s3_endpoint_url, stack.s3_keys
            key_file = stack.cache_signing_key_file
            if settings.database_url is None:
                admin_url = admin_url or stack.admin_database_url
    missing = [
        name
        for name, value in (("DATABASE_URL", database_url), ("REDIS_URL", redis_url))
        if value is None
    ]
    if missing or database_url is None or redis_url is None:
        raise _not_configured(settings, missing)
    return StoreUrls(
        database_url,
        redis_url,
        s3_url,
        database_replica_url=settings.database_replica_url,
        cache_signing_key_file=key_file,
        admin_database_url=admin_url,
        s3_keys=s3_keys,
    )


def with_store_keys(settings: Settings, urls: StoreUrls) -> Settings:
    """`settings` with the local stack's S3 keys when its object store is the one used."""
    if urls.s3_keys is None:
        return settings
    access_key, secret_key = urls.s3_keys
    return settings.model_copy(
        update={"s3_access_key": access_key, "s3_secret_key": SecretStr(secret_key)}
    )


def resolve_database_url(
    settings: Settings, *, admin: bool = False, find_stack: StackFinder | None = None
) -> str:
    """DATABASE_URL, else the PostgreSQL of the running stack `find_stack` finds, else a
    clear error; with `admin`, the schema owner's URL (DATABASE_ADMIN_URL, or the
    stack's) when there is one.

    For the commands that need PostgreSQL alone (migrations, seeding, log retention):
    they run whether or not Redis is configured, reachable or running.
    """
    if admin and settings.database_admin_url is not None:
        return settings.database_admin_url
    if settings.database_url is not None:
        return settings.database_url
    stack = find_stack(settings.var_dir) if find_stack is not None else None
    if stack is None:
        raise _not_configured(settings, ["DATABASE_URL"])
    if admin and stack.admin_database_url:
        return stack.admin_database_url
    return stack.database_url


def _not_configured(settings: Settings, missing: list[str]) -> StackNotConfigured:
    return StackNotConfigured(
        f"{' and '.join(missing)} not set and no local stack is running under "
        f"{settings.var_dir}: start one with `templator up`, or set {missing[0]} "
        "(see .env.example)."
    )
