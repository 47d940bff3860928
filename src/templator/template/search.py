"""Template search: full-text (English), fuzzy name, tags, status and project — ranked.

Every predicate is served by an index: the full-text document matches the expression
index idx_templates_search, `name % q` uses the trigram index idx_templates_name_trgm,
`tags @> …` the GIN index idx_templates_tags, status/project their b-tree indexes.
Text and fuzzy matches are OR-ed (a bitmap OR of two GIN scans).

rank = ts_rank_cd(document, query) + similarity(name, q); without a text query, newest
first. Pages are rank-ordered; the opaque cursor carries the offset (capped at
MAX_OFFSET so a deep page never scans the world).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from pydantic import Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from templator.exceptions import ValidationFailed
from templator.kit.actor import Actor
from templator.kit.pagination import MAX_LIMIT, Page
from templator.kit.raw import driver_connection
from templator.kit.validation import RequestModel
from templator.models.enums import TemplateStatus
from templator.template.schemas import TAG_PATTERN, TemplateSummary

MAX_OFFSET = 10_000
DOCUMENT = (
    "to_tsvector('english'::regconfig, (t.name || ' '::text) || COALESCE(t.description, ''::text))"
)


class TemplateQuery(RequestModel):
    """Search filters."""

    q: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=20)
    status: TemplateStatus | None = None
    project_id: str | None = Field(default=None, pattern=r"^[a-z][0-9a-z]{24}$")
    fuzzy: bool = True
    limit: int = Field(default=20, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=200)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        cleaned = [t.strip().lower() for t in value]
        bad = [t for t in cleaned if not TAG_PATTERN.match(t)]
        if bad:
            raise ValueError(f"tag {bad[0]!r} must be 1-50 characters of a-z, 0-9 and -")
        return cleaned


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        offset = int(orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["o"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise ValidationFailed("invalid pagination cursor", field="cursor") from None
    if not 0 <= offset <= MAX_OFFSET:
        raise ValidationFailed(f"search pages stop at {MAX_OFFSET:,} results", field="cursor")
    return offset


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"o": offset})).decode().rstrip("=")


def build_query(actor: Actor, query: TemplateQuery, *, offset: int) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of a search (exposed for EXPLAIN in tests and benchmarks)."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": query.limit + 1, "offset": offset}
    rank = "0"
    order = "t.created_at DESC, t.id DESC"
    if query.q:
        params["q"] = query.q
        text_match = f"{DOCUMENT} @@ websearch_to_tsquery('english', %(q)s)"
        if query.fuzzy:
            where.append(f"({text_match} OR t.name %% %(q)s)")
            rank = (
                f"ts_rank_cd({DOCUMENT}, websearch_to_tsquery('english', %(q)s)) "
                "+ similarity(t.name, %(q)s)"
            )
        else:
            where.append(text_match)
            rank = f"ts_rank_cd({DOCUMENT}, websearch_to_tsquery('english', %(q)s))"
        order = "rank DESC, t.id DESC"
    if query.tags:
        where.append("t.tags @> %(tags)s::text[]")
        params["tags"] = query.tags
    if query.status:
        where.append("t.status = %(status)s::template_status")
        params["status"] = query.status.value
    if query.project_id:
        where.append("t.project_id = %(project)s")
        params["project"] = query.project_id
    if not actor.is_admin:
        owner = "t.project_id IN (SELECT id FROM projects WHERE user_id = %(actor)s)"
        if actor.can_review:
            owner = f"({owner} OR t.status IN ('REVIEW', 'APPROVED', 'PUBLISHED'))"
        where.append(owner)
        params["actor"] = actor.id
    sql = (
        "SELECT t.id, t.project_id, t.name, t.description, t.status, t.version, t.tags, "
        f"({rank})::float8 AS rank, t.updated_at FROM templates t "
        f"{'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
    )
    return sql, params


async def search_templates(
    session: AsyncSession, actor: Actor, query: TemplateQuery
) -> Page[TemplateSummary]:
    """Ranked, filtered, paginated templates the actor may see."""
    offset = _offset(query.cursor)
    sql, params = build_query(actor, query, offset=offset)
    raw = await driver_connection(session)
    async with raw.cursor() as cursor:
        await cursor.execute(sql, params)
        rows = await cursor.fetchall()
    items = [
        TemplateSummary.model_construct(
            id=r[0],
            project_id=r[1],
            name=r[2],
            description=r[3],
            status=TemplateStatus(r[4]),
            version=r[5],
            tags=list(r[6]),
            rank=float(r[7]),
            updated_at=r[8],
        )
        for r in rows[: query.limit]
    ]
    more = len(rows) > query.limit and offset + query.limit <= MAX_OFFSET
    return Page(items, _cursor(offset + query.limit) if more else None)
