"""Fixtures for backup tests: a migrated database, a Redis db, a bucket, a key, a repository."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import psycopg
import pytest
from botocore.config import Config as BotoConfig
from redis import Redis
from redis.exceptions import RedisError

from templator.backup.crypto import BackupKey, generate_key_file
from templator.backup.set_store import FolderRepository
from templator.config import Settings
from templator.connections import StoreUrls
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.migrations import runner
from tests.plugins.s3 import ACCESS_KEY, SECRET_KEY
from tests.support import servers


@dataclass
class Stores:
    """The three stores of one test, and how to reach them."""

    settings: Settings
    urls: StoreUrls
    name: str
    redis: Redis
    s3: object

    @property
    def dsn(self) -> str:
        """libpq URL of the test database."""
        return self.urls.database_url.replace("+psycopg", "")

    def sql(self, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Run one statement (committed) and return its rows."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return list(cur.fetchall()) if cur.description else []

    def put(self, key: str, body: bytes, **extra: object) -> None:
        """Upload an object."""
        self.s3.put_object(Bucket=self.settings.s3_bucket, Key=key, Body=body, **extra)  # type: ignore[attr-defined]

    def get(self, key: str) -> bytes:
        """Download an object."""
        return self.s3.get_object(Bucket=self.settings.s3_bucket, Key=key)["Body"].read()  # type: ignore[attr-defined, no-any-return]

    def keys(self) -> set[str]:
        """Every key of the bucket."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.settings.s3_bucket)  # type: ignore[attr-defined]
        return {item["Key"] for page in pages for item in page.get("Contents", [])}


def make_stores(
    redis_url: str,
    s3_server: SeaweedFS | None,
    var_dir: Path,
    *,
    database_url: str | None = None,
    **extra: object,
) -> Iterator[Stores]:
    """A migrated database (or `database_url`'s), a flushed Redis db, a fresh bucket."""
    if database_url is None:
        name, url = servers.create_database("templator_bak")
        runner.upgrade(url)
    else:
        url, name = database_url, ""
    bucket = f"bak-{uuid.uuid4().hex[:12]}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        redis_url=redis_url,
        cache_namespace="bak-test",
        s3_endpoint_url=s3_server.endpoint_url if s3_server else None,
        s3_access_key=ACCESS_KEY,
        s3_secret_key=SECRET_KEY,
        s3_bucket=bucket,
        var_dir=var_dir,
        backup_jobs=2,
        **extra,
    )
    s3 = None
    if s3_server is not None:
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_server.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=BotoConfig(s3={"addressing_style": "path"}),
        )
        s3.create_bucket(Bucket=bucket)
    client = Redis.from_url(redis_url)
    client.flushdb()
    stores = Stores(settings, StoreUrls(url, redis_url, settings.s3_endpoint_url), name, client, s3)
    try:
        yield stores
    finally:
        with contextlib.suppress(RedisError):  # a test may have stopped its own Redis
            client.flushdb()
        client.close()
        if s3 is not None:
            keys = stores.keys()
            for key in keys:
                s3.delete_object(Bucket=bucket, Key=key)
            s3.delete_bucket(Bucket=bucket)
        if name:
            servers.drop_database(name)


@pytest.fixture
def stores(redis_url: str, s3_server: SeaweedFS, tmp_path: Path) -> Iterator[Stores]:
    """All three stores, empty but migrated."""
    yield from make_stores(redis_url, s3_server, tmp_path / "var")


@pytest.fixture
def key(tmp_path: Path) -> BackupKey:
    """A fresh backup key (its file is tmp_path/backup.key)."""
    return generate_key_file(tmp_path / "backup.key")


@pytest.fixture
def repo(tmp_path: Path) -> FolderRepository:
    """An empty folder repository."""
    return FolderRepository(tmp_path / "repo")


def add_user(stores: Stores, email: str) -> str:
    """Insert a user; returns its id."""
    user_id = uuid.uuid4().hex[:25]
    stores.sql("INSERT INTO users (id, email) VALUES (%s, %s)", (user_id, email))
    return user_id


def emails(stores: Stores, database: str | None = None) -> set[str]:
    """Every user email."""
    dsn = stores.dsn if database is None else stores.dsn.rsplit("/", 1)[0] + "/" + database
    with psycopg.connect(dsn) as conn:
        return {str(row[0]) for row in conn.execute("SELECT email FROM users")}


def add_object(stores: Stores, key: str, body: bytes) -> None:
    """Upload an object and record it in stored_objects, as the application does."""
    stores.put(key, body, ContentType="image/png", Metadata={"origin": "test"})
    stores.sql(
        "INSERT INTO stored_objects (id, key, kind, size, content_type) "
        "VALUES (%s, %s, 'design', %s, 'image/png')",
        (uuid.uuid4().hex[:25], key, len(body)),
    )
