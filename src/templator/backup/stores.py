"""Each store's part of a backup: dump and restore."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
from redis import Redis

from templator.backup.errors import BackupCorrupt
from templator.backup.tools import find_tool, libpq_env, run_tool

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Advance = Callable[[int], None]


def server_major(url: str) -> int:
    """The PostgreSQL server's major version."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        return conn.info.server_version // 10000


def dump_postgres(url: str, dest: Path) -> dict[str, Any]:
    """pg_dump in custom format (compressed, restorable table by table)."""
    major = server_major(url)
    tool = find_tool("pg_dump", server_major=major)
    run_tool(
        [tool, "--format=custom", "--no-owner", "--no-privileges", "--file", str(dest)],
        env=libpq_env(url),
        what="pg_dump",
    )
    return {"file": dest.name, "server_major": major, "tool": tool}


def restore_postgres(url: str, source: Path) -> None:
    """pg_restore in one transaction: the database gets the whole backup or stays as it was."""
    tool = find_tool("pg_restore", server_major=server_major(url))
    env = libpq_env(url, app="templator-restore")
    run_tool(
        [
            tool,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            "--dbname",
            env["PGDATABASE"],
            str(source),
        ],
        env=env,
        what="pg_restore",
    )


def dump_redis(client: Redis, dest: Path, *, pattern: str, advance: Advance) -> dict[str, Any]:
    """Each key under `pattern` as a JSON line: key, TTL, DUMP payload (SCAN, never KEYS)."""
    count = 0
    with dest.open("wb") as out:
        for key in client.scan_iter(match=pattern, count=1000):
            with client.pipeline(transaction=False) as pipe:
                pipe.pttl(key)
                pipe.dump(key)
                ttl, payload = pipe.execute()
            if payload is None:  # expired between SCAN and DUMP
                continue
            line = {
                "k": base64.b64encode(key).decode(),
                "ttl": ttl,
                "v": base64.b64encode(payload).decode(),
            }
            out.write(orjson.dumps(line) + b"\n")
            count += 1
            advance(1)
    return {"file": dest.name, "keys": count, "pattern": pattern}


def restore_redis(client: Redis, source: Path, *, advance: Advance) -> int:
    """RESTORE every key with its remaining TTL, replacing what is there."""
    restored = 0
    with source.open("rb") as handle, client.pipeline(transaction=False) as pipe:
        for raw in handle:
            line = orjson.loads(raw)
            ttl = int(line["ttl"])
            pipe.restore(
                base64.b64decode(line["k"]),
                max(ttl, 0),
                base64.b64decode(line["v"]),
                replace=True,
            )
            restored += 1
            if restored % 500 == 0:
                pipe.execute()
                advance(500)
        pipe.execute()
        advance(restored % 500)
    return restored


def _local_path(root: Path, key: str) -> Path:
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or ".." in parts:
        raise BackupCorrupt(f"object key {key!r} cannot be stored safely in a backup")
    return root.joinpath(*parts)


def dump_objects(s3: S3Client, bucket: str, dest: Path, *, advance: Advance) -> dict[str, Any]:
    """Copy every object of `bucket` into `dest`, with its headers, in a JSON index."""
    index: list[dict[str, Any]] = []
    total = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            target = _local_path(dest, key)
            target.parent.mkdir(parents=True, exist_ok=True)
            head = s3.head_object(Bucket=bucket, Key=key)
            s3.download_file(bucket, key, str(target))
            index.append(
                {
                    "key": key,
                    "size": item["Size"],
                    "content_type": head.get("ContentType"),
                    "content_disposition": head.get("ContentDisposition"),
                    "metadata": head.get("Metadata", {}),
                }
            )
            total += item["Size"]
            advance(1)
    (dest / "index.json").write_bytes(orjson.dumps(index, option=orjson.OPT_INDENT_2))
    return {"bucket": bucket, "objects": len(index), "bytes": total}


def restore_objects(s3: S3Client, bucket: str, source: Path, *, advance: Advance) -> int:
    """Upload every object of the backup back into `bucket`, headers included."""
    index = orjson.loads((source / "index.json").read_bytes())
    for entry in index:
        extra: dict[str, Any] = {"Metadata": entry.get("metadata") or {}}
        if entry.get("content_type"):
            extra["ContentType"] = entry["content_type"]
        if entry.get("content_disposition"):
            extra["ContentDisposition"] = entry["content_disposition"]
        s3.upload_file(
            str(_local_path(source, entry["key"])), bucket, entry["key"], ExtraArgs=extra
        )
        advance(1)
    return len(index)
