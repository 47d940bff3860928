"""Shared declarative base: constraint naming convention, id and timestamp columns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, FetchedValue, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from templator.kit.ids import ID_LENGTH, new_id

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_TYPE = String(ID_LENGTH)


class Base(DeclarativeBase):
    """Declarative base for every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    """A cuid-like string primary key, generated in Python."""

    id: Mapped[str] = mapped_column(ID_TYPE, primary_key=True, default=new_id, sort_order=-100)


class CreatedAtMixin:
    """`created_at`, set by the database."""

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), sort_order=100
    )


class TimestampMixin(CreatedAtMixin):
    """`created_at` and `updated_at`; a trigger keeps `updated_at` current on every UPDATE."""

    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        server_onupdate=FetchedValue(),
        sort_order=101,
    )
