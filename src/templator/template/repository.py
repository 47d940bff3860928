"""All SQL about templates and their versions, search included.

Creating a template (with its version 1.0.0, in one statement) and loading one by id
are hot paths: raw psycopg on the session's own connection (kit/raw.py). The rest is
SQLAlchemy Core, but for search. `lock` takes the template row FOR UPDATE, so concurrent
edits of one template serialise; the unique (template_id, version) constraint is the last
line of defence, and `update_with_version` lets its IntegrityError through to the service.

Search — full-text (English), fuzzy name, tags, status and project, ranked — has every
predicate served by an index: the stored full-text document `search_vector` (English,
name + description) has the GIN index idx_templates_search; fuzzy name matching walks
the GiST trigram index; `tags @> …` uses the GIN index idx_templates_tags, status/project
their b-tree indexes. rank = ts_rank_cd(search_vector, query) + similarity(name, q);
without a text query, newest first. Fuzzy candidates are the KNN_CANDIDATES names
nearest to q by trigram distance (a GiST KNN scan, idx_templates_name_trgm_knn) with
similarity >= MIN_SIMILARITY, so a typo finds its template without rechecking every name
that shares a trigram with it; and they join in only when the full-text hits do not fill
the page. Pages are rank-ordered, so their cursor is an offset (kit/pagination.py).
"""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Integer, cast, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from templator.auth.repository import TokenLookup, lookup_sql
from templator.kit.actor import Actor
from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, page_of, paginate_newest_first
from templator.kit.raw import driver_connection
from templator.models import Project, StoredObject, TemplateStatus
from templator.models import Template as TemplateRow
from templator.models import TemplateVersion as VersionRow
from templator.postgres import ReadPool
from templator.template import schemas

_COLUMNS = [c for c in TemplateRow.__table__.columns if c.name != "search_vector"]
_COLUMN_NAMES = [c.name for c in _COLUMNS]
_INSERT_WITH_VERSION = f"""
WITH created AS (
    INSERT INTO templates (id, version, project_id, session_id, name, description,
        html_content, css_content, js_content, hubspot_config, tags, quality_score)
    VALUES (%(id)s, '1.0.0', %(project_id)s, %(session_id)s, %(name)s, %(description)s,
        %(html_content)s, %(css_content)s, %(js_content)s, %(hubspot_config)s,
        %(tags)s::text[], %(quality_score)s)
    RETURNING {", ".join(_COLUMN_NAMES)}
), version AS (
    INSERT INTO template_versions (id, template_id, version, changes, content)
    SELECT %(version_id)s, created.id, '1.0.0', %(changes)s, %(content)s FROM created
)
SELECT * FROM created
"""

_LOAD_NAMES = [*_COLUMN_NAMES, "owner_id"]


def _load_sql(placeholder: str) -> str:
    """The load of one template with its owner, its id bound to `placeholder`."""
    return (
        f"SELECT {', '.join(f't.{name}' for name in _COLUMN_NAMES)}, p.user_id "
        f"FROM templates t JOIN projects p ON p.id = t.project_id WHERE t.id = {placeholder}"
    )


_LOAD = _load_sql("%s")

# A read the cache cannot serve, with its credential: the token's lookup and the
# template's load, composed from the same two statements, in one round trip
# (asyncpg's $n placeholders).
_READ_WITH_TOKEN = (
    f"SELECT * FROM ({lookup_sql('$1')}) tok LEFT JOIN ({_load_sql('$2')}) tpl ON true"
)
_TOKEN_WIDTH = len(TokenLookup._fields)
_TEMPLATE_ID_AT = _TOKEN_WIDTH + _LOAD_NAMES.index("id")


async def load_with_token(
    pool: ReadPool, prefix: str, template_id: str
) -> tuple[TokenLookup, dict[str, Any] | None] | None:
    """The token with `prefix` and the template (as `TemplateRepository.load` gives it)
    in one statement on the hot-read pool: None when there is no such token, (token,
    None) when there is no such template. ReadUnavailable when the pool cannot answer."""
    row = await pool.fetchrow(_READ_WITH_TOKEN, prefix, template_id)
    if row is None:
        return None
    token = TokenLookup(*row[:_TOKEN_WIDTH])
    if row[_TEMPLATE_ID_AT] is None:  # templates.id is never NULL: the join found nothing
        return token, None
    return token, dict(zip(_LOAD_NAMES, row[_TOKEN_WIDTH:], strict=True))


# --- search ------------------------------------------------------------------------------

