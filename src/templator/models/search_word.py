"""search_words: the vocabulary of template search (every lexeme of every template's
search_vector, kept by triggers on templates), against which a misspelt query word is
spelled (pg_trgm)."""

from __future__ import annotations

from sqlalchemy import Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from templator.models.base import Base


class SearchWord(Base):
    """One lexeme some template's search document contains (or once contained)."""

    __tablename__ = "search_words"
    __table_args__ = (
        Index(
            "idx_search_words_trgm",
            "word",
            postgresql_using="gist",
            postgresql_ops={"word": "gist_trgm_ops"},
        ),
    )

    word: Mapped[str] = mapped_column(Text, primary_key=True)
