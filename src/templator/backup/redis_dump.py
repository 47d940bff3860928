"""Redis: the namespace's keys as DUMP payloads, read and written in pipelines.

SCAN (never KEYS) hands out batches; each batch is one server-side script doing PTTL +
DUMP for every key of the batch, so the cost is a round trip — and one command for the
client to build and parse — per batch, not per key; the same round trip carries the SCAN
of the next batch. A restore hands the set's records to a script a megabyte at a time, as
they are: the server parses them and runs RESTORE … REPLACE, the client does nothing per
key. A server that refuses scripts (ACL, managed service) gets the same batches as
pipelines. A restore is a mirror of the namespace: its keys that are not in the set are removed
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
from redis.exceptions import NoPermissionError, RedisError, ResponseError

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
# The records of the set's stream as they are, parsed by the server: the client does no
# per-key work on a restore. Returns {records restored, bytes consumed}; a record cut by
# the end of the blob waits for the next call.
_RESTORE_RECORDS = """
local blob = ARGV[1]
local size = #blob
local pos = 1
local count = 0
while pos + 15 <= size do
  local klen, plen, ttl, start = struct.unpack('>I4I4i8', blob, pos)
  local stop = start + klen + plen
  if stop - 1 > size then break end
  if ttl < 0 then ttl = 0 end
  redis.call('RESTORE', string.sub(blob, start, start + klen - 1), string.format('%.0f', ttl),
             string.sub(blob, start + klen, stop - 1), 'REPLACE')
  count = count + 1
  pos = stop
