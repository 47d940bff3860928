"""Backups against their raw baselines, in the same run, on servers of this machine.

* PostgreSQL: our `create` (parallel pg_dump -Fd of an exported snapshot, encrypted,
  sealed) vs bare `pg_dump -Fc`; our restore (verify, decrypt, pg_restore -j into a fresh
  database, swap) vs bare `pg_restore` into an empty database. Ratio = ours / bare time.
* Redis: keys/s of our dump (a script per SCAN batch, the next SCAN in the same round
  trip) and restore (the set's records parsed by a server-side script) vs plain redis-py
  pipelines doing the same work (SCAN, PTTL + DUMP; SCAN + UNLINK, RESTORE) on the same
  server; ratio = our keys/s / theirs.
* Objects: a first backup, then a second after 1 % of the objects changed (copied
  objects, bytes and time of each).

    .venv/bin/python -m benchmarks.bench_backup [--quick] [--size-gb 1.1] [--redis-keys 1000000]

The database is seeded with `templator db seed` sizes scaled to `--size-gb` (default
0.29, for a shared 2-core machine; the issue asks for 1 GB or more: `--size-gb 1.1`).
Everything is made in a scratch database and a temporary folder, removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import boto3
import psycopg
from botocore.config import Config as BotoConfig
from redis import Redis

from benchmarks import common
from benchmarks.common import machine, parser, raw_dsn
from templator.backup import create, pg_logical, restore
from templator.backup.crypto import generate_key_file
from templator.backup.set_store import FolderRepository
from templator.backup.tools import find_tool, libpq_env
from templator.config import PROJECT_ROOT, Settings
from templator.connections import StoreUrls
from templator.dev.localstack.redis import LocalRedis
from templator.dev.localstack.seaweedfs import SeaweedFS

PLAN = {"users": 200, "sessions": 20_000, "templates": 10_000, "logs_per_session": 20}
PLAN_GB = 0.29  # about what PLAN makes on disk


def _timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def _db_size(url: str) -> int:
    with psycopg.connect(raw_dsn(url)) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]


def bench_postgres(url: str, work: Path, settings: Settings) -> None:
    """create vs pg_dump -Fc, restore vs pg_restore."""
    print(f"database: {_db_size(url) / 1e6:.0f} MB on disk")
    dump = work / "bare.dump"
    pg_dump = find_tool("pg_dump", server_major=15)
    pg_restore = find_tool("pg_restore", server_major=15)
    env = libpq_env(url)
    bare = _timed(lambda: subprocess.run([pg_dump, "-Fc", "-f", str(dump)], env=env, check=True))
    print(f"bare pg_dump -Fc:   {bare:6.1f} s  {dump.stat().st_size / 1e6:7.1f} MB")
    key = generate_key_file(work / "bench.key")
    repo = FolderRepository(work / "repo")
    urls = StoreUrls(url, "redis://unused", None)
    made: list[str] = []

    def ours_create() -> None:
        m = create.create_backup(
            settings, urls, repo, key=key, include_redis=False, include_objects=False
        )
        made.append(m.name)

    ours = _timed(ours_create)
    print(
        f"templator create:   {ours:6.1f} s  {sum(f.size for f in create.catalog.read_manifest(repo, made[0]).files) / 1e6:7.1f} MB (encrypted)"
    )
    print(f"ratio create / bare pg_dump -Fc: {ours / bare:.2f}x (target <= 1.0x)")

    target = f"bench_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(common.ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{target}"')
    try:
        bare_restore = _timed(
            lambda: subprocess.run(
                [pg_restore, "--no-owner", "-d", target, str(dump)],
                env=libpq_env(url, database=target),
                check=True,
            )
        )
    finally:
        pg_logical.drop_database(url, target)
    print(f"bare pg_restore:    {bare_restore:6.1f} s")
    ours_restore = _timed(
        lambda: restore.restore_backup(
            settings, urls, repo, made[0], key=key, only={"postgres"}, target_database=target
        )
    )
    pg_logical.drop_database(url, target)
    print(f"templator restore:  {ours_restore:6.1f} s (verify + decrypt + pg_restore -j + swap)")
    print(f"ratio restore / bare pg_restore: {ours_restore / bare_restore:.2f}x (target <= 1.0x)")


def _baseline_dump(conn: Redis, pattern: str) -> list[tuple[bytes, int, bytes]]:
    """The same reads with plain redis-py: SCAN, then PTTL + DUMP pipelined per batch."""
    from templator.backup.redis_dump import BATCH

    found: list[tuple[bytes, int, bytes]] = []
    cursor = 0
    while True:
        cursor, keys = conn.scan(cursor=cursor, match=pattern, count=BATCH)
        with conn.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.pttl(key)
                pipe.dump(key)
            replies = pipe.execute()
        found += zip(keys, replies[0::2], replies[1::2], strict=True)
        if cursor == 0:
            return found


def _baseline_restore(conn: Redis, pattern: str, items: list[tuple[bytes, int, bytes]]) -> None:
    """The same writes with plain redis-py: SCAN + UNLINK, then RESTORE pipelined per batch."""
    from templator.backup.redis_dump import BATCH

    cursor = 0
    while True:
        cursor, keys = conn.scan(cursor=cursor, match=pattern, count=BATCH)
        if keys:
            conn.unlink(*keys)
        if cursor == 0:
            break
    for start in range(0, len(items), BATCH):
        with conn.pipeline(transaction=False) as pipe:
            for key, ttl, payload in items[start : start + BATCH]:
                pipe.restore(key, max(ttl, 0), payload, replace=True)
            pipe.execute()


def bench_redis(work: Path, keys: int) -> None:
    """Our dump/restore vs a plain redis-py pipeline doing the same work, same server."""
    from templator.backup import redis_dump

    server = LocalRedis(work / "redis")
    server.start()
    server.wait_ready()
    try:
        conn = Redis.from_url(server.url)
        value = b"v" * 200
        with conn.pipeline(transaction=False) as pipe:
            for i in range(keys):
                pipe.set(f"ns:key:{i}", value, ex=3600)
                if i % 10_000 == 9_999:
                    pipe.execute()
            pipe.execute()
        # The embedded stack's Redis config (AOF, RDB saves) forks now and then: each side
        # runs twice, alternating, and the better of its two runs is reported.
        dumped = bare_dump = restored = bare_restore = float("inf")
        items: list[tuple[bytes, int, bytes]] = []
        for _ in range(2):
            with (work / "redis.bin").open("wb") as out:
                dumped = min(
                    dumped,
                    _timed(
                        lambda: redis_dump.dump(conn, out, pattern="ns:*", advance=lambda n: None)
                    ),
                )
            items.clear()
            bare_dump = min(bare_dump, _timed(lambda: items.extend(_baseline_dump(conn, "ns:*"))))
        data = (work / "redis.bin").read_bytes()
        chunks = [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)]  # as a set's
        for _ in range(2):
            restored = min(
                restored,
                _timed(
                    lambda: redis_dump.restore(
                        conn, iter(chunks), pattern="ns:*", what="bench", advance=lambda n: None
                    )
                ),
            )
            bare_restore = min(bare_restore, _timed(lambda: _baseline_restore(conn, "ns:*", items)))
        assert int(conn.dbsize()) == keys == len(items)
        print(
            f"redis {keys:,} keys: dump {keys / dumped:,.0f} keys/s ({dumped:.1f} s), "
            f"restore {keys / restored:,.0f} keys/s ({restored:.1f} s)"
        )
        print(
            f"plain redis-py pipelines, same work: dump {keys / bare_dump:,.0f} keys/s "
            f"({bare_dump:.1f} s), restore {keys / bare_restore:,.0f} keys/s ({bare_restore:.1f} s)"
        )
        print(
            f"ratio ours / plain pipeline (keys/s): dump {bare_dump / dumped:.2f}x, "
            f"restore {bare_restore / restored:.2f}x (target >= 50k keys/s, 1M keys <= 30 s)"
        )
        conn.close()
    finally:
        server.stop()


def bench_objects(work: Path, count: int, size: int) -> None:
    """First backup vs second after 1 % changed."""
    folder = PROJECT_ROOT / "var" / f"bench-s3-{uuid.uuid4().hex[:8]}"
    s3_server = SeaweedFS(folder, access_key="bench", secret_key="bench-secret")
    s3_server.start()
    try:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_server.endpoint_url,
            aws_access_key_id="bench",
            aws_secret_access_key="bench-secret",
            region_name="us-east-1",
            config=BotoConfig(s3={"addressing_style": "path"}, max_pool_connections=32),
        )
        s3.create_bucket(Bucket=bucket)
        for i in range(count):
            s3.put_object(Bucket=bucket, Key=f"designs/s/{i}.bin", Body=os.urandom(size))
        time.sleep(1.1)
        from benchmarks.common import scratch_database

        with scratch_database() as url:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=url,
                s3_endpoint_url=s3_server.endpoint_url,
                s3_access_key="bench",
                s3_secret_key="bench-secret",
                s3_bucket=bucket,
                var_dir=work / "var",
                backup_jobs=2,
            )
            urls = StoreUrls(url, "redis://unused", s3_server.endpoint_url)
            key = generate_key_file(work / "objects.key")
            repo = FolderRepository(work / "objects-repo")
            results = []
            for round_ in range(2):
                if round_ == 1:
                    for i in range(0, count, 100):  # 1 %
                        s3.put_object(
                            Bucket=bucket, Key=f"designs/s/{i}.bin", Body=os.urandom(size)
                        )
                    time.sleep(1.1)  # unreferenced objects count from the second before
                started = time.perf_counter()
                m = create.create_backup(settings, urls, repo, key=key, include_redis=False)
                results.append((time.perf_counter() - started, m.objects))
            for label, (seconds, facts) in zip(("first", "second"), results, strict=True):
                print(
                    f"objects {label:<6}: {facts['copied']:5d} copied ({facts['copied_bytes'] / 1e6:6.1f} MB),"
                    f" {facts['reused']:5d} reused, {seconds:5.1f} s"
                )
    finally:
        s3_server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def plan_for(size_gb: float) -> dict[str, int]:
    """PLAN (about 0.3 GB on disk) scaled to roughly `size_gb` of database."""
    scale = size_gb / PLAN_GB
    return {
        "users": max(PLAN["users"], round(PLAN["users"] * scale)),
        "sessions": round(PLAN["sessions"] * scale),
        "templates": round(PLAN["templates"] * scale),
        "logs_per_session": PLAN["logs_per_session"],
    }


def main() -> None:
    """Run every measurement and print the ratios."""
    cli = parser(__doc__ or "")
    cli.add_argument(
        "--size-gb",
        type=float,
        default=PLAN_GB,
        help="database size to seed, in GB on disk (the issue's figure: 1.0 or more)",
    )
    cli.add_argument(
        "--redis-keys", type=int, default=200_000, help="keys to dump and restore (1M: 1000000)"
    )
    args = cli.parse_args()
    print(machine())
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    plan = common.BENCH_PLAN_QUICK if args.quick else plan_for(args.size_gb)
    try:
        with common.scratch_database() as url:
            from templator.dev.seed import SeedPlan, seed_database

            report = seed_database(url, SeedPlan(**plan, random_seed=1))
            print("seeded: " + ", ".join(f"{k} {v:,}" for k, v in report.rows.items()))
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=url,
                var_dir=work / "var",
                backup_jobs=2,
            )
            bench_postgres(url, work, settings)
        bench_redis(work, 20_000 if args.quick else args.redis_keys)
        bench_objects(work, 200 if args.quick else 1000, 20_000)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
