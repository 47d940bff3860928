"""users.email: NFKC-normalised before uniqueness (a fullwidth `ａ@example.com` was a
second account beside `a@example.com`)

Stored addresses are rewritten to the form the application now stores (NFKC, lowercase,
NFKC), then the database refuses any other. Two accounts whose addresses are one address
once normalised cannot be merged by a migration: it stops and names them, for an operator
to erase or rename one, and is run again.

Revision ID: e5b9c3d7a2f4
Revises: d4a8e2f61c3b
Create Date: 2026-12-07 18:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5b9c3d7a2f4"
down_revision: str | None = "d4a8e2f61c3b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NORMAL = "normalize(lower(normalize(email, NFKC)), NFKC)"
# Copies, not imports of the model's: a migration stays what it was when written.
CHECK = "email = lower(email) AND email IS NFKC NORMALIZED AND position('@' in email) > 1"
OLD_CHECK = "email = lower(email) AND position('@' in email) > 1"


def upgrade() -> None:
    """Normalise stored addresses (refusing to merge two accounts), then require it."""
    clashes = (
        op.get_bind()
        .execute(
            sa.text(
                f"SELECT {NORMAL} AS address, string_agg(id || ' ' || email, ', ') AS users "
                f"FROM users GROUP BY {NORMAL} HAVING count(*) > 1"
            )
        )
        .all()
    )
    if clashes:
        listed = "; ".join(f"{row.address}: {row.users}" for row in clashes)
        raise RuntimeError(
            "these accounts have one address once normalised (NFKC): erase or rename all "
            f"but one of each (templator user ...), then migrate again — {listed}"
        )
    op.execute(f"UPDATE users SET email = {NORMAL} WHERE email <> {NORMAL}")
    op.drop_constraint(op.f("ck_users_email"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_email"), "users", CHECK)


def downgrade() -> None:
    """The previous check (addresses keep their normalised form)."""
    op.drop_constraint(op.f("ck_users_email"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_email"), "users", OLD_CHECK)
