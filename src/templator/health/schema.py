"""Readiness of the schema: the database's Alembic revision against the code's head.

An API whose database is behind its code answers with columns missing; readiness says so
until the `migrate` step has run. The head is read from the migration scripts once per
process; the database's revision is read on every check until it matches, then trusted
for `ttl` seconds (it only moves forward on a deploy), so a busy readiness probe costs no
query most of the time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from templator.health.revisions import SchemaBehind, script_revisions


class SchemaCheck:
    """A cached comparison of `alembic_version` with the migration scripts' head."""

    def __init__(self, *, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._scripts: tuple[str | None, frozenset[str]] | None = None
        self._current_until = 0.0
        self._details: dict[str, Any] = {}

    async def probe(self, engine: AsyncEngine) -> dict[str, Any]:
        """Details when the schema is at (or, during a rolling deploy, past) the code's head;
        SchemaBehind naming both revisions otherwise."""
        if self._scripts is None:
            self._scripts = await asyncio.to_thread(script_revisions)
        head, known = self._scripts
        if time.monotonic() < self._current_until:
            return self._details
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        except DBAPIError as exc:
            if "alembic_version" not in str(exc):
                raise
            rows = []
        current = sorted(row[0] for row in rows)
        if head is not None and head not in current:
            unknown = [rev for rev in current if rev not in known]
            if not current or not unknown:
                raise SchemaBehind(
                    f"database at revision {', '.join(current) or 'none (never migrated)'}, "
                    f"the code expects {head}: run `templator db migrate`"
                )
            # A revision our scripts do not know: newer code migrated it (a rolling
            # deploy); this process still works with the columns it knows.
            self._details = {"revision": current, "head": head, "ahead": True}
        else:
            self._details = {"revision": current, "head": head}
        self._current_until = time.monotonic() + self.ttl
        return self._details
