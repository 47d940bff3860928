"""Cache-aside over Redis that never becomes the source of truth.

* One key namespace (`settings.cache_namespace`), values encoded once with orjson.
* A read after a write never returns stale data: every cached key has a generation
  counter; a reader notes the generation before it reads PostgreSQL and stores what it
  read only if no writer bumped the generation meanwhile (one atomic Lua script).
  Writers invalidate after their transaction commits (see `kit.uow`).
* When Redis is down every call falls through to the loader: the bypass is logged once
  and counted, and Redis is tried again after a short cool-down, so caching resumes
  by itself.
* Nothing in Redis is believed without a proof only the application can make: every
  value is sealed with a keyed BLAKE2b MAC over its key, its generation, an expiry and
  the payload (the key comes from settings, see `signing.py`). A value that was forged,
  altered, moved to another key, replayed after an invalidation (its generation moved
  on) or kept past its expiry is refused, counted, and read from PostgreSQL again.
* Redis Cluster works: every key carries a hash tag (`ns:{template:ID}`, its generation
  `ns:{template:ID}:gen`), so a value and its generation share a slot and each script
  call stays on one node; reads and invalidations of several keys are split per slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from prometheus_client import Counter
from redis.exceptions import MaxConnectionsError, RedisError

from templator.epoch import EpochWatch
from templator.redis import RedisClient, by_slot, is_cluster

log = logging.getLogger("templator.cache")

T = TypeVar("T")

CACHE_REQUESTS = Counter("templator_cache_requests_total", "Cache lookups by outcome", ["outcome"])
CACHE_BYPASS = Counter(
    "templator_cache_bypass_total", "Operations served without Redis because it was unreachable"
)

CACHE_REFUSED = Counter(
    "templator_cache_refused_total",
    "Cached values refused and read from PostgreSQL instead: `proof` = forged, altered, "
    "moved or replayed after an invalidation; `expired` = kept past its sealed expiry; "
    "`stale` = sealed, but read before a change the caller knows of (an older "
    "authentication epoch)",
    ["reason"],
)
MAC_SIZE = 16
VERIFIED_MAX = 4096
"""Keys whose last verified value a process remembers (its bytes and generation)."""
_EXPIRY = struct.Struct(">Q")
_HEADER = MAC_SIZE + _EXPIRY.size

# KEYS[1] = value key, KEYS[2] = generation key, ARGV = [expected generation, ttl, payload]
_SET_IF_GENERATION = """
local current = redis.call('GET', KEYS[2]) or '0'
if current == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[3], 'EX', tonumber(ARGV[2]))
    return 1
end
return 0
"""

# KEYS = value key, its generation key, ... ; ARGV = [generation ttl, channel, message, ...]
_INVALIDATE_PUBLISH = """
for i = 1, #KEYS, 2 do
    redis.call('INCR', KEYS[i + 1])
    redis.call('EXPIRE', KEYS[i + 1], tonumber(ARGV[1]))
    redis.call('DEL', KEYS[i])
end
for i = 2, #ARGV, 2 do
    redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
