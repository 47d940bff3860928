"""Bounded search: the newest matches walk an index, typos are spelled against a vocabulary

Search cost grew with the table: every full-text match was ranked before the LIMIT, and
the fuzzy branch's trigram KNN over template names read the whole GiST index when no name
was near the query (13k pages at 1M templates). Now

* `idx_templates_newest_search` — (created_at, id) INCLUDE (search_vector, status,
  tags): a search ranks only the newest SEARCH_RANK_WINDOW matches, found by walking this
  index backwards without touching the table (an index-only scan, also with status and
  tag filters), so its cost follows the window and how common the terms are, not the
  number of rows. The walk starts at the newest rows, whose pages are the last to be
  marked all-visible, so templates is vacuumed after 1 % of it is new (autovacuum's
  default waits for 20 %: 200,000 rows at 1M, each fetched from the table meanwhile);
* `ix_templates_status_created_at_id` — (status, created_at, id) INCLUDE (search_vector),
  in place of (status, created_at): the same walk within one status, index-only (a text
  search with a status filter read 66,000 entries of the index above at 1M templates,
  40–54 ms; this one 13,000, 9 ms);
* `search_words` — every lexeme of every template's search_vector, kept by triggers (the
  vocabulary pg_trgm's documentation pairs with full-text search to correct misspelt
  words): a misspelt word of a query is replaced by the nearest word templates contain
  (GiST trigram KNN over the vocabulary, which grows with the language, not the rows);
* `idx_templates_name_trgm_knn` is dropped: nothing orders by name distance any more.

Revision ID: b7e3a1c5d9f2
Revises: 9c4d2e7f1a6b
Create Date: 2026-12-01 17:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e3a1c5d9f2"
down_revision: str | None = "9c4d2e7f1a6b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTOVACUUM_OPTIONS = {
    "autovacuum_vacuum_insert_scale_factor": "0.01",
    "autovacuum_vacuum_insert_threshold": "1000",
    "autovacuum_vacuum_scale_factor": "0.05",
}
AUTOVACUUM = ", ".join(f"{k} = {v}" for k, v in AUTOVACUUM_OPTIONS.items())
# The vocabulary holds the words a query's words are spelled against: letters only, at
# least three (the spelling of "ui" or "v2" is not corrected). Known words are skipped
# before the insert (about 20 us per template insert in all, against 70 us without).
WORD = "^[[:alpha:]]{3,}$"
# Words are inserted in sorted order, so two transactions adding the same new words take
# their locks in the same order (ON CONFLICT waits for the other's uncommitted row).
_ADD_INSERTED = """
CREATE FUNCTION search_words_add_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_words (word)
    SELECT DISTINCT w FROM inserted_rows, unnest(tsvector_to_array(search_vector)) AS w
    WHERE w ~ '^[[:alpha:]]{3,}$' AND NOT EXISTS (SELECT FROM search_words s WHERE s.word = w)
    ORDER BY w
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$
"""
_ADD_UPDATED = """
CREATE FUNCTION search_words_add_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_words (word)
    SELECT w FROM unnest(tsvector_to_array(NEW.search_vector)) AS w
    WHERE w ~ '^[[:alpha:]]{3,}$' AND NOT EXISTS (SELECT FROM search_words s WHERE s.word = w)
    ORDER BY w
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    """The window's indexes, the vocabulary (filled from the templates there are) and its
    triggers; drop the name-KNN index."""
    op.create_index(
        "idx_templates_newest_search",
        "templates",
        ["created_at", "id"],
        postgresql_include=["search_vector", "status", "tags"],
    )
    op.drop_index("ix_templates_status_created_at", table_name="templates")
    op.create_index(
        "ix_templates_status_created_at_id",
        "templates",
        ["status", "created_at", "id"],
        postgresql_include=["search_vector"],
    )
    op.execute(f"ALTER TABLE templates SET ({AUTOVACUUM})")
    op.create_table(
        "search_words",
        sa.Column("word", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("word", name=op.f("pk_search_words")),
    )
    op.create_index(
        "idx_search_words_trgm",
        "search_words",
        ["word"],
        postgresql_using="gist",
        postgresql_ops={"word": "gist_trgm_ops"},
    )
    op.execute(
        "INSERT INTO search_words (word) "
        "SELECT word FROM ts_stat('SELECT search_vector FROM templates') "
        f"WHERE word ~ '{WORD}' ORDER BY word"
    )
    op.execute(_ADD_INSERTED)
    op.execute(_ADD_UPDATED)
    op.execute(
        "CREATE TRIGGER search_words_on_insert AFTER INSERT ON templates "
        "REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION search_words_add_inserted()"
    )
    op.execute(
        "CREATE TRIGGER search_words_on_update AFTER UPDATE OF name, description ON templates "
        "FOR EACH ROW WHEN (OLD.search_vector IS DISTINCT FROM NEW.search_vector) "
        "EXECUTE FUNCTION search_words_add_updated()"
    )
    op.drop_index("idx_templates_name_trgm_knn", table_name="templates", postgresql_using="gist")


def downgrade() -> None:
    """Back to the name-KNN index; the vocabulary and the window's index go."""
    op.create_index(
        "idx_templates_name_trgm_knn",
        "templates",
        ["name"],
        postgresql_using="gist",
        postgresql_ops={"name": "gist_trgm_ops"},
    )
    op.execute(f"ALTER TABLE templates RESET ({', '.join(AUTOVACUUM_OPTIONS)})")
    op.execute("DROP TRIGGER search_words_on_update ON templates")
    op.execute("DROP TRIGGER search_words_on_insert ON templates")
    op.execute("DROP FUNCTION search_words_add_updated()")
    op.execute("DROP FUNCTION search_words_add_inserted()")
    op.drop_table("search_words")
    op.drop_index("idx_templates_newest_search", table_name="templates")
    op.drop_index("ix_templates_status_created_at_id", table_name="templates")
    op.create_index("ix_templates_status_created_at", "templates", ["status", "created_at"])
