"""What the cache's proof costs a cached template read (issue #10).

Every cached value is sealed (keyed BLAKE2b over key, generation, expiry, payload) and a
reader checks the seal before it believes the value. The cached read's fast path reads
two values — the token record and the template — so per request the proof costs:

* two `Cache.unseal` calls instead of two `orjson.loads` (the raw baseline: what the
  read did before), on a real token record and a real template of the seeded dataset:
  the first sight of a value (the MAC computed) and a value seen before at the same
  generation (compared with the bytes the process last verified, as a hot key is);
* an MGET of four keys (each value and its generation) instead of two, on Redis;
* the authentication epoch's check of the token record (issue #21: `EpochWatch.believes`,
  one dict lookup and comparison), against the two hot unseals it follows.

    BENCH_DATABASE_URL=... BENCH_REDIS_URL=redis://127.0.0.1:6401/11 \
        .venv/bin/python -m benchmarks.bench_cache_proof [--quick]
"""

from __future__ import annotations

import time
import timeit
from typing import Any

import orjson
import psycopg
import uvloop
from redis.asyncio import Redis

from benchmarks.common import bench_redis_url, machine, parser, raw_dsn, seeded_database
from templator.cache import Cache
from templator.epoch import EpochWatch
from templator.template.repository import LOAD as _LOAD
from templator.template.repository import LoadedTemplate
from templator.template.service import template_json

REDIS_URL = bench_redis_url(15)


def _template_row(url: str) -> LoadedTemplate:
    """A template as `TemplateRepository.load` gives it (the same statement)."""
    with psycopg.connect(raw_dsn(url)) as conn, conn.cursor() as cursor:
        first = cursor.execute("SELECT id FROM templates ORDER BY id LIMIT 1").fetchone()
        assert first is not None
        row = cursor.execute(_LOAD, (first[0],)).fetchone()
        assert row is not None
    return LoadedTemplate.of(row)


def _per_call(fn: Any, number: int) -> float:
    """Best of 5 runs, microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


async def run(number: int) -> None:
    with seeded_database(quick=number < 50_000) as url:
        row = _template_row(url)
    redis = Redis.from_url(REDIS_URL)
    cache = Cache(redis, namespace="bench-proof", default_ttl=60, signing_key=b"k" * 32)
    token_key, template_key = (
        cache.key("token", "abcdef012345"),
        cache.key("template", row.template.id),
    )
    record = {
        "user_id": row.owner_id,
        "role": "USER",
        "hash": "0" * 64,
        "expires": time.time() + 86400,
        "revoked": False,
        "epoch": 7,
    }
    template = template_json(row)
    sealed = [cache.seal(token_key, "3", record, 60), cache.seal(template_key, "7", template, 300)]
    plain = [orjson.dumps(record), orjson.dumps(template)]

    def ours() -> None:
        cache.unseal(token_key, b"3", sealed[0])
        cache.unseal(template_key, b"7", sealed[1])

    # Every read returns new bytes objects: unseal copies, as an MGET reply would be.
    copies = [bytes(bytearray(v)) for v in sealed]

    def ours_hot() -> None:
        cache.unseal(token_key, b"3", copies[0])
        cache.unseal(template_key, b"7", copies[1])

    def baseline() -> None:
        orjson.loads(plain[0])
        orjson.loads(plain[1])

    print(machine())
    print(f"token record {len(sealed[0])} B sealed, template {len(sealed[1])} B sealed")
    cache.verified_max = 0  # first sight: the MAC every time
    ours_us = _per_call(ours, number)
    cache.verified_max = 4096
    ours()
    hot_us, base_us = _per_call(ours_hot, number), _per_call(baseline, number)
    print(f"two unseals, first sight (MAC + decode)    {ours_us:6.2f} µs per request")
    print(f"two unseals, seen before (compare + decode) {hot_us:6.2f} µs per request")
    print(f"two orjson.loads (the baseline)             {base_us:6.2f} µs per request")
    print(
        f"proof's CPU per request: {ours_us - base_us:.2f} µs first sight "
        f"({ours_us / base_us:.2f}x), {hot_us - base_us:.2f} µs seen before ({hot_us / base_us:.2f}x)"
    )

    epoch = EpochWatch()
    epoch.current = 7

    def ours_hot_with_epoch() -> None:
        token = cache.unseal(token_key, b"3", copies[0])
        cache.unseal(template_key, b"7", copies[1])
        epoch.believes(token)

    with_epoch_us = _per_call(ours_hot_with_epoch, number)
    hot_again_us = _per_call(ours_hot, number)
    print(
        f"two unseals seen before + the epoch check {with_epoch_us:6.2f} µs per request, "
        f"without {hot_again_us:6.2f} µs: {hot_again_us / with_epoch_us:.3f}x"
    )

    await redis.set(token_key, sealed[0])
    await redis.set(template_key, sealed[1])
    keys4 = [token_key, f"{token_key}:gen", template_key, f"{template_key}:gen"]
    keys2 = [token_key, template_key]
    for keys in (keys4, keys2):  # warm the connection
        await redis.mget(keys)
    rounds = max(2_000, number // 20)
    timings: dict[int, float] = {}
    for _ in range(3):
        for keys in (keys2, keys4):
            started = time.perf_counter()
            for _ in range(rounds):
                await redis.mget(keys)
            elapsed = (time.perf_counter() - started) / rounds * 1e6
            timings[len(keys)] = min(timings.get(len(keys), elapsed), elapsed)
    print(f"MGET of 4 keys {timings[4]:6.1f} µs, of 2 keys {timings[2]:6.1f} µs (round trip, wall)")
    print(f"generations' wall cost per request: {timings[4] - timings[2]:.1f} µs")
    await redis.delete(token_key, template_key)
    await redis.aclose()


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    uvloop.run(run(20_000 if args.quick else 200_000))
