"""templates: generated HubSpot modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CheckConstraint, Computed, Float, ForeignKey, Index, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from templator.models.base import ID_TYPE, Base, IdMixin, TimestampMixin
from templator.models.enums import TemplateStatus, template_status_type

SEMVER_CHECK = r"version ~ '^[0-9]+\.[0-9]+\.[0-9]+$'"
# Written as Alembic reflects it back, so autogenerate sees no difference.
SEARCH_DOCUMENT = (
    "to_tsvector('english'::regconfig, (name || ' '::text) || COALESCE(description, ''::text))"
)


class Template(IdMixin, TimestampMixin, Base):
    """A generated module: HTML, CSS, JS and its HubSpot configuration."""

    __tablename__ = "templates"
    __table_args__ = (
        CheckConstraint("length(name) BETWEEN 1 AND 200", name="name_length"),
        CheckConstraint(SEMVER_CHECK, name="version_semver"),
        CheckConstraint(
            "quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 1)",
            name="quality_score_range",
        ),
        Index("idx_templates_search", "search_vector", postgresql_using="gin"),
        Index(
            "idx_templates_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        # Search's window: the newest matches (with status and tags), found without touching
        # the table.
        Index(
            "idx_templates_newest_search",
            "created_at",
            "id",
            postgresql_include=["search_vector", "status", "tags"],
        ),
        Index("idx_templates_tags", "tags", postgresql_using="gin"),
        Index(None, "project_id", "created_at"),
        Index(None, "session_id"),
        # A status's newest templates, and its newest text matches without the table.
        Index(None, "status", "created_at", "id", postgresql_include=["search_vector"]),
    )

    name: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    project_id: Mapped[str] = mapped_column(
        ID_TYPE, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    session_id: Mapped[str | None] = mapped_column(
        ID_TYPE, ForeignKey("ai_sessions.id", ondelete="SET NULL")
    )
    html_content: Mapped[str] = mapped_column(Text, nullable=False)
    css_content: Mapped[str | None] = mapped_column(Text)
    js_content: Mapped[str | None] = mapped_column(Text)
    hubspot_config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    version: Mapped[str] = mapped_column(
        Text, nullable=False, default="1.0.0", server_default="1.0.0"
    )
    status: Mapped[TemplateStatus] = mapped_column(
        template_status_type,
        nullable=False,
        default=TemplateStatus.DRAFT,
        server_default=TemplateStatus.DRAFT.value,
    )
    quality_score: Mapped[float | None] = mapped_column(Float)
    search_vector: Mapped[str | None] = mapped_column(
        TSVECTOR,
        Computed(SEARCH_DOCUMENT, persisted=True),
        doc="English full-text document of name + description, kept by PostgreSQL",
    )
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, default=list, server_default=text("'{}'::text[]")
    )
