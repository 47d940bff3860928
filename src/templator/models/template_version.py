"""template_versions: a full snapshot of a template at each version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from templator.models.base import ID_TYPE, Base, CreatedAtMixin, IdMixin
from templator.models.template import SEMVER_CHECK


class TemplateVersion(IdMixin, CreatedAtMixin, Base):
    """One version of a template: the change log and the content it had."""

    __tablename__ = "template_versions"
    __table_args__ = (
        UniqueConstraint("template_id", "version"),
        CheckConstraint(SEMVER_CHECK, name="version_semver"),
    )

    template_id: Mapped[str] = mapped_column(
        ID_TYPE, ForeignKey("templates.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[str] = mapped_column(Text, nullable=False)
    changes: Mapped[Any] = mapped_column(JSONB, nullable=False)
    content: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
