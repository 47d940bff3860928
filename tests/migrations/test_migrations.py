"""Migrations are the only way the schema is made, they reverse cleanly, and match the models."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, create_engine, inspect, pool

from templator.migrations import runner
from templator.models import Base
from tests.support import servers

PLAN_INDEXES = {
    "ai_sessions": {
        "idx_ai_sessions_jsonb_gin",
        "idx_ai_sessions_status_created",
        "idx_ai_sessions_user_project_status",
    },
    "templates": {"idx_templates_search", "idx_templates_name_trgm", "idx_templates_tags"},
    "processing_logs": {"idx_processing_logs_session_timestamp"},
}

BEFORE_READABLE_TIMESTAMPS = "5e1f0c3a9b2d"
BEFORE_NFKC_EMAILS = "d4a8e2f61c3b"


@pytest.fixture
def scratch_url() -> Iterator[str]:
    """An empty database of the test's own."""
    name, url = servers.create_database("templator_mig")
    yield url
    servers.drop_database(name)


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _enum_types(url: str) -> set[str]:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        rows = conn.execute("SELECT typname FROM pg_type WHERE typtype = 'e'").fetchall()
    return {row[0] for row in rows}


def test_upgrade_downgrade_upgrade_round_trip(scratch_url: str) -> None:
    runner.upgrade(scratch_url)
    assert _tables(scratch_url) == set(Base.metadata.tables)
    assert runner.current_revision(scratch_url) == runner.head_revision()

    runner.downgrade(scratch_url, "base")
    assert _tables(scratch_url) == set()
    assert _enum_types(scratch_url) == set()
    assert runner.current_revision(scratch_url) is None

    runner.upgrade(scratch_url)
    assert _tables(scratch_url) == set(Base.metadata.tables)


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_plan_indexes_and_extensions_exist(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            for table, expected in PLAN_INDEXES.items():
                names = {ix["name"] for ix in inspector.get_indexes(table)}
                assert expected <= names, f"{table} lacks {expected - names}"
    finally:
        engine.dispose()
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        rows = conn.execute("SELECT extname FROM pg_extension").fetchall()
    assert {"uuid-ossp", "pg_trgm", "btree_gin"} <= {row[0] for row in rows}


def test_every_foreign_key_is_indexed(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            for table in Base.metadata.tables:
                leading = {
                    tuple(ix["column_names"][: len(fk["constrained_columns"])])
                    for ix in inspector.get_indexes(table)
                    for fk in inspector.get_foreign_keys(table)
                }
                leading |= {
                    tuple(uc["column_names"][:1]) for uc in inspector.get_unique_constraints(table)
                }
                # A primary key is an index too (work_tenants is keyed by its user).
                leading.add(tuple(inspector.get_pk_constraint(table)["constrained_columns"]))
                for fk in inspector.get_foreign_keys(table):
                    assert tuple(fk["constrained_columns"]) in leading, (table, fk["name"])
    finally:
        engine.dispose()


def test_every_model_check_constraint_exists_in_the_database(database_url: str) -> None:
    # Alembic's autogenerate does not compare CHECK constraints: compare their names here.
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            for name, table in Base.metadata.tables.items():
                declared = {
                    str(c.name) for c in table.constraints if isinstance(c, CheckConstraint)
                }
                present = {str(c["name"]) for c in inspector.get_check_constraints(name)}
                assert declared <= present, f"{name} lacks {declared - present}"
    finally:
        engine.dispose()


def test_readable_timestamps_migration_repairs_rows_and_reverses(scratch_url: str) -> None:
    runner.upgrade(scratch_url, BEFORE_READABLE_TIMESTAMPS)
    plain = scratch_url.replace("+psycopg", "")
    with psycopg.connect(plain) as conn:
        conn.execute("INSERT INTO users (id, email) VALUES ('u000000000000000000000001', 'a@b.c')")
        conn.execute(
            "INSERT INTO projects (id, user_id, name) "
            "VALUES ('p000000000000000000000001', 'u000000000000000000000001', 'P')"
        )
        conn.execute(
            "INSERT INTO ai_sessions (id, project_id, user_id) VALUES "
            "('s000000000000000000000001', 'p000000000000000000000001', "
            "'u000000000000000000000001')"
        )
        for i, stamp in enumerate(
            ["0001-01-01 00:00:00+15:00", "2026-06-01 00:00:00+00", "9999-12-31 23:00:00-05:00"]
        ):
            conn.execute(
                "INSERT INTO processing_logs (id, session_id, phase, message, timestamp) "
                "VALUES (%s, 's000000000000000000000001', 'a', 'm', %s::timestamptz)",
                (f"l00000000000000000000000{i}", stamp),
            )
    runner.upgrade(scratch_url)
    with psycopg.connect(plain) as conn:
        conn.execute("SET TIME ZONE 'Pacific/Kiritimati'")  # +14:00: the edge of readability
        stamps = conn.execute("SELECT timestamp FROM processing_logs ORDER BY id").fetchall()
    assert [row[0].year for row in stamps] == [1, 2026, 9999]
    runner.downgrade(scratch_url, BEFORE_READABLE_TIMESTAMPS)
    runner.upgrade(scratch_url)


def test_nfkc_emails_migration_normalises_rows_and_refuses_to_merge_two(
    scratch_url: str,
) -> None:
    runner.upgrade(scratch_url, BEFORE_NFKC_EMAILS)
    plain = scratch_url.replace("+psycopg", "")
    with psycopg.connect(plain) as conn:
        conn.execute(
            "INSERT INTO users (id, email) VALUES ('u000000000000000000000001', '\uff41@b.c'), "
            "('u000000000000000000000002', 'a@b.c')"
        )
    with pytest.raises(Exception, match=r"one address once normalised.*a@b\.c"):
        runner.upgrade(scratch_url)
    with psycopg.connect(plain) as conn:
        conn.execute("DELETE FROM users WHERE id = 'u000000000000000000000002'")
    runner.upgrade(scratch_url)
    with psycopg.connect(plain) as conn:
        assert conn.execute("SELECT email FROM users").fetchall() == [("a@b.c",)]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO users (id, email) VALUES ('u000000000000000000000003', '\uff42@b.c')"
            )
    runner.downgrade(scratch_url, BEFORE_NFKC_EMAILS)
    runner.upgrade(scratch_url)
