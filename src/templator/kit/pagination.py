"""Pagination: every list answers a `Page` and takes the cursor of the previous one.

Two kinds of cursor, one mechanism (fetch limit + 1 rows; the extra row says there is a
next page, `page_of` cuts it into that page's cursor):

* keyset — newest first by (created_at or timestamp, id), or highest first by a
  template's semantic version: stable under inserts, O(page) whatever the depth;
* offset — for ranked search, whose order has no key to resume from; capped at
  MAX_OFFSET so a deep page never scans the world.

Each cursor kind has a pattern the OpenAPI document states, so every cursor the
pattern admits is one this API decodes; anything else is a 422 naming `cursor`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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


def page_of(rows: list[T], *, limit: int, cursor_of: Callable[[T], str]) -> Page[T]:
    """Cut the extra row of a limit + 1 fetch into the next page's cursor, `cursor_of`
    the last row served (no extra row: the last page)."""
    if len(rows) <= limit:
        return Page(rows, None)
    items = rows[:limit]
    return Page(items, cursor_of(items[-1]))


def make_page(rows: list[T], *, params: PageParams, key: Any) -> Page[T]:
    """Cut the extra row fetched by `paginate_newest_first` into a keyset cursor.

    `key(row)` returns the row's (created_at, id).
    """
    return page_of(rows, limit=params.limit, cursor_of=lambda row: encode_cursor(*key(row)))


# --- keyset on a semantic version (a template's versions, highest first) -----------------

VERSION_CURSOR_PATTERN = r"^\d{1,6}\.\d{1,6}\.\d{1,6}$"
"""A version page's cursor is the last version served."""
_VERSION_CURSOR = re.compile(VERSION_CURSOR_PATTERN)


def decode_version_cursor(cursor: str) -> list[int]:
    """The (major, minor, patch) after which the next page starts; InvalidCursor if bad."""
    if not _VERSION_CURSOR.match(cursor):
        raise InvalidCursor
    return [int(part) for part in cursor.split(".")]


# --- offset (ranked search) -------------------------------------------------------------

MAX_OFFSET = 10_000
"""The last page an offset cursor serves starts here."""
OFFSET_CURSOR_PATTERN = r"^(?:\d{1,4}|10000)$"
"""An offset page's cursor is the offset of its first row (0..MAX_OFFSET)."""
_OFFSET_CURSOR = re.compile(OFFSET_CURSOR_PATTERN)


def decode_offset(cursor: str | None) -> int:
    """The offset an offset cursor names (0 without one); InvalidCursor if bad."""
    if cursor is None:
        return 0
    if not _OFFSET_CURSOR.match(cursor):
        raise InvalidCursor
    return int(cursor)


def offset_page(rows: list[T], *, offset: int, limit: int) -> Page[T]:
    """Cut a limit + 1 fetch at `offset` into a page whose cursor is the next offset
    (none past MAX_OFFSET)."""
    more = len(rows) > limit and offset + limit <= MAX_OFFSET
    return Page(rows[:limit], str(offset + limit) if more else None)
