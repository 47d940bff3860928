"""user_search_words: spelling correction from the asking user's own vocabulary

A misspelt word of a query was replaced by the nearest word of a vocabulary built from
every user's templates: a user could learn whether someone else's template contained a
word (search "secrat", see it corrected to "secret"). Each user now has a vocabulary of
their own templates' words, kept by triggers on templates beside the global one, which
only ADMIN's searches (over every template) use.

Revision ID: a7d1e5f9c4b6
Revises: f6c0d4e8b3a5
Create Date: 2026-12-07 18:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7d1e5f9c4b6"
down_revision: str | None = "f6c0d4e8b3a5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As search_words: letters only, at least three. Words are inserted in sorted order, so
# two transactions adding the same new words take their locks in the same order.
WORD = "^[[:alpha:]]{3,}$"
_ADD_INSERTED = f"""
CREATE FUNCTION user_search_words_add_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_search_words (user_id, word)
    SELECT DISTINCT p.user_id, w
    FROM inserted_rows i JOIN projects p ON p.id = i.project_id,
         unnest(tsvector_to_array(i.search_vector)) AS w
    WHERE w ~ '{WORD}'
      AND NOT EXISTS (SELECT FROM user_search_words s WHERE s.user_id = p.user_id AND s.word = w)
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$
"""
_ADD_UPDATED = f"""
CREATE FUNCTION user_search_words_add_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_search_words (user_id, word)
    SELECT p.user_id, w
    FROM projects p, unnest(tsvector_to_array(NEW.search_vector)) AS w
    WHERE p.id = NEW.project_id AND w ~ '{WORD}'
      AND NOT EXISTS (SELECT FROM user_search_words s WHERE s.user_id = p.user_id AND s.word = w)
    ORDER BY 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    """The table (filled from the templates there are), its KNN index and triggers."""
    op.create_table(
        "user_search_words",
        sa.Column("user_id", sa.String(length=25), nullable=False),
        sa.Column("word", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_search_words_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "word", name=op.f("pk_user_search_words")),
    )
    op.execute(
        "INSERT INTO user_search_words (user_id, word) "
        "SELECT DISTINCT p.user_id, w FROM templates t JOIN projects p ON p.id = t.project_id, "
        f"unnest(tsvector_to_array(t.search_vector)) AS w WHERE w ~ '{WORD}' ORDER BY 1, 2"
    )
    # GIN over (user_id, word trigrams): btree_gin (created with the schema; the
    # migration role may not create extensions) takes the user, pg_trgm the `%` match.
    op.create_index(
        "idx_user_search_words_trgm",
        "user_search_words",
        ["user_id", "word"],
        postgresql_using="gin",
        postgresql_ops={"word": "gin_trgm_ops"},
    )
    op.execute(_ADD_INSERTED)
    op.execute(_ADD_UPDATED)
    op.execute(
        "CREATE TRIGGER user_search_words_on_insert AFTER INSERT ON templates "
        "REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION user_search_words_add_inserted()"
    )
    op.execute(
        "CREATE TRIGGER user_search_words_on_update AFTER UPDATE OF name, description "
        "ON templates FOR EACH ROW WHEN (OLD.search_vector IS DISTINCT FROM NEW.search_vector) "
        "EXECUTE FUNCTION user_search_words_add_updated()"
    )


def downgrade() -> None:
    """Drop the triggers, their functions and the table."""
    op.execute("DROP TRIGGER user_search_words_on_update ON templates")
    op.execute("DROP TRIGGER user_search_words_on_insert ON templates")
    op.execute("DROP FUNCTION user_search_words_add_updated()")
    op.execute("DROP FUNCTION user_search_words_add_inserted()")
    op.drop_table("user_search_words")
