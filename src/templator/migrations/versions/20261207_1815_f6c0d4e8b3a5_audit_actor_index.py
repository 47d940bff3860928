"""audit_log.actor_id indexed, and erased users' addresses removed from the audit trail

GDPR erasure kept the erased user's e-mail address in `audit_log.actor_email` of every
entry they made. An erasure now clears it (the entry keeps `actor_id`, a random id that
names no one once the user's row is gone), by this index. Entries of users erased before
this revision are cleared here.

Revision ID: f6c0d4e8b3a5
Revises: e5b9c3d7a2f4
Create Date: 2026-12-07 18:15:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "f6c0d4e8b3a5"
down_revision: str | None = "e5b9c3d7a2f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The index; addresses of actors who no longer exist removed."""
    op.create_index(op.f("ix_audit_log_actor_id"), "audit_log", ["actor_id"])
    op.execute(
        "UPDATE audit_log a SET actor_email = NULL WHERE actor_email IS NOT NULL "
        "AND NOT EXISTS (SELECT FROM users u WHERE u.id = a.actor_id)"
    )


def downgrade() -> None:
    """Drop the index (cleared addresses stay cleared: they are gone by design)."""
    op.drop_index(op.f("ix_audit_log_actor_id"), table_name="audit_log")