KNN_CANDIDATES = 50
MIN_SIMILARITY = 0.3
_DOCUMENT = "t.search_vector"
_SEARCH_COLUMNS = (
    "t.id, t.project_id, t.name, t.description, t.status, t.version, t.tags, "
    "({rank})::float8 AS rank, t.updated_at"
)


def _search_parts(actor: Actor, query: schemas.TemplateQuery) -> tuple[str, str, dict[str, Any]]:
    """(SELECT … FROM … WHERE …, ORDER BY clause, parameters) of a search."""
    filters: list[str] = []
    params: dict[str, Any] = {}
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
        text_match = f"{_DOCUMENT} @@ {tsquery}"
        rank = f"ts_rank_cd({_DOCUMENT}, {tsquery})"
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
    selected = (
        f"SELECT {_SEARCH_COLUMNS.format(rank=rank)} FROM templates t "
        f"{'WHERE ' + ' AND '.join(where) if where else ''}"
    )
    return selected, order, params


def search_statement(
    actor: Actor, query: schemas.TemplateQuery, *, offset: int
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of a search page: limit + 1 rows from `offset` (exposed for
    EXPLAIN in tests and benchmarks)."""
    selected, order, params = _search_parts(actor, query)
    sql = f"{selected} ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
    return sql, {**params, "limit": query.limit + 1, "offset": offset}


def probe_statement(
    actor: Actor, query: schemas.TemplateQuery, *, enough: int
) -> tuple[str, dict[str, Any]]:
    """How many full-text hits a search has, counting no further than `enough`."""
    exact = query.model_copy(update={"fuzzy": False})
    selected, _, params = _search_parts(actor, exact)
    sql = f"SELECT count(*) FROM ({selected} LIMIT %(enough)s) AS hits"
    return sql, {**params, "enough": enough}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _row_dict(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["tags"] = list(data.get("tags") or [])
    return data


class TemplateRepository:
    """Reads and writes of templates, template_versions and their stored-object keys,
    on the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- templates -----------------------------------------------------------------------

    async def load(self, template_id: str) -> dict[str, Any] | None:
        """The template's columns plus `owner_id` (one round trip), or None."""
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(_LOAD, (template_id,))
            row = await cursor.fetchone()
        if row is None:
            return None
        return dict(zip(_LOAD_NAMES, row, strict=True))

    async def project_owner(self, project_id: str) -> str | None:
        """The user owning the project, or None when it does not exist."""
        conn = await self.session.connection()
        return (
            await conn.execute(select(Project.user_id).where(Project.id == project_id))
        ).scalar_one_or_none()

    async def page_of_project(self, project_id: str, params: PageParams) -> Page[schemas.Template]:
        """A project's templates, newest first."""
        conn = await self.session.connection()
        statement = paginate_newest_first(
            select(*_COLUMNS).where(TemplateRow.project_id == project_id),
            created_at=TemplateRow.created_at,
            id_column=TemplateRow.id,
            params=params,
        )
        rows = [
            schemas.Template.model_validate(_row_dict(r))
            for r in (await conn.execute(statement)).all()
        ]
        return make_page(rows, params=params, key=lambda t: (t.created_at, t.id))

    async def insert_with_version(
        self, values: dict[str, Any], *, changes: dict[str, Any], content: dict[str, Any]
    ) -> schemas.Template | None:
        """The template and its version 1.0.0 in one statement on the driver connection;
        None when the project (or session) does not exist any more."""
        params = {
            "id": new_id(),
            "version_id": new_id(),
            "project_id": values["project_id"],
            "session_id": values.get("session_id"),
            "name": values["name"],
            "description": values.get("description"),
            "html_content": values["html_content"],
            "css_content": values.get("css_content"),
            "js_content": values.get("js_content"),
            "hubspot_config": Jsonb(values["hubspot_config"], dumps=_dumps),
            "tags": values.get("tags") or [],
            "quality_score": values.get("quality_score"),
            "changes": Jsonb(changes, dumps=_dumps),
            "content": Jsonb(content, dumps=_dumps),
        }
        raw = await driver_connection(self.session)
        try:
            async with raw.cursor() as cursor:
                await cursor.execute(_INSERT_WITH_VERSION, params)
                row = await cursor.fetchone()
        except psycopg.errors.ForeignKeyViolation:
            return None
        assert row is not None  # INSERT … RETURNING always returns the row
        data = dict(zip(_COLUMN_NAMES, row, strict=True))
        data["status"] = TemplateStatus(data["status"])
        return schemas.Template.model_construct(**data)

    async def lock(self, template_id: str) -> dict[str, Any] | None:
        """The template's columns plus `owner_id`, its row locked FOR UPDATE; or None."""
        conn = await self.session.connection()
        statement = (
            select(*_COLUMNS, Project.user_id.label("owner_id"))
            .join(Project, Project.id == TemplateRow.project_id)
            .where(TemplateRow.id == template_id)
            .with_for_update(of=TemplateRow)
        )
        row = (await conn.execute(statement)).first()
        return None if row is None else _row_dict(row)

    async def update_with_version(
        self,
        template_id: str,
        *,
        changes: dict[str, Any],
        version: str,
        change_log: dict[str, Any],
        content: dict[str, Any],
    ) -> dict[str, Any]:
        """Apply `changes` at `version` and record that version, both in one savepoint.

        Raises IntegrityError (the savepoint rolled back) when the version exists.
        """
        conn = await self.session.connection()
        async with conn.begin_nested():
            row = (
                await conn.execute(
                    update(TemplateRow)
                    .where(TemplateRow.id == template_id)
                    .values(**changes, version=version)
                    .returning(*_COLUMNS)
                )
            ).one()
            await conn.execute(
                insert(VersionRow).values(
                    id=new_id(),
                    template_id=template_id,
                    version=version,
                    changes=change_log,
                    content=content,
                )
            )
        return _row_dict(row)

    async def set_status(self, template_id: str, status: TemplateStatus) -> dict[str, Any]:
        """Set the (existing) template's status; its columns."""
        conn = await self.session.connection()
        row = (
            await conn.execute(
                update(TemplateRow)
                .where(TemplateRow.id == template_id)
                .values(status=status)
                .returning(*_COLUMNS)
            )
        ).one()
        return _row_dict(row)

    async def ids_made_from(self, session_id: str) -> list[str]:
        """Ids of the templates made from a session."""
        conn = await self.session.connection()
        made_from_it = select(TemplateRow.id).where(TemplateRow.session_id == session_id)
        return list((await conn.execute(made_from_it)).scalars())

    async def object_keys(self, template_id: str) -> list[str]:
        """Keys of the stored objects belonging to the template."""
        conn = await self.session.connection()
        return list(
            (
                await conn.execute(
                    select(StoredObject.key).where(StoredObject.template_id == template_id)
                )
            ).scalars()
        )

    async def delete(self, template_id: str) -> None:
        """Delete the template (its versions go with it)."""
        conn = await self.session.connection()
        await conn.execute(delete(TemplateRow).where(TemplateRow.id == template_id))

    # --- versions ------------------------------------------------------------------------

    async def version(self, template_id: str, version: str) -> dict[str, Any] | None:
        """One version row, or None."""
        conn = await self.session.connection()
        row = (
            await conn.execute(
                select(VersionRow).where(
                    VersionRow.template_id == template_id, VersionRow.version == version
                )
            )
        ).first()
        return None if row is None else dict(row._mapping)

    async def page_of_versions(
        self, template_id: str, *, limit: int, before: list[int] | None
    ) -> Page[schemas.TemplateVersion]:
        """Versions, highest first, below `before` (the parts of the last version seen)."""
        conn = await self.session.connection()
        order = func.string_to_array(VersionRow.version, ".").cast(ARRAY(Integer))
        statement = select(VersionRow).where(VersionRow.template_id == template_id)
        if before is not None:
            statement = statement.where(order < cast(before, ARRAY(Integer)))
        statement = statement.order_by(order.desc()).limit(limit + 1)
        rows = [
            schemas.TemplateVersion.model_validate(dict(r._mapping))
            for r in (await conn.execute(statement)).all()
        ]
        return page_of(rows, limit=limit, cursor_of=lambda v: v.version)

    # --- search --------------------------------------------------------------------------

    async def search(
        self, actor: Actor, query: schemas.TemplateQuery, *, offset: int
    ) -> list[schemas.TemplateSummary]:
        """Up to limit + 1 ranked hits the actor may see, from `offset`.

        Fuzzy candidates join in only where the full-text match is thin: a query with
        plenty of full-text hits never pays for the trigram walk.
        """
        raw = await driver_connection(self.session)
        if query.q and query.fuzzy:
            enough = offset + query.limit + 1
            probe, probe_params = probe_statement(actor, query, enough=enough)
            async with raw.cursor() as cursor:
                await cursor.execute(probe, probe_params)
                row = await cursor.fetchone()
            if row is not None and row[0] > offset + query.limit:
                query = query.model_copy(update={"fuzzy": False})
        sql, params = search_statement(actor, query, offset=offset)
        async with raw.cursor() as cursor:
            await cursor.execute(sql, params)
            rows = await cursor.fetchall()
        return [
            schemas.TemplateSummary.model_construct(
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
            for r in rows
        ]
