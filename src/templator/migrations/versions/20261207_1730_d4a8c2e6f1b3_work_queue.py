"""Work queue: sessions become jobs (ready, priority, attempts, leases), attempts are kept

* `ai_sessions` gains the queue's columns: `ready_at` (NULL while a draft), `priority`,
  `attempt`, `max_attempts`, `next_attempt_at` (a retry's backoff), and the lease:
  `lease_hash` (SHA-256 of the opaque token the worker holds), `worker`,
  `lease_expires_at`, and `phase_at` (when the current phase began: the per-phase timings);
* `idx_ai_sessions_ready` — (user_id, priority DESC, ready_at) WHERE the session is ready:
  a claim reads one tenant's next session in O(log n) and finds the tenants with ready
  work by skipping through it; `idx_ai_sessions_lease_expiry` — lease_expires_at WHERE
  PROCESSING: the rescuer's scan of expired leases;
* `session_attempts` — every claim (worker, times, outcome, error), at most one running
  per session (a unique partial index);
* `work_tenants` — when each tenant was last served, for the fair claim;
* `api_tokens.scopes` — `worker` tokens may only claim and work on sessions.

Existing rows: PENDING sessions are ready since their creation; PROCESSING sessions
(nobody holds a lease on them) get an expired lease, so the rescuer returns them to the
queue.

Revision ID: d4a8c2e6f1b3
Revises: a7d1e5f9c4b6
Create Date: 2026-12-07 17:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d4a8c2e6f1b3"
down_revision: str | None = "a7d1e5f9c4b6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READY = "status = 'PENDING' AND ready_at IS NOT NULL"
OUTCOMES = "'running', 'completed', 'failed', 'retry', 'lease_expired', 'released', 'cancelled'"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the queue's columns, indexes and tables."""
    op.add_column("ai_sessions", sa.Column("ready_at", TZ))
    op.add_column(
        "ai_sessions", sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0")
    )
    op.add_column(
        "ai_sessions", sa.Column("attempt", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "ai_sessions", sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="3")
    )
    op.add_column("ai_sessions", sa.Column("next_attempt_at", TZ))
    op.add_column("ai_sessions", sa.Column("lease_hash", sa.Text()))
    op.add_column("ai_sessions", sa.Column("worker", sa.Text()))
    op.add_column("ai_sessions", sa.Column("lease_expires_at", TZ))
    op.add_column("ai_sessions", sa.Column("phase_at", TZ))
    op.create_check_constraint(
        op.f("ck_ai_sessions_priority_range"), "ai_sessions", "priority BETWEEN -100 AND 100"
    )
    op.create_check_constraint(
        op.f("ck_ai_sessions_max_attempts_range"), "ai_sessions", "max_attempts BETWEEN 1 AND 20"
    )
    op.create_check_constraint(
        op.f("ck_ai_sessions_attempt_positive"), "ai_sessions", "attempt >= 0"
    )
    op.execute("UPDATE ai_sessions SET ready_at = created_at WHERE status = 'PENDING'")
    op.execute("UPDATE ai_sessions SET lease_expires_at = now() WHERE status = 'PROCESSING'")
    op.create_index(
        "idx_ai_sessions_ready",
        "ai_sessions",
        ["user_id", sa.text("priority DESC"), "ready_at"],
        postgresql_where=sa.text(READY),
    )
    op.create_index(
        "idx_ai_sessions_lease_expiry",
        "ai_sessions",
        ["lease_expires_at"],
        postgresql_where=sa.text("status = 'PROCESSING'"),
    )
    op.create_table(
        "session_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("session_id", sa.String(25), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.Text(), nullable=False),
        sa.Column("lease_hash", sa.Text(), nullable=False),
        sa.Column("claimed_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("ended_at", TZ),
        sa.Column("outcome", sa.Text(), server_default="running", nullable=False),
        sa.Column("error", postgresql.JSONB()),
        sa.CheckConstraint(f"outcome IN ({OUTCOMES})", name="outcome_known"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["ai_sessions.id"],
            name="fk_session_attempts_session_id_ai_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_session_attempts"),
    )
    op.create_index("ix_session_attempts_session_id_id", "session_attempts", ["session_id", "id"])
    op.create_index(
        "uq_session_attempts_running",
        "session_attempts",
        ["session_id"],
        unique=True,
        postgresql_where=sa.text("outcome = 'running'"),
    )
    op.create_table(
        "work_tenants",
        sa.Column("user_id", sa.String(25), nullable=False),
        sa.Column("last_claimed_at", TZ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_work_tenants_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_work_tenants"),
    )
    op.add_column(
        "api_tokens",
        sa.Column(
            "scopes",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
    )


def downgrade() -> None:
    """Drop the queue's tables, indexes and columns."""
    op.drop_column("api_tokens", "scopes")
    op.drop_table("work_tenants")
    op.drop_table("session_attempts")
    op.drop_index("idx_ai_sessions_lease_expiry", table_name="ai_sessions")
    op.drop_index("idx_ai_sessions_ready", table_name="ai_sessions")
    for name in ("attempt_positive", "max_attempts_range", "priority_range"):
        op.drop_constraint(op.f(f"ck_ai_sessions_{name}"), "ai_sessions", type_="check")
    for column in (
        "phase_at",
        "lease_expires_at",
        "worker",
        "lease_hash",
        "next_attempt_at",
        "max_attempts",
        "attempt",
        "priority",
        "ready_at",
    ):
        op.drop_column("ai_sessions", column)
