"""All SQL about templates and their versions, search included: text SQL on the
session's own psycopg connection (kit/repository.py), every statement.

Creating a template (with its version 1.0.0, in one statement) and loading one by id
are hot paths; an edit is one statement too (the new version's row and the template's
columns, or nothing when that version exists). `lock` takes the template row FOR UPDATE,
so concurrent edits of one template serialise; the unique (template_id, version)
constraint is the last line of defence, and `update_with_version` answers None when it
holds the version back.

Search — full-text (English), tags, status and project, ranked, with misspelt words
corrected — does work that follows the size of its window, not of the table. A text
search ranks only the newest `window` matches (Settings.search_rank_window): they are
found by walking idx_templates_newest_search — (created_at, id) INCLUDE (search_vector,
status, tags) — backwards, an index-only scan that stops once the window is full; with
narrower filters the planner takes the GIN index on search_vector
(idx_templates_search), tags' GIN or the b-tree indexes on status and project instead.
Only the window's rows are ranked (ts_rank_cd) and only the page's rows are read from the
table. Without a text query, newest first.

Fuzzy matching is spelling correction, the way pg_trgm's documentation pairs it with
full-text search: search_words holds every lexeme any template contains (kept by
triggers on templates), and when a query's matches would not fill a page, each of its
words no template contains is replaced (ts_rewrite) by the vocabulary word nearest to it
by trigram distance (a GiST KNN scan over the vocabulary, which grows with the language
rather than the rows), if one is at least MIN_SIMILARITY alike. Pages are rank-ordered,
so their cursor is an offset (kit/pagination.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
import psycopg
from psycopg.types.json import Jsonb

from templator.config import Settings
from templator.kit.actor import Actor
from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, page_of
from templator.kit.raw import driver_connection
from templator.kit.repository import (
    JsonRow,
    Repository,
    RowModel,
    keyset_after,
    keyset_params,
)
from templator.models import Template as TemplateRow
from templator.models import TemplateStatus
from templator.template import schemas
from templator.template.versioning import CONTENT_FIELDS, ChangeLog, Content
from templator.template.workflow import reviewable_sql

SqlParams = dict[str, object]
"""The named parameters of a text statement, built up clause by clause."""
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

TEMPLATE = RowModel(schemas.Template, _COLUMN_NAMES)
VERSION = RowModel(schemas.TemplateVersion)
_RETURNING = f"RETURNING {TEMPLATE.columns}"
# The edit: the new version's row, and the template's columns only if that went in (a
# data-modifying CTE sees the other's RETURNING, so an existing version changes nothing).
_UPDATE_WITH_VERSION = """
WITH version AS (
    INSERT INTO template_versions (id, template_id, version, changes, content)
    VALUES (%(version_id)s, %(id)s, %(version)s, %(changes)s, %(content)s)
    ON CONFLICT (template_id, version) DO NOTHING RETURNING template_id
)
UPDATE templates SET {assignments}version = %(version)s
WHERE id = (SELECT template_id FROM version) {returning}
"""
_ASSIGNMENT = {
    field: f"{field} = %({field})s{'::text[]' if field == 'tags' else ''}, "
    for field in CONTENT_FIELDS
}
_SET_STATUS = f"UPDATE templates SET status = %s::template_status WHERE id = %s {_RETURNING}"
_PAGE = f"SELECT {TEMPLATE.columns} FROM templates WHERE project_id = %(project)s "
_LOCK_OF_PROJECTS = "SELECT id FROM templates WHERE project_id = ANY(%s) ORDER BY id FOR UPDATE"
_EXPORT = "SELECT * FROM templates WHERE project_id = ANY(%s)"
_EXPORT_VERSIONS = (
    "SELECT * FROM template_versions "
    "WHERE template_id IN (SELECT id FROM templates WHERE project_id = ANY(%s))"
)
_MADE_FROM = "SELECT id FROM templates WHERE session_id = %s"
_OBJECT_KEYS = "SELECT key FROM stored_objects WHERE template_id = %s"
_DELETE = "DELETE FROM templates WHERE id = %s"
_VERSION = (
    f"SELECT {VERSION.columns} FROM template_versions WHERE template_id = %s AND version = %s"
)
_VERSION_ORDER = "string_to_array(version, '.')::int[]"


class LoadedTemplate(NamedTuple):
    """A template with the id of the user owning its project (who may edit it); a
    NamedTuple, cheaper to make than a frozen dataclass on the uncached read."""

    template: schemas.Template
    owner_id: str

    @classmethod
    def of(cls, row: Sequence[Any]) -> LoadedTemplate:
        """From a row of `LOAD_NAMES` (the template's columns, then its owner)."""
        return cls(TEMPLATE(row), row[_OWNER_AT])


LOAD_NAMES = [*_COLUMN_NAMES, "owner_id"]
_OWNER_AT = len(_COLUMN_NAMES)
"""The columns of `load_sql`, in order."""
_STATUS_AT = LOAD_NAMES.index("status")
_PUBLIC_FIELDS = tuple(schemas.Template.model_fields)
_PUBLIC_AT = tuple(LOAD_NAMES.index(name) for name in _PUBLIC_FIELDS)


class LoadRow:
    """A row of `load_sql` read where the uncached hot read needs it, without building
    the `schemas.Template` (LoadedTemplate.of): the owner, the status and the public
    fields in the schema's order. A row from our own table, with the read pool's JSON
    codec (orjson), so nothing a model would validate can be wrong in it; a test holds
    the JSON form built from it to the model's bytes (template/service.public_json_of)."""

    __slots__ = ("_row",)

    def __init__(self, row: Sequence[Any]) -> None:
        self._row = row

    @property
    def owner_id(self) -> str:
        owner: str = self._row[_OWNER_AT]
        return owner

    @property
    def status(self) -> TemplateStatus:
        return TemplateStatus(self._row[_STATUS_AT])

    def public_fields(self) -> dict[str, object]:
        """{field: value as loaded} in `schemas.Template`'s order (times as datetimes)."""
        row = self._row
        return dict(zip(_PUBLIC_FIELDS, [row[i] for i in _PUBLIC_AT], strict=True))


def load_sql(placeholder: str) -> str:
    """The load of one template with its owner, its id bound to `placeholder`."""
    return (
        f"SELECT {', '.join(f't.{name}' for name in _COLUMN_NAMES)}, p.user_id "
        f"FROM templates t JOIN projects p ON p.id = t.project_id WHERE t.id = {placeholder}"
    )


_LOAD = load_sql("%s")
LOAD = _LOAD
"""The load of one template with its owner by id (`%s`)."""
_LOCK = f"{_LOAD} FOR UPDATE OF t"


# --- search ------------------------------------------------------------------------------

# A search ranks at most this many matches, the newest, unless told otherwise.
RANK_WINDOW: int = Settings.model_fields["search_rank_window"].default
# How alike (pg_trgm similarity) a vocabulary word must be to stand in for a misspelt one.
MIN_SIMILARITY = 0.3
MAX_SPELLED_WORDS = 20
_DOCUMENT = "t.search_vector"
_SUMMARY_COLUMNS = "t.id, t.project_id, t.name, t.description, t.status, t.version, t.tags"
# Letters-only words of a query, with the "-" that negates one in websearch syntax.
_QUERY_WORD = re.compile(r"(?<![\w-])(-?)([^\W\d_]+)")
_SPELLING_IN = """
SELECT l.lexeme, n.word
FROM unnest(%(words)s::text[]) AS q (word)
CROSS JOIN LATERAL (
    SELECT (tsvector_to_array(to_tsvector('english', q.word)))[1] AS lexeme
) AS l
CROSS JOIN LATERAL (
    SELECT v.word FROM {vocabulary} v WHERE {scope_v} ORDER BY v.word <-> l.lexeme LIMIT 1
) AS n
WHERE l.lexeme IS NOT NULL
  AND NOT EXISTS (SELECT FROM {vocabulary} k WHERE {scope_k} AND k.word = l.lexeme)
  AND similarity(n.word, l.lexeme) >= %(similarity)s
"""
_SPELLING = _SPELLING_IN.format(vocabulary="search_words", scope_v="true", scope_k="true")
# A USER (and a REVIEWER) is spelled against their own templates' words only: everyone's
# would tell them whether another user's template has a word (issue #21).
_OWN_SPELLING = _SPELLING_IN.format(
    vocabulary="user_search_words",
    # `%%` (pg_trgm's similarity >= pg_trgm.similarity_threshold, 0.3 = MIN_SIMILARITY)
    # lets the GIN index find the user's alike words; the nearest of them is taken.
    scope_v="v.user_id = %(actor)s AND v.word %% l.lexeme",
    scope_k="k.user_id = %(actor)s",
)


def spelling_words(q: str) -> list[str]:
    """The words of `q` whose spelling may be corrected: letters only, three or more (as
    the vocabulary's words), not negated (correcting "-word" would narrow the search),
    distinct, at most MAX_SPELLED_WORDS."""
    words = dict.fromkeys(
        m[2].lower() for m in _QUERY_WORD.finditer(q) if not m[1] and len(m[2]) >= 3
    )
    return list(words)[:MAX_SPELLED_WORDS]


def spelling_statement(q: str, actor: Actor) -> tuple[str, SqlParams]:
    """(lexeme, nearest vocabulary word) for each word of `q` no template of the actor's
    vocabulary contains but one spells alike (pg_trgm similarity >= MIN_SIMILARITY): for
    ADMIN, every template's words; for anyone else, their own templates' words."""
    params: SqlParams = {"words": spelling_words(q), "similarity": MIN_SIMILARITY}
    if actor.is_admin:
        return _SPELLING, params
    return _OWN_SPELLING, {**params, "actor": actor.id}


def _filters(actor: Actor, query: schemas.TemplateQuery) -> tuple[list[str], SqlParams]:
    """The WHERE terms (and their parameters) of tags, status, project and ownership."""
    filters: list[str] = []
    params: SqlParams = {}
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
            owner = f"({owner} OR {reviewable_sql('t.status')})"
        filters.append(owner)
        params["actor"] = actor.id
    return filters, params


def search_statement(
    actor: Actor,
    query: schemas.TemplateQuery,
    *,
    offset: int,
    window: int = RANK_WINDOW,
    spelled: list[tuple[str, str]] | None = None,
) -> tuple[str, SqlParams]:
    """The SQL and parameters of a search page: limit + 1 rows from `offset`.

    With a text query each row starts with the number of matches in the window (a row of
    NULLs carries it when the page is empty), then the summary columns, rank, updated_at;
    `spelled` (lexeme, replacement) pairs rewrite the query's misspelt words. Without
    one, the summary columns, rank 0 and updated_at, newest first.
    """
    filters, params = _filters(actor, query)
    params.update(limit=query.limit + 1, offset=offset)
    if not query.q:
        where = f"WHERE {' AND '.join(filters)}" if filters else ""
        sql = (
            f"SELECT {_SUMMARY_COLUMNS}, 0::float8 AS rank, t.updated_at FROM templates t "
            f"{where} ORDER BY t.created_at DESC, t.id DESC "
            "LIMIT %(limit)s OFFSET %(offset)s"
        )
        return sql, params
    tsquery = "websearch_to_tsquery('english', %(q)s)"
    params.update(q=query.q, window=window)
    for i, (lexeme, word) in enumerate(spelled or []):
        tsquery = (
            f"ts_rewrite({tsquery}, quote_literal(%(from{i})s)::tsquery, "
            f"quote_literal(%(to{i})s)::tsquery)"
        )
        params.update({f"from{i}": lexeme, f"to{i}": word})
    where = " AND ".join([*filters, f"{_DOCUMENT} @@ ({tsquery})"])
    # The window walks idx_templates_newest_search backwards (index-only when nothing but
    # the text is asked); only its rows are ranked, and only the page's rows are read.
    sql = f"""
WITH hits AS MATERIALIZED (
    SELECT t.id, {_DOCUMENT} AS document FROM templates t WHERE {where}
    ORDER BY t.created_at DESC, t.id DESC LIMIT %(window)s
), page AS (
    SELECT h.id, ts_rank_cd(h.document, {tsquery})::float8 AS rank FROM hits h
    ORDER BY rank DESC, h.id DESC LIMIT %(limit)s OFFSET %(offset)s
)
SELECT (SELECT count(*) FROM hits), {_SUMMARY_COLUMNS}, p.rank, t.updated_at
FROM (VALUES (1)) AS one (x) LEFT JOIN (page p JOIN templates t ON t.id = p.id) ON true
ORDER BY p.rank DESC, p.id DESC"""
    return sql, params


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


class TemplateRepository(Repository):
    """Reads and writes of templates, template_versions and their stored-object keys,
    on the caller's session."""

    __slots__ = ()

    async def lock_of_projects(self, project_ids: list[str]) -> list[str]:
        """Lock the projects' templates FOR UPDATE (in id order); their ids."""
        return [str(row[0]) for row in await self.fetch_all(_LOCK_OF_PROJECTS, (project_ids,))]

    async def export_of_projects(
        self, project_ids: list[str]
    ) -> tuple[list[JsonRow], list[JsonRow]]:
        """The projects' templates and all their versions, whole rows as JSON."""
        return (
            await self.fetch_json_rows(_EXPORT, (project_ids,)),
            await self.fetch_json_rows(_EXPORT_VERSIONS, (project_ids,)),
        )

    # --- templates -----------------------------------------------------------------------

    async def load(self, template_id: str) -> LoadedTemplate | None:
        """The template with its owner (one round trip), or None."""
        row = await self.fetch_one(_LOAD, (template_id,))
        return None if row is None else LoadedTemplate.of(row)

    async def page_of_project(self, project_id: str, params: PageParams) -> Page[schemas.Template]:
        """A project's templates, newest first (index: project_id, created_at)."""
        rows = await self.fetch_all(
            _PAGE + keyset_after(params), {"project": project_id, **keyset_params(params)}
        )
        templates = [TEMPLATE(row) for row in rows]
        return make_page(templates, params=params, key=lambda t: (t.created_at, t.id))

    async def insert_with_version(
        self,
        create: schemas.TemplateCreate,
        *,
        session_id: str | None,
        changes: ChangeLog,
        content: Content,
    ) -> schemas.Template | None:
        """The template and its version 1.0.0 in one statement; None when the project (or
        session) does not exist any more."""
        params = {
            "id": new_id(),
            "version_id": new_id(),
            "project_id": create.project_id,
            "session_id": session_id,
            "name": create.name,
            "description": create.description,
            "html_content": create.html_content,
            "css_content": create.css_content,
            "js_content": create.js_content,
            "hubspot_config": Jsonb(create.hubspot_config, dumps=_dumps),
            "tags": create.tags or [],
            "quality_score": create.quality_score,
            "changes": Jsonb(changes, dumps=_dumps),
            "content": Jsonb(content, dumps=_dumps),
        }
        try:
            row = await self.fetch_one(_INSERT_WITH_VERSION, params)
        except psycopg.errors.ForeignKeyViolation:
            return None
        assert row is not None  # INSERT … RETURNING always returns the row
        return TEMPLATE(row)

    async def lock(self, template_id: str) -> LoadedTemplate | None:
        """The template with its owner, its row locked FOR UPDATE; or None."""
        row = await self.fetch_one(_LOCK, (template_id,))
        return None if row is None else LoadedTemplate.of(row)

    async def update_with_version(
        self,
        template_id: str,
        *,
        changes: Content,
        version: str,
        change_log: ChangeLog,
        content: Content,
    ) -> schemas.Template | None:
        """Apply `changes` (content fields) at `version` and record that version, in one
        statement; None, with nothing changed, when the template has that version."""
        params: SqlParams = {
            "id": template_id,
            "version_id": new_id(),
            "version": version,
            "changes": Jsonb(change_log, dumps=_dumps),
            "content": Jsonb(content, dumps=_dumps),
        }
        assignments = []
        for field, value in changes.items():
            assignments.append(_ASSIGNMENT[field])  # a KeyError: not a content field
            json = field == "hubspot_config" and value is not None
            params[field] = Jsonb(value, dumps=_dumps) if json else value
        statement = _UPDATE_WITH_VERSION.format(
            assignments="".join(assignments), returning=_RETURNING
        )
        row = await self.fetch_one(statement, params)
        return None if row is None else TEMPLATE(row)

    async def set_status(self, template_id: str, status: TemplateStatus) -> schemas.Template:
        """Set the (existing) template's status; its columns."""
        row = await self.fetch_one(_SET_STATUS, (status.value, template_id))
        assert row is not None  # the caller holds the row's lock: it exists
        return TEMPLATE(row)

    async def ids_made_from(self, session_id: str) -> list[str]:
        """Ids of the templates made from a session."""
        return [str(row[0]) for row in await self.fetch_all(_MADE_FROM, (session_id,))]

    async def object_keys(self, template_id: str) -> list[str]:
        """Keys of the stored objects belonging to the template."""
        return [str(row[0]) for row in await self.fetch_all(_OBJECT_KEYS, (template_id,))]

    async def delete(self, template_id: str) -> None:
        """Delete the template (its versions go with it)."""
        await self.run(_DELETE, (template_id,))

    # --- versions ------------------------------------------------------------------------

    async def version(self, template_id: str, version: str) -> schemas.TemplateVersion | None:
        """One version, or None."""
        row = await self.fetch_one(_VERSION, (template_id, version))
        return None if row is None else VERSION(row)

    async def page_of_versions(
        self, template_id: str, *, limit: int, before: list[int] | None
    ) -> Page[schemas.TemplateVersion]:
        """Versions, highest first, below `before` (the parts of the last version seen)."""
        below = "" if before is None else f"AND {_VERSION_ORDER} < %(before)s::int[] "
        rows = await self.fetch_all(
            f"SELECT {VERSION.columns} FROM template_versions WHERE template_id = %(id)s "
            f"{below}ORDER BY {_VERSION_ORDER} DESC LIMIT %(limit)s",
            {"id": template_id, "before": before, "limit": limit + 1},
        )
        versions = [VERSION(row) for row in rows]
        return page_of(versions, limit=limit, cursor_of=lambda v: v.version)

    # --- search --------------------------------------------------------------------------

    async def search(
        self,
        actor: Actor,
        query: schemas.TemplateQuery,
        *,
        offset: int,
        window: int = RANK_WINDOW,
    ) -> list[schemas.TemplateSummary]:
        """Up to limit + 1 ranked hits the actor may see, from `offset`: the newest
        `window` matches, ranked.

        When the matches would not fill a page and fuzzy matching is on, the query's
        misspelt words (words no template contains) are replaced by the nearest words
        templates do contain, and the page is that query's instead. A query with plenty
        of matches is one statement.
        """
        # Never prepared (prepare=False): psycopg would prepare a statement run five
        # times on a connection, and PostgreSQL would then plan it once for any
        # parameters. A generic plan cannot tell one user's few templates from everyone's,
        # and picks the window's walk over the whole table for both (50 ms instead of 4
        # at 1M templates); planned for its own parameters each time, a search costs
        # well under a millisecond more.
        raw = await driver_connection(self.session)
        sql, params = search_statement(actor, query, offset=offset, window=window)
        async with raw.cursor() as cursor:
            await cursor.execute(sql, params, prepare=False)
            rows = await cursor.fetchall()
        if not query.q:
            return [_summary(r) for r in rows]
        if query.fuzzy and rows[0][0] <= query.limit:
            spelling, spelling_params = spelling_statement(query.q, actor)
            async with raw.cursor() as cursor:
                await cursor.execute(spelling, spelling_params, prepare=False)
                spelled = [(r[0], r[1]) for r in await cursor.fetchall()]
            if spelled:
                sql, params = search_statement(
                    actor, query, offset=offset, window=window, spelled=spelled
                )
                async with raw.cursor() as cursor:
                    await cursor.execute(sql, params, prepare=False)
                    rows = await cursor.fetchall()
        return [_summary(r[1:]) for r in rows if r[1] is not None]


def _summary(r: Sequence[Any]) -> schemas.TemplateSummary:
    """A search row (summary columns, rank, updated_at) as its schema, unchecked."""
    return schemas.TemplateSummary.model_construct(
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
