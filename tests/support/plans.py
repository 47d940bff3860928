"""PostgreSQL plans as the tests read them: EXPLAIN (FORMAT JSON) and its nodes."""

from __future__ import annotations

from typing import Any

import psycopg


def explain(dsn: str, sql: str, params: dict[str, Any], *, analyze: bool = False) -> dict[str, Any]:
    """The top plan node of `sql` (run as well with `analyze`), on a libpq DSN or a
    SQLAlchemy psycopg URL."""
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    with psycopg.connect(dsn.replace("+psycopg", "")) as conn:
        row = conn.execute(f"EXPLAIN ({options}) {sql}", params).fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0][0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The node and every node under it, depth first."""
    out = [plan]
    for child in plan.get("Plans", []):
        out += nodes(child)
    return out