end
return #KEYS / 2
"""
GENERATION_TTL = 24 * 3600
"""Seconds a generation counter outlives its last bump (far beyond any value TTL)."""
INVALIDATE_CHUNK = 500
INVALIDATE_CONCURRENCY = 16
"""Script calls in flight at once when a cluster invalidation spans many slots."""


@dataclass
class CacheStats:
    """In-process counters, for benchmarks and `templator monitor`."""

    hits: int = 0
    misses: int = 0
    bypasses: int = 0
    stale_writes_prevented: int = 0

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups that reached Redis (0 when none did)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class _PeekBatch:
    """MGETs asked for in one turn of the event loop, sent as one pipeline.

    The first request of a turn schedules a flush (`call_soon`); every request until it
    runs joins the batch. One request alone is one MGET, as before; several are one
    non-transactional pipeline, and each gets its own reply, or the pipeline's error
    (a failed connection fails them all, as it would have failed each).
    """

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._pending: list[tuple[list[str], asyncio.Future[list[Any]]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def mget(self, keys: list[str]) -> list[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._pending.append((keys, future))
        if len(self._pending) == 1:
            loop.call_soon(self._start)
        return await future

    def _start(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)  # a reference, so the task is not collected mid-flight
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[list[str], asyncio.Future[list[Any]]]]) -> None:
        try:
            if len(batch) == 1:
                replies: list[Any] = [await self.redis.mget(*batch[0][0])]
            else:
                pipe = self.redis.pipeline(transaction=False)
                for keys, _ in batch:
                    pipe.mget(*keys)
                replies = await pipe.execute()
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (shutdown): so are the requests waiting on it
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), reply in zip(batch, replies, strict=True):
            if not future.done():  # a waiter cancelled meanwhile (its request gave up)
                future.set_result(reply)


class _WriteBatch:
    """Post-commit invalidations and messages of concurrent units of work, sent together.

    Group commit, as a database does for its log: while one batch is on its way to Redis,
    the requests that arrive join the next one, sent as soon as the first is answered —
    one script call (`_INVALIDATE_PUBLISH`) for all of them instead of one each. A
    request alone goes in the next turn of the event loop, as a single call did. Each
    request's messages keep their order, and a unit of work waits for its batch, so a
    worker's next change is never published before its last. Measured on the session
    lifecycle (docs/benchmarks.md): a Python client's cost of a Redis call is mostly
    its encoding, parsing and connection checkout, not the bytes.
    """

    def __init__(self, send: Callable[[list[str], list[Any]], Awaitable[None]]) -> None:
        self._send = send
        self._pending: list[tuple[list[str], list[Any], asyncio.Future[None]]] = []
        self._busy = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, keys: list[str], published: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): nothing of the old one runs
            self._loop, self._busy = loop, False
            self._pending = []
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((keys, published, future))
        if not self._busy and len(self._pending) == 1:
            loop.call_soon(self._start)
        await future

    def _start(self) -> None:
        if self._busy or not self._pending:
            return
        batch, self._pending = self._pending, []
        self._busy = True
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)  # a reference, so the task is not collected mid-flight
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[list[str], list[Any], asyncio.Future[None]]]) -> None:
        keys = list(dict.fromkeys(key for request in batch for key in request[0]))
        published = [item for request in batch for item in request[1]]
        try:
            await self._send(keys, published)
        except BaseException as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc) if isinstance(exc, Exception) else future.cancel()
            if not isinstance(exc, Exception):
                raise
        else:
            for *_, future in batch:
                if not future.done():  # a waiter cancelled meanwhile
                    future.set_result(None)
        finally:
            self._busy = False
            if self._pending:
                asyncio.get_running_loop().call_soon(self._start)


class Cache:
    """A namespaced cache-aside helper over one Redis client."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        namespace: str,
        default_ttl: int,
        retry_after: float = 2.0,
        signing_key: bytes | None = None,
        epoch: EpochWatch | None = None,
    ) -> None:
        self.redis = redis
        # What cached auth records must be stamped with to be believed (`epoch.py`); a
        # cache made without a watch knows no epoch, and believes no such record.
        self.epoch = epoch or EpochWatch()
        # Without a configured key this process makes one: its values are then believed
        # by itself only (other processes refuse them and read PostgreSQL), never by
        # anyone else.
        self._mac = hashlib.blake2b(
            key=signing_key or secrets.token_bytes(32), digest_size=MAC_SIZE
        )
        # The same bytes at the same generation verify the same way: a hot key's value is
        # compared (memcmp) instead of hashed again on every read.
        self._verified: dict[str, tuple[bytes, bytes]] = {}
        self.verified_max = VERIFIED_MAX
        self.namespace = namespace
        self.default_ttl = default_ttl
        self.retry_after = retry_after
        self.stats = CacheStats()
        self._down_until = 0.0
        self._outage_logged = False
        self._set_if_generation = redis.register_script(_SET_IF_GENERATION)
        self._peeks = _PeekBatch(redis)
        self._invalidate_publish = redis.register_script(_INVALIDATE_PUBLISH)
        self._writes = _WriteBatch(self._send_invalidations)
        self._cluster = is_cluster(redis)

    def key(self, *parts: str) -> str:
        """The namespaced key for `parts`, hash-tagged by its first two parts:
        key("template", id) → "ns:{template:id}", key("session", id, "state") →
        "ns:{session:id}:state". Keys of one thing (and their generations) share a slot."""
        tag = "{" + ":".join(parts[:2]) + "}"
        return ":".join((self.namespace, tag, *parts[2:]))

    def channel(self, name: str) -> str:
        """The namespaced pub/sub channel `name` (no hash tag: a cluster delivers a
        message to subscribers on every node)."""
        return f"{self.namespace}:{name}"

    @staticmethod
    def _generation_key(key: str) -> str:
        return f"{key}:gen"

    def _proof(self, key: str, generation: bytes, rest: memoryview | bytes) -> bytes:
        mac = self._mac.copy()  # the keyed state, without keying again per value
        mac.update(key.encode())
        mac.update(b"\0")
        mac.update(generation)
        mac.update(b"\0")
        mac.update(rest)
        return mac.digest()

    def seal(self, key: str, generation: str, data: Any, ttl: int) -> bytes:
        """The stored form of `data` under `key` at `generation`: MAC, expiry, JSON."""
        rest = _EXPIRY.pack(int(time.time()) + ttl) + orjson.dumps(data)
        return self._proof(key, generation.encode(), rest) + rest

    def unseal(self, key: str, generation: bytes | str | None, raw: bytes | str) -> Any | None:
        """The data of a value read from Redis, or None (counted) when its proof does not
        hold for this key and current generation, or its sealed expiry has passed."""
        # The client returns bytes (no decode_responses); str only keeps the types honest.
        data = raw.encode() if isinstance(raw, str) else raw
        view = memoryview(data)
        gen = generation.encode() if isinstance(generation, str) else generation or b"0"
        if self._verified.get(key) != (gen, data):
            if len(view) < _HEADER or not hmac.compare_digest(
                view[:MAC_SIZE], self._proof(key, gen, view[MAC_SIZE:])
            ):
                CACHE_REFUSED.labels("proof").inc()
                return None
            if self.verified_max:
                if len(self._verified) >= self.verified_max:
                    del self._verified[next(iter(self._verified))]
                self._verified[key] = (gen, data)
        if _EXPIRY.unpack_from(view, MAC_SIZE)[0] < time.time():
            CACHE_REFUSED.labels("expired").inc()
            return None
        return orjson.loads(view[_HEADER:])

    @property
    def available(self) -> bool:
        """False while in a cool-down after a Redis failure."""
        return time.monotonic() >= self._down_until

    def _mark_down(self, exc: BaseException) -> None:
        if isinstance(exc, MaxConnectionsError):
            # A cluster client's per-node pool is full (it does not wait for a free
            # connection): this call goes without Redis, the next ones try again.
            return
        self._down_until = time.monotonic() + self.retry_after
        if not self._outage_logged:
            log.warning("Redis unreachable (%s): serving from PostgreSQL until it returns", exc)
            self._outage_logged = True

    def _mark_up(self) -> None:
        if self._outage_logged:
            log.warning("Redis is reachable again: caching resumed")
            self._outage_logged = False

    def _bypass(self) -> None:
        self.count_bypasses(1)

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T | None]],
        *,
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
        ttl: int | None = None,
        believe: Callable[[Any], bool] | None = None,
    ) -> T | None:
        """Return the cached value for `key`, else load it, cache it (race-safe) and return it.

        `encode` turns the loaded value into JSON-ready data, `decode` turns it back.
        A loader returning None (not found) is not cached. A cached value that `believe`
        (when given) refuses is counted `stale` and replaced by a fresh load.
        """
        generation = "0"
        if self.available:
            try:
                raw, gen = await self.redis.mget(key, self._generation_key(key))
            except RedisError as exc:
                self._mark_down(exc)
                self._bypass()
            else:
                self._mark_up()
                if raw is not None:
                    data = self.unseal(key, gen, raw)
                    if data is not None and believe is not None and not believe(data):
                        CACHE_REFUSED.labels("stale").inc()
                        data = None
                    if data is not None:
                        self.stats.hits += 1
                        CACHE_REQUESTS.labels("hit").inc()
                        return decode(data)
                self.stats.misses += 1
                CACHE_REQUESTS.labels("miss").inc()
                generation = gen.decode() if isinstance(gen, bytes) else str(gen or "0")
                # A refused value is replaced by the fresh one (same generation).
                value = await loader()
                if value is not None:
                    await self._store(key, generation, encode(value), ttl)
                return value
        else:
            self._bypass()
        return await loader()

    async def peek(self, *keys: str) -> list[Any] | None:
        """The cached data of `keys` (with their generations) in one MGET, each None when
        missing or refused, for a caller that falls back to `get_or_load` on any miss;
        None while Redis is unavailable (a failure here marks it down, as a lookup would).
        Counts no hits: the caller counts what it serves with `count_hits`."""
        if not self.available:
            return None
        try:
            values = await self._mget_with_generations(keys)
        except RedisError as exc:
            self._mark_down(exc)
            return None
        self._mark_up()
        return [
            None if raw is None else self.unseal(key, gen, raw)
            for key, raw, gen in zip(keys, values[::2], values[1::2], strict=True)
        ]

    async def _mget_with_generations(self, keys: tuple[str, ...]) -> list[Any]:
        """[value, generation, value, generation…] of `keys`: one MGET, or on a cluster
        one per slot, concurrently (a key and its generation always share a slot).

        On one server, the MGETs of the peeks made in the same turn of the event loop go
        out as one pipeline (`_PeekBatch`): under load, redis-py's per-command work is
        most of a cached read's cost, and a pipeline shares it."""
        if not self._cluster:
            return await self._peeks.mget(
                [k for key in keys for k in (key, self._generation_key(key))]
            )
        if len(keys) < 2:
            values: list[Any] = await self.redis.mget(
                *[k for key in keys for k in (key, self._generation_key(key))]
            )
            return values
        groups = by_slot(self.redis, keys)
        answers = await asyncio.gather(
            *(
                self.redis.mget(*[k for key in group for k in (key, self._generation_key(key))])
                for group in groups
            )
        )
        found: dict[str, tuple[Any, Any]] = {}
        for group, answer in zip(groups, answers, strict=True):
            for key, raw, gen in zip(group, answer[::2], answer[1::2], strict=True):
                found[key] = (raw, gen)
        return [v for key in keys for v in found[key]]

    def count_hits(self, n: int) -> None:
        """Count `n` hits served from values read with `peek`."""
        self.stats.hits += n
        CACHE_REQUESTS.labels("hit").inc(n)

    def count_bypasses(self, n: int) -> None:
        """Count `n` lookups served from the source of truth while Redis was unavailable
        (what `peek` returning None led to)."""
        self.stats.bypasses += n
        CACHE_BYPASS.inc(n)

    async def _store(self, key: str, generation: str, data: Any, ttl: int | None) -> None:
        ttl = ttl or self.default_ttl
        payload = self.seal(key, generation, data, ttl)
        try:
            stored = await self._set_if_generation(
                keys=[key, self._generation_key(key)],
                args=[generation, ttl, payload],
            )
        except RedisError as exc:
            self._mark_down(exc)
            return
        if not stored:
            self.stats.stale_writes_prevented += 1

    async def invalidate(self, *keys: str) -> None:
        """Drop `keys` and bump their generations, so in-flight loads cannot store old data."""
        await self.invalidate_and_publish(list(keys), [])

    async def invalidate_and_publish(
        self, keys: list[str], messages: list[tuple[str, dict[str, Any]]]
    ) -> None:
        """Invalidate keys and publish messages in ONE command (the post-commit path).

        One EVALSHA instead of a pipeline of 3 commands per key: the script runs
        atomically in Redis, and the client encodes and parses a single command, which
        is most of the cost of this path for a Python process.
        """
        if not keys and not messages:
            return
        if not self.available:
            self._bypass()
            return
        published: list[Any] = []
        for channel, message in messages:
            published += [self.channel(channel), orjson.dumps(message)]
        await self._writes.submit(keys, published)

    async def _send_invalidations(self, keys: list[str], published: list[Any]) -> None:
        """One batch of `_WriteBatch`: the keys' invalidations, then the messages."""
        # Chunks of keys, so a mass invalidation (an erasure) never blocks Redis long; on a
        # cluster, each chunk within one slot (a script's keys must share one).
        chunks = [
            group[start : start + INVALIDATE_CHUNK]
            for group in by_slot(self.redis, keys)
            for start in range(0, len(group), INVALIDATE_CHUNK)
        ] or [[]]
        try:
            # Slots' chunks a few at a time (a cluster client's pool per node does not
            # wait for a free connection); the messages go with the last one.
            rest = chunks[:-1]
            for start in range(0, len(rest), INVALIDATE_CONCURRENCY):
                wave = rest[start : start + INVALIDATE_CONCURRENCY]
                await asyncio.gather(*(self._invalidate_chunk(c, []) for c in wave))
            await self._invalidate_chunk(chunks[-1], published)
        except RedisError as exc:
            # A cached copy may now outlive its row until its TTL: keep TTLs short.
            self._mark_down(exc)
            log.error("post-commit cache work failed for %d key(s): %s", len(keys), exc)

    async def _invalidate_chunk(self, chunk: list[str], published: list[Any]) -> None:
        await self._invalidate_publish(
            keys=[k for key in chunk for k in (key, self._generation_key(key))],
            args=[GENERATION_TTL, *published],
        )

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Publish a JSON message on `namespace:channel`; silently skipped while Redis is down."""
        if not self.available:
            self._bypass()
            return
        try:
            await self.redis.publish(self.channel(channel), orjson.dumps(message))
        except RedisError as exc:
            self._mark_down(exc)

    async def purge_namespace(self, pattern: str = "*", *, batch: int = 500) -> int:
        """Delete namespaced keys matching `pattern` with SCAN (never KEYS); return the count."""
        deleted = 0
        async for chunk in self._scan_chunks(f"{self.namespace}:{pattern}", batch):
            deleted += await self.redis.unlink(*chunk)
        return deleted

    async def _scan_chunks(self, match: str, batch: int) -> Any:
        chunk: list[bytes] = []
        async for key in self.redis.scan_iter(match=match, count=batch):
            chunk.append(key)
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
