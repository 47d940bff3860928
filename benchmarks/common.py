"""Shared benchmark plumbing: scratch databases, timing, and the ratio line."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from templator.migrations import runner

if TYPE_CHECKING:
    from templator.connections import Connections

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def bench_redis_url(db: int) -> str:
    """The Redis a benchmark caches in: BENCH_REDIS_URL (a server of the benchmark's own,
    e.g. `redis-server --port 6411 --save ''`), else database `db` of 127.0.0.1:6379."""
    return os.environ.get("BENCH_REDIS_URL", f"redis://127.0.0.1:6379/{db}")


@contextmanager
def scratch_database(keep: bool = False) -> Iterator[str]:
    """A freshly migrated database, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        runner.upgrade(sa_url)
        yield sa_url
    finally:
        if not keep:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def raw_dsn(url: str) -> str:
    """A libpq DSN from a SQLAlchemy URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class Timing:
    """Latencies of one measured loop."""

    name: str
    samples: list[float]

    @property
    def total(self) -> float:
        return sum(self.samples)

    @property
    def per_second(self) -> float:
        return len(self.samples) / self.total if self.total else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        return (
            f"{self.name:<38} {self.per_second:>10,.0f}/s  p50 {self.pct(0.5):7.3f} ms  "
            f"p95 {self.pct(0.95):7.3f} ms  p99 {self.pct(0.99):7.3f} ms"
        )


class Clock:
    """Collects per-operation latencies."""

    def __init__(self, name: str) -> None:
        self.timing = Timing(name, [])

    @contextmanager
    def op(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timing.samples.append(time.perf_counter() - started)


def ratio_line(ours: Timing, raw: Timing, *, target: float) -> str:
    """`ours/raw` throughput ratio with the target and a verdict."""
    ratio = ours.per_second / raw.per_second if raw.per_second else 0.0
    verdict = "OK" if ratio >= target else "BELOW TARGET"
    return f"ratio {ours.name} / {raw.name}: {ratio:.2f}x (target >= {target}x) {verdict}"


def machine() -> str:
    """One line about where this ran."""
    python = platform.python_version()
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {python}"


def median(values: list[float]) -> float:
    """Median of values."""
    return statistics.median(values)


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the common options."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    return p


BENCH_PLAN_FULL = {"users": 1000, "sessions": 100_000, "templates": 50_000, "logs_per_session": 50}
BENCH_PLAN_QUICK = {"users": 100, "sessions": 5_000, "templates": 5_000, "logs_per_session": 20}


@contextmanager
def seeded_database(*, quick: bool) -> Iterator[str]:
    """BENCH_DATABASE_URL if set (an already seeded database), else a scratch database
    seeded with `templator db seed` sizes (100k sessions, 50k templates, 5M log rows)."""
    from templator.dev.seed import SeedPlan, seed_database

    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given.replace("postgresql://", "postgresql+psycopg://", 1)
        return
    plan = BENCH_PLAN_QUICK if quick else BENCH_PLAN_FULL
    with scratch_database() as url:
        started = time.perf_counter()
        report = seed_database(url, SeedPlan(**plan, random_seed=1))
        rows = ", ".join(f"{k} {v:,}" for k, v in report.rows.items())
        print(f"seeded in {time.perf_counter() - started:.0f}s: {rows}")
        yield url


async def admin_with_token(conns: Connections, *, name: str) -> tuple[str, str]:
    """(user id, bearer token) of a new ADMIN made through the services, as the CLI's
    `user create` + `token create` would (audited as the CLI)."""
    from templator.audit.service import CLI
    from templator.auth.schemas import TokenCreate
    from templator.auth.service import TokenService
    from templator.kit.uow import unit_of_work
    from templator.models import UserRole
    from templator.user.schemas import UserCreate
    from templator.user.service import UserService

    email = f"{name}-{time.time_ns()}@bench.example"
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        user = await UserService(session, conns.cache).create(
            UserCreate(email=email, role=UserRole.ADMIN), origin=CLI
        )
        token = await TokenService(session, conns.cache).create(
            user.id, TokenCreate(name=name), origin=CLI
        )
    return user.id, token.token
