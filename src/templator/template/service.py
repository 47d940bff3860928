"""Template workflows: create, edit with versions, diff, roll back, review, delete.

Edits lock the template row first (repository.py), so two concurrent edits serialise:
each makes its own version, none is lost. A template is cached by id and invalidated
after every committed change.
"""

from __future__ import annotations

from typing import cast

import orjson

from templator.ai_session.service import AiSessionService
from templator.audit import service as audit
from templator.hubspot.check import CheckReport, check_module
from templator.hubspot.config import keep_imported
from templator.hubspot.errors import ModuleCheckFailed
from templator.hubspot.package import ModuleContent
from templator.kit.actor import Actor
from templator.kit.pagination import (
    Page,
    PageParams,
    decode_offset,
    decode_version_cursor,
    offset_page,
)
from templator.kit.repository import JsonRow
from templator.kit.service import Service
from templator.kit.uow import after_commit_delete_objects, invalidate_now
from templator.models import SessionStatus, TemplateStatus
from templator.project.errors import ProjectNotFound
from templator.project.ownership import project_owner
from templator.storage.errors import require_store
from templator.storage.service import ObjectStore
from templator.template import schemas, versioning, workflow
from templator.template.cache import template_key
from templator.template.errors import (
    AiSessionNotCompleted,
    InvalidTemplateTransition,
    NotAllowed,
    ReviewerRoleRequired,
    TemplateArchived,
    TemplateNotFound,
    TemplateVersionNotFound,
    VersionConflict,
)
from templator.template.repository import (
    RANK_WINDOW,
    LoadedTemplate,
    LoadRow,
    TemplateRepository,
)

S = TemplateStatus


def snapshot(template: schemas.Template | schemas.TemplateCreate) -> versioning.Content:
    """The versioned content of a template (JSON: a version's `content`)."""
    return {field: getattr(template, field) for field in versioning.CONTENT_FIELDS}


def module_of(template: schemas.Template) -> ModuleContent:
    """A template as the HubSpot module it exports as."""
    return ModuleContent(
        name=template.name,
        html=template.html_content,
        css=template.css_content,
        js=template.js_content,
        config=template.hubspot_config,
    )


def may_read_template(actor: Actor, owner_id: str, status: TemplateStatus) -> bool:
    """Whether `actor` may read a template of `owner_id` in `status` (owner, ADMIN, or a
    reviewer once it is up for review)."""
    return actor.may_access(owner_id) or (actor.can_review and status in workflow.REVIEWABLE)


def may_read(actor: Actor, data: JsonRow) -> bool:
    """`may_read_template` for a template in its JSON form (`template_json`: cached)."""
    return may_read_template(actor, cast(str, data["owner_id"]), S(cast(str, data["status"])))


def template_json(found: LoadedTemplate) -> JsonRow:
    """A loaded template with its owner in its JSON form: what the cache holds, so a miss
    and a hit answer the same bytes."""
    return found.template.model_dump(mode="json") | {"owner_id": found.owner_id}


def public_json(data: JsonRow) -> bytes:
    """A cached template's JSON as clients get it (without `owner_id`): one encoder for
    the route and the fast path, so both answer the same bytes."""
    return orjson.dumps({k: v for k, v in data.items() if k != "owner_id"})


def public_json_of(row: LoadRow) -> bytes:
    """`public_json(template_json(LoadedTemplate.of(row)))`, byte for byte, without the
    model: the uncached hot read's JSON form (docs/benchmarks.md, issue #20). orjson
    writes a UTC time as pydantic's JSON mode does (ISO 8601, `Z`, microseconds only when
    there are some), and every other field is already JSON data; the fast path's tests
    compare these bytes with the route's."""
    return orjson.dumps(row.public_fields(), option=orjson.OPT_UTC_Z)


