"""Backups against their raw baselines, in the same run, on servers of this machine.

* PostgreSQL: our `create` (parallel pg_dump -Fd of an exported snapshot, encrypted,
  sealed) vs bare `pg_dump -Fc`; our restore (verify, decrypt, pg_restore -j into a fresh
  database, swap) vs bare `pg_restore` into an empty database. Ratio = ours / bare time.
* Redis: keys/s of our pipelined dump and restore vs one key per round trip.
* Objects: a first backup, then a second after 1 % of the objects changed (copied
  objects, bytes and time of each).

    .venv/bin/python -m benchmarks.bench_backup [--quick]

The database is seeded with `templator db seed` sizes chosen for a shared 2-core
machine (BENCH_DATABASE_URL uses an existing one instead).
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
from templator.backup.repository import FolderRepository
from templator.backup.tools import find_tool, libpq_env
from templator.config import PROJECT_ROOT, Settings
from templator.connections import StoreUrls
from templator.dev.localstack.redis import LocalRedis
from templator.dev.localstack.seaweedfs import SeaweedFS

PLAN = {"users": 200, "sessions": 20_000, "templates": 10_000, "logs_per_session": 20}


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


def bench_redis(work: Path, keys: int) -> None:
    """Pipelined dump/restore vs one key per round trip."""
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
        out = (work / "redis.bin").open("wb")
        dumped = _timed(lambda: redis_dump.dump(conn, out, pattern="ns:*", advance=lambda n: None))
        out.close()
        sample = min(keys, 10_000)

        def one_by_one() -> None:
            for i, key in enumerate(conn.scan_iter(match="ns:*", count=1000)):
                conn.pttl(key)
                conn.dump(key)
                if i + 1 >= sample:
                    return

        single = _timed(one_by_one)
        data = (work / "redis.bin").read_bytes()
        restored = _timed(
            lambda: redis_dump.restore(
                conn, iter([data]), pattern="ns:*", what="bench", advance=lambda n: None
            )
        )
        print(
            f"redis {keys:,} keys: dump {keys / dumped:,.0f} keys/s ({dumped:.1f} s), restore "
            f"{keys / restored:,.0f} keys/s ({restored:.1f} s); one key per round trip "
            f"{sample / single:,.0f} keys/s; ratio dump / per-key {sample / single and (keys / dumped) / (sample / single):.1f}x"
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


def main() -> None:
    """Run every measurement and print the ratios."""
    args = parser(__doc__ or "").parse_args()
    print(machine())
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    plan = common.BENCH_PLAN_QUICK if args.quick else PLAN
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
        bench_redis(work, 20_000 if args.quick else 200_000)
        bench_objects(work, 200 if args.quick else 1000, 20_000)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
