"""Redis: the namespace's keys as DUMP payloads, read and written in pipelines.

SCAN (never KEYS) hands out batches; each batch is one server-side script doing PTTL +
DUMP for every key of the batch (a restore: RESTORE … REPLACE), so the cost is a round
trip — and one command for the client to build and parse — per batch, not per key. A
server that refuses scripts (ACL, managed service) gets the same batches as pipelines.
A restore is a mirror of the namespace: its keys that are not in the set are removed
first; keys outside the namespace are never touched.

Record format (inside the encrypted stream): key length, payload length (u32 each),
remaining TTL in ms (i64, -1 = none), key bytes, payload bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator
from typing import Any

from redis import Redis
from redis.exceptions import RedisError, ResponseError

from templator.backup.errors import BackupCorrupt, BackupStoreUnreachable

BATCH = 2000
_HEAD = struct.Struct(">IIq")
Advance = Callable[[int], None]
_MASK = (1 << 64) - 1


_DUMP_BATCH = """
local out = {}
for i, key in ipairs(KEYS) do
  out[2 * i - 1] = redis.call('PTTL', key)
  out[2 * i] = redis.call('DUMP', key) or false
end
return out
"""
_RESTORE_BATCH = """
for i, key in ipairs(KEYS) do
  redis.call('RESTORE', key, ARGV[2 * i - 1], ARGV[2 * i], 'REPLACE')
end
return #KEYS
"""


def _scripts_refused(exc: ResponseError) -> bool:
    text = str(exc).lower()
    return any(m in text for m in ("noperm", "unknown command", "not allowed", "disabled"))


def _dump_batch(conn: Redis, keys: list[bytes]) -> list[Any]:
    """[pttl, payload, pttl, payload, …] for `keys`: one script call, else a pipeline."""
    try:
        return list(conn.eval(_DUMP_BATCH, len(keys), *keys))
    except ResponseError as exc:
        if not _scripts_refused(exc):
            raise
        with conn.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.pttl(key)
                pipe.dump(key)
            return list(pipe.execute())


def _restore_batch(conn: Redis, batch: list[tuple[bytes, int, bytes]]) -> None:
    args: list[Any] = []
    for _, ttl, payload in batch:
        args += [max(ttl, 0), payload]
    try:
        conn.eval(_RESTORE_BATCH, len(batch), *[k for k, _, _ in batch], *args)
    except ResponseError as exc:
        if not _scripts_refused(exc):
            raise
        with conn.pipeline(transaction=False) as pipe:
            for key, ttl, payload in batch:
                pipe.restore(key, max(ttl, 0), payload, replace=True)
            pipe.execute()


def client(url: str) -> Redis:
    """A client named for the backup role."""
    return Redis.from_url(
        url, socket_timeout=30, socket_connect_timeout=5, client_name="templator-backup"
    )


def ping(conn: Redis) -> None:
    """Raise BackupStoreUnreachable when Redis does not answer."""
    try:
        conn.ping()
    except RedisError as exc:
        raise BackupStoreUnreachable(f"Redis is unreachable: {exc}") from None


def digest_one(key: bytes, payload: bytes) -> int:
    return int.from_bytes(hashlib.sha256(key + b"\0" + payload).digest()[:8], "big")


def _batches(conn: Redis, pattern: str) -> Iterator[list[bytes]]:
    cursor = 0
    while True:
        cursor, keys = conn.scan(cursor=cursor, match=pattern, count=BATCH)
        if keys:
            yield [k if isinstance(k, bytes) else k.encode() for k in keys]
        if cursor == 0:
            return


def dump(conn: Redis, out: Any, *, pattern: str, advance: Advance) -> dict[str, Any]:
    """Write every key under `pattern` to `out` (a writer); returns count and digest."""
    count = 0
    digest = 0
    payload_bytes = 0
    for keys in _batches(conn, pattern):
        replies = _dump_batch(conn, keys)
        for index, key in enumerate(keys):
            ttl, payload = replies[2 * index], replies[2 * index + 1]
            if not payload or ttl == -2:  # expired between SCAN and DUMP
                continue
            out.write(_HEAD.pack(len(key), len(payload), int(ttl)) + key + payload)
            digest = (digest + digest_one(key, payload)) & _MASK
            payload_bytes += len(payload)
            count += 1
        advance(len(keys))
    return {"keys": count, "pattern": pattern, "digest": str(digest), "bytes": payload_bytes}


def records(chunks: Iterator[bytes], *, what: str) -> Iterator[tuple[bytes, int, bytes]]:
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        offset = 0
        while len(buffer) - offset >= _HEAD.size:
            klen, plen, ttl = _HEAD.unpack_from(buffer, offset)
            end = offset + _HEAD.size + klen + plen
            if end > len(buffer):
                break
            start = offset + _HEAD.size
            yield bytes(buffer[start : start + klen]), ttl, bytes(buffer[start + klen : end])
            offset = end
        del buffer[:offset]
    if buffer:
        raise BackupCorrupt(f"{what} ends inside a record (truncated)")


def clear(conn: Redis, pattern: str) -> int:
    """UNLINK every key under `pattern`."""
    removed = 0
    for keys in _batches(conn, pattern):
        conn.unlink(*keys)
        removed += len(keys)
    return removed


def restore(
    conn: Redis, chunks: Iterator[bytes], *, pattern: str, what: str, advance: Advance
) -> int:
    """Make the namespace equal to the set: clear it, then RESTORE every key with its TTL."""
    clear(conn, pattern)
    restored = 0
    batch: list[tuple[bytes, int, bytes]] = []
    for record in records(chunks, what=what):
        batch.append(record)
        if len(batch) == BATCH:
            _restore_batch(conn, batch)
            advance(len(batch))
            restored += len(batch)
            batch = []
    if batch:
        _restore_batch(conn, batch)
        advance(len(batch))
    return restored + len(batch)


def digest_of(conn: Redis, pattern: str) -> tuple[int, str]:
    """Key count and content digest of the namespace now (for drills)."""
    count = 0
    digest = 0
    for keys in _batches(conn, pattern):
        with conn.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.dump(key)
            payloads = pipe.execute()
        for key, payload in zip(keys, payloads, strict=True):
            if payload is not None:
                digest = (digest + digest_one(key, payload)) & _MASK
                count += 1
    return count, str(digest)
