"""A private PostgreSQL with pg_stat_statements preloaded (the embedded stack's), migrated,
for tests that need query statistics the shared test server does not collect."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from templator.config import PROJECT_ROOT
from templator.dev.localstack.postgres import LocalPostgres
from templator.migrations import runner


@contextmanager
def statements_postgres() -> Iterator[str]:
    """Start one, run the migrations, yield its SQLAlchemy URL; stop and remove it after."""
    # Under the project's var/: pytest's own temporary folders are private to root, and
    # PostgreSQL runs as `postgres`.
    folder = PROJECT_ROOT / "var" / f"test-pgss-{uuid.uuid4().hex[:8]}"
    server = LocalPostgres(folder / "postgres", socket_dir=folder / "run")
    try:
        server.start()
        server.wait_ready(timeout=180)
        runner.upgrade(server.admin_url)
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
