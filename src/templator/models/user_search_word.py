"""user_search_words: each user's own search vocabulary (every lexeme of their templates'
search_vector, kept by triggers on templates), against which a misspelt word of that
user's query is spelled. A user's spelling never draws on another user's templates, so
a correction cannot tell whether someone else's template contains a word (issue #21);
ADMIN, who may search every template, is spelled against `search_words`."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from templator.models.base import ID_TYPE, Base


class UserSearchWord(Base):
    """One lexeme some template of the user's contains (or once contained)."""

    __tablename__ = "user_search_words"
    __table_args__ = (
        # One user's words alike a given one (btree_gin for user_id, pg_trgm's `%`).
        Index(
            "idx_user_search_words_trgm",
            "user_id",
            "word",
            postgresql_using="gin",
            postgresql_ops={"word": "gin_trgm_ops"},
        ),
    )

    user_id: Mapped[str] = mapped_column(
        ID_TYPE, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    word: Mapped[str] = mapped_column(Text, primary_key=True)
