"""PostgreSQL, the logical path: one exported snapshot, parallel pg_dump, pg_restore + swap.

The snapshot is taken first and held open for the whole backup: pg_dump reads it
(`--snapshot`), the stored_objects keys are read from it (so the set pins exactly the
objects its rows refer to), and per-table row counts and content hashes come from it
too, for `verify --drill` to compare against.

A restore never edits the target in place: pg_restore -j N fills a fresh database,
which then takes the target's name in two renames. The target is therefore either the
old database or exactly the set — tables created after the backup are gone with it.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from templator.backup.errors import BackupStoreUnreachable, BackupToolFailed
from templator.backup.tools import find_tool, libpq_dsn, libpq_env, run_tool, tool_version

# Order-independent content hash of a table: the sum of the rows' md5 prefixes.
_TABLE_HASH = (
    "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)"
    " FROM {} AS t"
)


@dataclass
class Snapshot:
    """An open REPEATABLE READ transaction whose snapshot pg_dump shares."""

    conn: psycopg.Connection[Any]
    snapshot_id: str
    taken_at: str
    server_version: str
    server_major: int
    alembic_revision: str | None
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)


def connect(
    url: str, *, database: str | None = None, autocommit: bool = False
) -> psycopg.Connection[Any]:
    """A connection, with an unreachable server as a one-line error."""
    try:
        return psycopg.connect(
            libpq_dsn(url, database=database),
            connect_timeout=5,
            autocommit=autocommit,
            application_name="templator-backup",
        )
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackupStoreUnreachable(f"PostgreSQL is unreachable: {first}") from None


@contextlib.contextmanager
def snapshot(url: str) -> Iterator[Snapshot]:
    """Export a snapshot and read what the set must pin from it; held until the block ends."""
    conn = connect(url)
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snap_id = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
        taken_at = conn.execute("SELECT now()").fetchone()[0].isoformat()  # type: ignore[index]
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        revision = None
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0]:  # type: ignore[index]
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = str(row[0]) if row else None
        objects: dict[str, dict[str, Any]] = {}
        if conn.execute("SELECT to_regclass('stored_objects')").fetchone()[0]:  # type: ignore[index]
            for key, size, sha in conn.execute("SELECT key, size, sha256 FROM stored_objects"):
                objects[key] = {"size": size, "sha256": sha}
        tables = [
            f"{schema}.{name}"
            for schema, name in conn.execute(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                "('pg_catalog', 'information_schema') ORDER BY 1, 2"
            )
        ]
        yield Snapshot(
            conn=conn,
            snapshot_id=snap_id,
            taken_at=taken_at,
            server_version=version,
            server_major=conn.info.server_version // 10000,
            alembic_revision=revision,
            objects=objects,
            tables=tables,
        )
    finally:
        conn.close()


def table_hashes(conn: psycopg.Connection[Any], tables: list[str]) -> dict[str, list[Any]]:
    """Row count and content hash of every table, read in `conn`'s transaction."""
    result: dict[str, list[Any]] = {}
    for qualified in tables:
        schema, name = qualified.split(".", 1)
        query = sql.SQL(_TABLE_HASH).format(sql.Identifier(schema, name))
        rows, digest = conn.execute(query).fetchone()  # type: ignore[misc]
        result[qualified] = [int(rows), str(digest)]  # a sum may pass 2**63
    return result


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*") if p.is_file())


def dump(
    url: str,
    snap: Snapshot,
    dest: Path,
    *,
    jobs: int,
    advance: Callable[[int], None],
) -> dict[str, Any]:
    """pg_dump -Fd -j N of the snapshot, table hashes computed alongside; returns facts."""
    tool = find_tool("pg_dump", server_major=snap.server_major)
    hashes: dict[str, list[Any]] = {}
    failure: list[BaseException] = []

    def hash_tables() -> None:
        try:
            hashes.update(table_hashes(snap.conn, snap.tables))
        except BaseException as exc:
            failure.append(exc)

    hasher = threading.Thread(target=hash_tables, name="backup-table-hashes")
    hasher.start()
    seen = 0

    def tick() -> None:
        nonlocal seen
        if dest.is_dir():
            now = _folder_bytes(dest)
            advance(now - seen)
            seen = now

    run_tool(
        [
            tool,
            "--format=directory",
            f"--jobs={jobs}",
            f"--snapshot={snap.snapshot_id}",
            "--compress=1",
            "--file",
            str(dest),
        ],
        env=libpq_env(url),
        what="pg_dump",
        on_tick=tick,
    )
    tick()
    hasher.join()
    if failure:
        raise BackupToolFailed(f"reading table hashes failed: {failure[0]}")
    return {
        "method": "pg_dump",
        "format": "directory",
        "jobs": jobs,
        "snapshot_at": snap.taken_at,
        "server_version": snap.server_version,
        "tool": tool_version(tool),
        "tables": hashes,
        "bytes": seen,
    }


def _admin(url: str) -> psycopg.Connection[Any]:
    return connect(url, database="postgres", autocommit=True)


def drop_database(url: str, name: str) -> None:
    """Drop `name`, closing its sessions."""
    with _admin(url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def restore_into_fresh(url: str, source: Path, name: str, *, jobs: int, server_major: int) -> None:
    """Create database `name` and pg_restore -j N the dump into it."""
    with _admin(url) as conn:
        try:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        except psycopg.errors.InsufficientPrivilege:
            raise BackupToolFailed(
                "restore needs to create a database (CREATEDB) to restore into before it "
                "replaces the target: grant it to the role of DATABASE_URL"
            ) from None
    tool = find_tool("pg_restore", server_major=server_major)
    try:
        run_tool(
            [
                tool,
                f"--jobs={jobs}",
                # Objects belong to the restoring role; grants (to the app role) are kept.
                "--no-owner",
                "--exit-on-error",
                "--dbname",
                name,
                str(source),
            ],
            env=libpq_env(url, app="templator-restore", database=name),
            what="pg_restore",
        )
    except BaseException:
        drop_database(url, name)
        raise


def swap_in(url: str, fresh: str, target: str) -> None:
    """Give database `fresh` the name `target`, dropping the old `target` (two renames)."""
    old = f"{target[:40]}__old_{secrets.token_hex(4)}"
    with _admin(url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target,)).fetchone()
        if exists:
            ident = sql.Identifier(target)
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident))
            try:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (target,),
                )
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident, sql.Identifier(old))
                )
            except BaseException:
                conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(ident))
                raise
        try:
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(fresh), sql.Identifier(target)
                )
            )
        except BaseException:
            if exists:  # put the old database back rather than leave no target at all
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(old), sql.Identifier(target)
                    )
                )
                conn.execute(
                    sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(
                        sql.Identifier(target)
                    )
                )
            raise
        if exists:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(old)))


def missing_object_rows(url: str, present: set[str], *, database: str | None = None) -> int:
    """How many stored_objects rows point at a key not in `present`."""
    with connect(url, database=database) as conn:
        if not conn.execute("SELECT to_regclass('stored_objects')").fetchone()[0]:  # type: ignore[index]
            return 0
        keys = [row[0] for row in conn.execute("SELECT key FROM stored_objects")]
    return sum(1 for key in keys if key not in present)


def current_hashes(url: str, *, database: str) -> dict[str, list[Any]]:
    """Row counts and content hashes of every table of `database` now."""
    with connect(url, database=database) as conn:
        tables = [
            f"{schema}.{name}"
            for schema, name in conn.execute(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                "('pg_catalog', 'information_schema') ORDER BY 1, 2"
            )
        ]
        return table_hashes(conn, tables)
