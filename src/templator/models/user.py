"""users: people who use Templator."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from templator.models.base import Base, IdMixin, TimestampMixin
from templator.models.enums import UserRole, user_role_type


class User(IdMixin, TimestampMixin, Base):
    """A Templator user; deleting one removes everything that is theirs."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "email = lower(email) AND email IS NFKC NORMALIZED AND position('@' in email) > 1",
            name="email",
        ),
    )

    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[UserRole] = mapped_column(
        user_role_type, nullable=False, default=UserRole.USER, server_default=UserRole.USER.value
    )
