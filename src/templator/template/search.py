"""Template search: full-text (English), fuzzy name, tags, status and project — ranked.

Every predicate is served by an index: the stored full-text document `search_vector`
(English, name + description) has the GIN index idx_templates_search; fuzzy name
matching walks the GiST trigram index; `tags @> …` uses the GIN index
idx_templates_tags, status/project their b-tree indexes.

rank = ts_rank_cd(search_vector, query) + similarity(name, q); without a text query,
newest first. Fuzzy candidates are the KNN_CANDIDATES names nearest to q by trigram
distance (a GiST KNN scan, idx_templates_name_trgm_knn) with similarity >= 0.3, so a typo
finds its template without rechecking every name that shares a trigram with it; and they
join in only when the full-text hits do not fill the page. Pages are rank-ordered; the
opaque cursor carries the offset (capped at MAX_OFFSET so a deep page never scans the
world).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from templator.kit.actor import Actor
from templator.kit.pagination import MAX_LIMIT, InvalidCursor, Page
from templator.kit.raw import driver_connection
from templator.kit.validation import RequestModel
from templator.models.enums import TemplateStatus
from templator.template.schemas import TAG_PATTERN, TemplateSummary

MAX_OFFSET = 10_000
DOCUMENT = "t.search_vector"


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


SEARCH_CURSOR = r"^(?:\d{1,4}|10000)$"
"""A search page's cursor is the offset of its first hit (pages are ranked, not keyed)."""
_SEARCH_CURSOR = re.compile(SEARCH_CURSOR)


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not _SEARCH_CURSOR.match(cursor):
        raise InvalidCursor
    return int(cursor)


def _cursor(offset: int) -> str | None:
    # The last page a search serves starts at MAX_OFFSET.
    return str(offset) if offset <= MAX_OFFSET else None


KNN_CANDIDATES = 50
MIN_SIMILARITY = 0.3


def build_query(actor: Actor, query: TemplateQuery, *, offset: int) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of a search (exposed for EXPLAIN in tests and benchmarks)."""
    filters: list[str] = []
    params: dict[str, Any] = {"limit": query.limit + 1, "offset": offset}
    if query.tags:
        filters.append("t.tags @> %(tags)s::text[]")
        params["tags"] = query.tags
    if query.status:
        filters.append("t.status = %(status)s::template_status")
        params["status"] = query.status.value
    if query.project_id:
        filters.append("t.project_id = %(project)s")
        params["project"] = query.project_id
    if not actor.is_admin:
        owner = "t.project_id IN (SELECT id FROM projects WHERE user_id = %(actor)s)"
        if actor.can_review:
            owner = f"({owner} OR t.status IN ('REVIEW', 'APPROVED', 'PUBLISHED'))"
        filters.append(owner)
        params["actor"] = actor.id
    rank = "0"
    order = "t.created_at DESC, t.id DESC"
    where = list(filters)
    if query.q:
        params["q"] = query.q
        tsquery = "websearch_to_tsquery('english', %(q)s)"
        text_match = f"{DOCUMENT} @@ {tsquery}"
        rank = f"ts_rank_cd({DOCUMENT}, {tsquery})"
        if query.fuzzy:
            # Full-text hits, plus the names nearest to q by trigram distance (GiST KNN),
            # each branch on its own index.
            scoped = " AND ".join(filters) if filters else "TRUE"
            params.update(knn=KNN_CANDIDATES, similarity=MIN_SIMILARITY)
            where.append(
                "t.id IN ("
                f"SELECT t.id FROM templates t WHERE {text_match} AND {scoped} "
                "UNION "
                "SELECT k.id FROM (SELECT t.id, t.name FROM templates t "
                f"WHERE {scoped} ORDER BY t.name <-> %(q)s LIMIT %(knn)s) k "
                "WHERE similarity(k.name, %(q)s) >= %(similarity)s)"
            )
            rank = f"{rank} + similarity(t.name, %(q)s)"
        else:
            where.append(text_match)
        order = "rank DESC, t.id DESC"
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
    raw = await driver_connection(session)
    if query.q and query.fuzzy:
        # Fuzzy candidates join in only where the full-text match is thin: a query with
        # plenty of full-text hits never pays for the trigram walk.
        exact = query.model_copy(update={"fuzzy": False})
        sql, params = build_query(actor, exact, offset=0)
        probe = f"SELECT count(*) FROM ({sql.split(' ORDER BY ')[0]} LIMIT %(enough)s) AS hits"
        async with raw.cursor() as cursor:
            await cursor.execute(probe, {**params, "enough": offset + query.limit + 1})
            row = await cursor.fetchone()
        if row is not None and row[0] > offset + query.limit:
            query = exact
    sql, params = build_query(actor, query, offset=offset)
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
