"""auth_epoch: the generation every cached token record must carry to be believed

A revocation, a role change or an erasure used to reach the cache only by a post-commit
invalidation in Redis; when Redis was paused or restarting, that invalidation was lost and
the old record was believed again once Redis returned. Now each of those changes also
bumps this one-row counter in its own transaction; a cached token record is stamped with
the epoch it was read at and believed only while that is still the current epoch, which
every API process learns from PostgreSQL (LISTEN/NOTIFY on `templator_auth_epoch`).

Revision ID: d4a8e2f61c3b
Revises: b7e3a1c5d9f2
Create Date: 2026-12-07 17:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4a8e2f61c3b"
down_revision: str | None = "b7e3a1c5d9f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The table and its single row."""
    op.create_table(
        "auth_epoch",
        sa.Column("one", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("epoch", sa.BigInteger(), server_default="1", nullable=False),
        sa.CheckConstraint("one", name=op.f("ck_auth_epoch_single_row")),
        sa.PrimaryKeyConstraint("one", name=op.f("pk_auth_epoch")),
    )
    op.execute("INSERT INTO auth_epoch (one, epoch) VALUES (true, 1)")


def downgrade() -> None:
    """Drop the table (cached records are then trusted by their Redis generation alone)."""
    op.drop_table("auth_epoch")