class TemplateService(Service[TemplateRepository, ObjectStore]):
    """Templates and their versions; the caller commits."""

    repository_type = TemplateRepository

    # --- reading -------------------------------------------------------------------------

    async def _load_json(self, template_id: str) -> JsonRow | None:
        """The row in its JSON form (`template_json`), or None."""
        row = await self.repository.load(template_id)
        return None if row is None else template_json(row)

    async def get_data(self, actor: Actor, template_id: str) -> JsonRow:
        """The template as a JSON-ready dict, cache-aside (the hot read path)."""
        data = await self.cache.get_or_load(
            template_key(self.cache, template_id),
            lambda: self._load_json(template_id),
            encode=lambda d: d,
            decode=lambda d: d,
        )
        if data is None or not may_read(actor, data):
            raise TemplateNotFound(template_id)
        result: JsonRow = data
        return result

    async def get(self, actor: Actor, template_id: str) -> schemas.Template:
        """The template."""
        return schemas.Template.model_validate(await self.get_data(actor, template_id))

    async def made_from_session(self, session_id: str) -> list[str]:
        """Ids of the templates made from a session (for its deletion's cascade)."""
        return await self.repository.ids_made_from(session_id)

    async def lock_of_projects(self, project_ids: list[str]) -> list[str]:
        """Lock these projects' templates until the transaction ends (an erasure); ids."""
        return await self.repository.lock_of_projects(project_ids)

    async def export_of_projects(
        self, project_ids: list[str]
    ) -> tuple[list[JsonRow], list[JsonRow]]:
        """These projects' templates and their versions, whole rows as JSON (an export)."""
        return await self.repository.export_of_projects(project_ids)

    async def search(
        self, actor: Actor, query: schemas.TemplateQuery, *, window: int = RANK_WINDOW
    ) -> Page[schemas.TemplateSummary]:
        """Ranked, filtered, paginated templates the actor may see (an offset cursor); a
        text search ranks the newest `window` matches."""
        offset = decode_offset(query.cursor)
        rows = await self.repository.search(actor, query, offset=offset, window=window)
        return offset_page(rows, offset=offset, limit=query.limit)

    async def list_for_project(
        self, actor: Actor, project_id: str, params: PageParams
    ) -> Page[schemas.Template]:
        """A project's templates, newest first."""
        await project_owner(self.session, actor, project_id)
        return await self.repository.page_of_project(project_id, params)

    # --- writing -------------------------------------------------------------------------

    async def _insert(
        self, create: schemas.TemplateCreate, actor: Actor, *, session_id: str | None = None
    ) -> schemas.Template:
        """The template and its version 1.0.0 (a hot path: every completed session makes
        one)."""
        content = snapshot(create)
        created = await self.repository.insert_with_version(
            create,
            session_id=session_id,
            changes={
                "summary": "created",
                "by": actor.id,
                "fields": versioning.change_log(None, content),
            },
            content=content,
        )
        if created is None:
            # The project (or session) was deleted since it was checked.
            raise ProjectNotFound(create.project_id)
        return created

    async def create(self, actor: Actor, data: schemas.TemplateCreate) -> schemas.Template:
        """A template made directly, with version 1.0.0."""
        await project_owner(self.session, actor, data.project_id)
        return await self._insert(data, actor)

    async def create_from_session(
        self, actor: Actor, data: schemas.TemplateFromSession
    ) -> schemas.Template:
        """A template from a COMPLETED session's final_result.

        final_result must hold `html` and `hubspot_config`; `css`, `js`, `name` and
        `description` are optional.
        """
        found = await AiSessionService(self.session, self.cache).result_of(actor, data.session_id)
        if found.status is not SessionStatus.COMPLETED:
            raise AiSessionNotCompleted(
                f"session {data.session_id} is {found.status.value}; only a COMPLETED session "
                "can become a template",
                field="session_id",
            )
        field = found.result_field
        create = schemas.TemplateCreate.model_validate(
            {
                "project_id": found.project_id,
                "name": data.name or field("name") or "Generated module",
                "description": field("description"),
                "html_content": field("html") or "",
                "css_content": field("css") or None,
                "js_content": field("js") or None,
                "hubspot_config": field("hubspot_config") or {},
                "tags": data.tags,
                "quality_score": found.quality_score,
            }
        )
        return await self._insert(create, actor, session_id=data.session_id)

    async def _lock(self, actor: Actor, template_id: str) -> LoadedTemplate:
        row = await self.repository.lock(template_id)
        if row is None or not may_read_template(actor, row.owner_id, row.template.status):
            raise TemplateNotFound(template_id)
        return row

    async def _new_version(
        self,
        actor: Actor,
        current: LoadedTemplate,
        changes: versioning.Content,
        *,
        kind: str,
        summary: str,
    ) -> schemas.Template:
        template = current.template
        before = snapshot(template)
        after = before | changes
        if after == before:
            return template
        version = versioning.bump(template.version, kind)
        row = await self.repository.update_with_version(
            template.id,
            changes=changes,
            version=version,
            change_log={
                "summary": summary,
                "by": actor.id,
                "fields": versioning.change_log(before, after),
            },
            content=after,
        )
        if row is None:
            raise VersionConflict(
                f"template {template.id} already has version {version}; retry the change",
                field="version",
            )
        await invalidate_now(self.session, self.cache, template_key(self.cache, template.id))
        return row

    async def update(
        self, actor: Actor, template_id: str, data: schemas.TemplateUpdate
    ) -> schemas.Template:
        """Apply changes as a new version (patch by default); no-op changes make none."""
        current = await self._lock(actor, template_id)
        if not actor.may_access(current.owner_id):
            raise NotAllowed("only the owner or an ADMIN may edit a template", field="template_id")
        if current.template.status is S.ARCHIVED:
            raise TemplateArchived(
                f"template {template_id} is ARCHIVED; restore it to DRAFT to edit it"
            )
        changes = data.model_dump(exclude_unset=True, exclude={"bump"})
        if changes.get("hubspot_config") is not None:
            changes["hubspot_config"] = keep_imported(
                current.template.hubspot_config, changes["hubspot_config"]
            )
        return await self._new_version(actor, current, changes, kind=data.bump, summary="edit")

    async def rollback(self, actor: Actor, template_id: str, version: str) -> schemas.Template:
        """Restore the content of `version` as a new patch version."""
        current = await self._lock(actor, template_id)
        if not actor.may_access(current.owner_id):
            raise NotAllowed(
                "only the owner or an ADMIN may roll a template back", field="template_id"
            )
        target = await self._version_row(template_id, version)
        restored = {k: v for k, v in target.content.items() if k in versioning.CONTENT_FIELDS}
        return await self._new_version(
            actor, current, restored, kind="patch", summary=f"rollback to {version}"
        )

    async def set_status(
        self, actor: Actor, template_id: str, status: TemplateStatus
    ) -> schemas.Template:
        """Move through the workflow; APPROVED and PUBLISHED need EXPERT or ADMIN."""
        current = await self._lock(actor, template_id)
        now = current.template.status
        if status not in workflow.WORKFLOW[now]:
            allowed = ", ".join(sorted(s.value for s in workflow.WORKFLOW[now])) or "nothing"
            raise InvalidTemplateTransition(
                f"template {template_id} is {now.value}; it can move to {allowed}, "
                f"not {status.value}",
                field="status",
            )
        if status in workflow.REVIEWER_MOVES and not actor.can_review:
            raise ReviewerRoleRequired(
                f"moving a template to {status.value} needs the EXPERT or ADMIN role",
                field="status",
            )
        if status not in workflow.REVIEWER_MOVES and not actor.may_access(current.owner_id):
            raise NotAllowed("only the owner or an ADMIN may do this", field="status")
        if now is S.DRAFT and status is S.REVIEW:
            report = check_module(module_of(current.template))
            if not report.ok:
                listed = "; ".join(str(f) for f in report.findings if f.severity == "error")
                raise ModuleCheckFailed(
                    f"template {template_id} fails the module check ({report.errors} "
                    f"error(s)): {listed[:1500]}; fix them, or see POST "
                    f"/api/v1/templates/{template_id}/check",
                    field="status",
                )
        changed = await self.repository.set_status(template_id, status)
        await invalidate_now(self.session, self.cache, template_key(self.cache, template_id))
        return changed

    async def delete(self, actor: Actor, template_id: str, *, origin: audit.Origin) -> None:
        """Delete a template, its versions and (after commit) its stored objects; audited."""
        current = await self._lock(actor, template_id)
        if not actor.may_access(current.owner_id):
            raise NotAllowed(
                "only the owner or an ADMIN may delete a template", field="template_id"
            )
        keys = await self.repository.object_keys(template_id)
        if keys:  # before the delete: with objects to delete and no store, nothing changes
            after_commit_delete_objects(self.session, require_store(self.store), keys)
        await self.repository.delete(template_id)
        await invalidate_now(self.session, self.cache, template_key(self.cache, template_id))
        await audit.record(
            self.session, origin, "template.delete", target_type="template", target_id=template_id
        )

    async def check(self, actor: Actor, template_id: str, *, record: bool) -> CheckReport:
        """Run `module check` on the template; with `record`, store its quality_score as
        the AI session's score (1 without one) times the check's score, as a new patch
        version when it changes."""
        report = check_module(module_of(await self.get(actor, template_id)))
        if not record:
            return report
        current = await self._lock(actor, template_id)
        if not actor.may_access(current.owner_id):
            raise NotAllowed(
                "only the owner or an ADMIN may record a check's score", field="template_id"
            )
        base = 1.0
        if current.template.session_id:
            score = await AiSessionService(self.session, self.cache).quality_score(
                current.template.session_id
            )
            if score is not None:
                base = score
        quality = round(base * report.score, 3)
        await self._new_version(
            actor, current, {"quality_score": quality}, kind="patch", summary="module check"
        )
        return report

    # --- versions ------------------------------------------------------------------------

    async def _version_row(self, template_id: str, version: str) -> schemas.TemplateVersion:
        row = await self.repository.version(template_id, version)
        if row is None:
            raise TemplateVersionNotFound(template_id, version)
        return row

    async def list_versions(
        self, actor: Actor, template_id: str, params: PageParams
    ) -> Page[schemas.TemplateVersion]:
        """Versions, newest (highest) first; the cursor is the last version seen."""
        await self.get_data(actor, template_id)
        last = decode_version_cursor(params.cursor) if params.cursor else None
        return await self.repository.page_of_versions(template_id, limit=params.limit, before=last)

    async def get_version(
        self, actor: Actor, template_id: str, version: str
    ) -> schemas.TemplateVersion:
        """One version."""
        await self.get_data(actor, template_id)
        return await self._version_row(template_id, version)

    async def diff(self, actor: Actor, template_id: str, a: str, b: str) -> schemas.TemplateDiff:
        """Per-field differences from version `a` to version `b`."""
        await self.get_data(actor, template_id)
        first, second = (
            await self._version_row(template_id, a),
            await self._version_row(template_id, b),
        )
        return schemas.TemplateDiff(
            template_id=template_id,
            from_version=a,
            to_version=b,
            fields=versioning.diff_contents(first.content, second.content),
        )
