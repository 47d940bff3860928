"""auth_epoch: one counter that every security change (a token revoked, a role changed,
a user erased) bumps in its own transaction. A cached token record carries the epoch it
was read at and is believed only at that epoch (docs/security.md, "The cache")."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, CheckConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from templator.models.base import Base


class AuthEpoch(Base):
    """The single row holding the current authentication epoch."""

    __tablename__ = "auth_epoch"
    __table_args__ = (CheckConstraint("one", name="single_row"),)

    one: Mapped[bool] = mapped_column(
        Boolean, primary_key=True, default=True, server_default=text("true")
    )
    epoch: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1, server_default="1")
