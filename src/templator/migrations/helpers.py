"""Building blocks that migrations share: extensions and the updated_at trigger."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

log = logging.getLogger("templator.migrations")

EXTENSIONS = ("uuid-ossp", "pg_trgm", "btree_gin")


def create_extensions() -> None:
    """Create the extensions the schema uses (EXTENSIONS); pg_stat_statements only where
    the server preloads it."""
    for name in EXTENSIONS:
        op.execute(sa.text(f'CREATE EXTENSION IF NOT EXISTS "{name}"'))
    bind = op.get_bind()
    preload = bind.execute(sa.text("SHOW shared_preload_libraries")).scalar_one()
    if "pg_stat_statements" in preload:
        op.execute(sa.text('CREATE EXTENSION IF NOT EXISTS "pg_stat_statements"'))
    else:
        log.warning(
            "pg_stat_statements is not in shared_preload_libraries on this server: the "
            "extension was not created and query statistics will be unavailable. Add "
            "shared_preload_libraries = 'pg_stat_statements' to postgresql.conf, restart, "
            "and run `templator db migrate` again."
        )


def create_updated_at_trigger(table: str) -> None:
    """Keep `table.updated_at` current on every UPDATE, raw SQL included."""
    op.execute(
        sa.text(
            """
            CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                NEW.updated_at := now();
                RETURN NEW;
            END;
            $$
            """
        )
    )
    op.execute(
        sa.text(
            f"CREATE TRIGGER trg_{table}_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )
    )


def drop_updated_at_trigger(table: str) -> None:
    """Undo `create_updated_at_trigger`."""
    op.execute(sa.text(f"DROP TRIGGER IF EXISTS trg_{table}_updated_at ON {table}"))


def drop_updated_at_function() -> None:
    """Drop the shared trigger function once no trigger uses it."""
    op.execute(sa.text("DROP FUNCTION IF EXISTS set_updated_at()"))
