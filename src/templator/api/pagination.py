"""List responses: one page and the cursor of the next."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from templator.kit.pagination import (
    CURSOR_PATTERN,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    VERSION_CURSOR_PATTERN,
    Page,
    PageParams,
)

T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    """A page of results; pass `next_cursor` as `cursor` for the next one (null at the end)."""

    items: list[T]
    next_cursor: str | None


def to_page_out(page: Page[T]) -> PageOut[T]:
    """Service page → API page."""
    return PageOut[T](items=page.items, next_cursor=page.next_cursor)


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]


async def page_params(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description="The previous page's next_cursor")
    ] = None,
) -> PageParams:
    """Pagination query parameters."""
    return PageParams(limit=limit, cursor=cursor)


Paging = Annotated[PageParams, Depends(page_params)]


async def version_page_params(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(
            pattern=VERSION_CURSOR_PATTERN,
            description="The previous page's next_cursor (a version)",
        ),
    ] = None,
) -> PageParams:
    """Pagination of a template's versions, whose cursor is the last version seen."""
    return PageParams(limit=limit, cursor=cursor)


VersionPaging = Annotated[PageParams, Depends(version_page_params)]
