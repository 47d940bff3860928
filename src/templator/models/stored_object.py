"""stored_objects: every object-store key a row refers to (designs, module zips)."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from templator.models.base import ID_TYPE, Base, CreatedAtMixin, IdMixin


class StoredObject(IdMixin, CreatedAtMixin, Base):
    """An object in the bucket, written only after the object exists.

    Rows go with their session or template (ON DELETE CASCADE); the objects themselves
    are deleted after the commit, and `templator storage gc` removes any object no row
    references (an interrupted delete, a crash between upload and insert).
    """

    __tablename__ = "stored_objects"
    __table_args__ = (
        CheckConstraint("kind IN ('design', 'module')", name="kind_known"),
        CheckConstraint("size >= 0", name="size_positive"),
        Index(None, "session_id"),
        Index(None, "template_id"),
    )

    key: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    session_id: Mapped[str | None] = mapped_column(
        ID_TYPE, ForeignKey("ai_sessions.id", ondelete="CASCADE")
    )
    template_id: Mapped[str | None] = mapped_column(
        ID_TYPE, ForeignKey("templates.id", ondelete="CASCADE")
    )
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    content_type: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str | None] = mapped_column(Text)