end
return {count, pos - 1}
"""
# One SCAN step and the UNLINK of what it found, in the server: {next cursor, removed}.
_CLEAR_BATCH = """
local reply = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local keys = reply[2]
for i = 1, #keys, 1000 do
  redis.call('UNLINK', unpack(keys, i, math.min(i + 999, #keys)))
end
return {reply[1], #keys}
"""
CLEAR_BATCH = 10_000
RESTORE_BYTES = 1 << 20  # per script call: a few thousand cache keys, a few ms of Redis


def _scripts_refused(exc: ResponseError) -> bool:
    """An ACL without @scripting (NOPERM, its prefix parsed away by redis-py), a renamed
    or disabled EVAL."""
    if isinstance(exc, NoPermissionError):
        return True
    text = str(exc).lower()
    markers = ("noperm", "no permissions", "unknown command", "not allowed", "disabled")
    return any(m in text for m in markers)


def _queue_dump(pipe: Any, keys: list[bytes], scripts: bool) -> None:
    if scripts:
        pipe.eval(_DUMP_BATCH, len(keys), *keys)
        return
    for key in keys:
        pipe.pttl(key)
        pipe.dump(key)


def _dump_round(
    conn: Redis, keys: list[bytes], scan: tuple[int, str] | None, scripts: bool
) -> tuple[list[Any], tuple[int, list[Any]] | None]:
    """One round trip: PTTL + DUMP of `keys` and, with `scan`, the SCAN of the next batch."""
    with conn.pipeline(transaction=False) as pipe:
        _queue_dump(pipe, keys, scripts)
        if scan is not None:
            pipe.scan(cursor=scan[0], match=scan[1], count=BATCH)
        replies = pipe.execute()
    following = replies.pop() if scan is not None else None
    return (list(replies[0]) if scripts else replies), following


def _dumped_batches(conn: Redis, pattern: str) -> Iterator[tuple[list[bytes], list[Any]]]:
    """(keys, [pttl, payload, …]) per SCAN batch; each round trip also scans the next."""
    scripts = True
    cursor, found = conn.scan(cursor=0, match=pattern, count=BATCH)
    while True:
        if not found:
            if cursor == 0:
                return
            cursor, found = conn.scan(cursor=cursor, match=pattern, count=BATCH)
            continue
        keys = [k if isinstance(k, bytes) else k.encode() for k in found]
        scan = (cursor, pattern) if cursor != 0 else None
        try:
            replies, following = _dump_round(conn, keys, scan, scripts)
        except ResponseError as exc:
            if not scripts or not _scripts_refused(exc):
                raise
            scripts = False  # ACL or a managed service: the same batches as pipelines
            continue
        yield keys, replies
        if following is None:
            return
        cursor, found = following


def _restore_batch(conn: Redis, batch: list[tuple[bytes, int, bytes]]) -> None:
    """RESTORE … REPLACE of `batch` as a pipeline (a server that refuses scripts)."""
    with conn.pipeline(transaction=False) as pipe:
        for key, ttl, payload in batch:
            pipe.restore(key, max(ttl, 0), payload, replace=True)
        pipe.execute()


def _scripts_allowed(conn: Redis) -> bool:
    try:
        conn.eval("return 1", 0)
    except ResponseError as exc:
        if not _scripts_refused(exc):
            raise
        return False
    return True


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


def dump(conn: Redis, out: Any, *, pattern: str, advance: Advance) -> dict[str, Any]:
    """Write every key under `pattern` to `out` (a writer); returns count and digest."""
    count = 0
    digest = 0
    payload_bytes = 0
    pack = _HEAD.pack
    for keys, replies in _dumped_batches(conn, pattern):
        parts: list[bytes] = []
        for key, ttl, payload in zip(keys, replies[0::2], replies[1::2], strict=True):
            if not payload or ttl == -2:  # expired between SCAN and DUMP
                continue
            parts += (pack(len(key), len(payload), int(ttl)), key, payload)
            digest += digest_one(key, payload)
            payload_bytes += len(payload)
            count += 1
        out.write(b"".join(parts))
        advance(len(keys))
    digest &= _MASK
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
    """UNLINK every key under `pattern`: SCAN and UNLINK run in a server-side script (the
    keys never travel to the client); without scripts, a pipeline that unlinks one batch
    and scans the next per round trip."""
    removed = 0
    if _scripts_allowed(conn):
        step: Any = b"0"
        while True:
            step, count = conn.eval(_CLEAR_BATCH, 0, step, pattern, CLEAR_BATCH)
            removed += int(count)
            if int(step) == 0:
                return removed
    cursor, keys = conn.scan(cursor=0, match=pattern, count=BATCH)
    while keys or cursor != 0:
        if not keys:
            cursor, keys = conn.scan(cursor=cursor, match=pattern, count=BATCH)
            continue
        with conn.pipeline(transaction=False) as pipe:
            pipe.unlink(*keys)
            if cursor != 0:
                pipe.scan(cursor=cursor, match=pattern, count=BATCH)
            replies = pipe.execute()
        removed += len(keys)
        cursor, keys = replies[1] if cursor != 0 else (0, [])
    return removed


def _restore_blob(conn: Redis, buffer: bytearray) -> int:
    """Hand the whole records of the front of `buffer` (a call's worth, at least one
    record) to the server; remove them. A call never holds Redis for long."""
    count, consumed = conn.eval(_RESTORE_RECORDS, 0, bytes(buffer[: _wanted(buffer)]))
    del buffer[: int(consumed)]
    return int(count)


def _wanted(buffer: bytearray) -> int:
    """How many bytes the next call should have: a chunk's worth, or one whole record."""
    if len(buffer) < _HEAD.size:
        return RESTORE_BYTES
    klen, plen, _ = _HEAD.unpack_from(buffer)
    need: int = _HEAD.size + klen + plen
    return max(RESTORE_BYTES, need)


def restore(
    conn: Redis, chunks: Iterator[bytes], *, pattern: str, what: str, advance: Advance
) -> int:
    """Make the namespace equal to the set: clear it, then RESTORE every key with its TTL."""
    clear(conn, pattern)
    restored = 0
    if not _scripts_allowed(conn):
        batch: list[tuple[bytes, int, bytes]] = []
        for record in records(chunks, what=what):
            batch.append(record)
            if len(batch) == BATCH:
                _restore_batch(conn, batch)
                advance(len(batch))
                restored += len(batch)
                batch = []
        _restore_batch(conn, batch)
        advance(len(batch))
        return restored + len(batch)
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= _wanted(buffer):
            done = _restore_blob(conn, buffer)
            advance(done)
            restored += done
    while buffer:
        done = _restore_blob(conn, buffer)
        if not done:
            raise BackupCorrupt(f"{what} ends inside a record (truncated)")
        advance(done)
        restored += done
    return restored


def digest_of(conn: Redis, pattern: str) -> tuple[int, str]:
    """Key count and content digest of the namespace now (for drills)."""
    count = 0
    digest = 0
    for keys, replies in _dumped_batches(conn, pattern):
        for key, payload in zip(keys, replies[1::2], strict=True):
            if payload:
                digest += digest_one(key, payload)
                count += 1
    return count, str(digest & _MASK)
