"""Keyset (cursor) pagination: stable under inserts, O(page) whatever the depth."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import Field
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from templator.exceptions import ValidationFailed
from templator.kit.validation import RequestModel

T = TypeVar("T")
S = TypeVar("S", bound=Select[*tuple[Any, ...]])

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

# A cursor is the last row's (created_at, id): microseconds since 0001-01-01T00:00Z, 18
# digits, a dot, the id. A format the OpenAPI document can state as a pattern, so every
# cursor the pattern admits is one this API decodes (up to 9999-12-21, past any row the
# database holds: ck_processing_logs_timestamp_readable stops at 9999-12-20).
CURSOR_PATTERN = (
    r"^(?:[0-2]\d{17}|30\d{16}|31[0-4]\d{15}|315[0-4]\d{14}|3155[0-2]\d{13}|31553[0-6]\d{12})"
    r"\.[a-z][0-9a-z]{24}$"
)
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


class InvalidCursor(ValidationFailed):
    """A cursor this API did not make (or one that was altered)."""

    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("invalid pagination cursor: pass a next_cursor unchanged", field="cursor")


class PageParams(RequestModel):
    """What a caller asks for: a page size and the cursor of the previous page."""

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=512)
    """Checked by the service that reads it: its format depends on the list."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results and the cursor of the next one (None at the end)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(created_at: datetime, row_id: str) -> str:
    """An opaque cursor for the row after which the next page starts."""
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros:018d}.{row_id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Parse a cursor made by `encode_cursor`; a tampered one is a 422 naming `cursor`."""
    if not _CURSOR.match(cursor):
        raise InvalidCursor
    micros, row_id = cursor.split(".")
    return _EPOCH + timedelta(microseconds=int(micros)), row_id


def paginate_newest_first(
    stmt: S,
    *,
    created_at: InstrumentedAttribute[datetime],
    id_column: InstrumentedAttribute[str],
    params: PageParams,
) -> S:
    """Order newest first by (created_at, id) and start after the cursor; fetch limit + 1."""
    if params.cursor:
        stamp, row_id = decode_cursor(params.cursor)
        stmt = stmt.where(or_(created_at < stamp, and_(created_at == stamp, id_column < row_id)))
    return stmt.order_by(created_at.desc(), id_column.desc()).limit(params.limit + 1)


def make_page(rows: list[T], *, params: PageParams, key: Any) -> Page[T]:
    """Cut the extra row fetched by `paginate_newest_first` into a next cursor.

    `key(row)` returns the row's (created_at, id).
    """
    if len(rows) <= params.limit:
        return Page(rows, None)
    items = rows[: params.limit]
    stamp, row_id = key(items[-1])
    return Page(items, encode_cursor(stamp, row_id))
