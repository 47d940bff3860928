"""processing_logs.timestamp: only values every reader can read back (CHECK), repaired

A log line stamped before year 1 or after year 9999 (in UTC, or once converted to a
session's time zone) was stored, and from then on every read of that session's log and
every export of its user failed in the driver. Rows already stored are clamped to the
nearest readable instant (their order is kept), then the database refuses such values.

Revision ID: 9c4d2e7f1a6b
Revises: 5e1f0c3a9b2d
Create Date: 2026-12-01 11:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "9c4d2e7f1a6b"
down_revision: str | None = "5e1f0c3a9b2d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EARLIEST = "'0001-01-02 00:00:00+00'::timestamptz"
LATEST = "'9999-12-20 00:00:00+00'::timestamptz"
# A copy, not an import of the model's: a migration stays what it was when written.
CHECK = "timestamp >= '0001-01-02 00:00:00+00' AND timestamp <= '9999-12-20 00:00:00+00'"


def upgrade() -> None:
    """Clamp unreadable timestamps, then refuse them."""
    op.execute(
        f"UPDATE processing_logs SET timestamp = LEAST(GREATEST(timestamp, {EARLIEST}), {LATEST}) "
        f"WHERE timestamp < {EARLIEST} OR timestamp > {LATEST}"
    )
    op.create_check_constraint("timestamp_readable", "processing_logs", CHECK)


def downgrade() -> None:
    """Drop the constraint (repaired rows keep their clamped timestamps)."""
    op.drop_constraint("timestamp_readable", "processing_logs", type_="check")
