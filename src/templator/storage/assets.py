"""Where the database and the object store meet: stored objects, module export, gc.

Rules: an object is uploaded first and its `stored_objects` row written after, in the
caller's transaction (if the row cannot be written, the object is deleted again);
deleting a session, template or project deletes its objects after the commit; anything left
unreferenced (a crash between upload and insert, a failed delete) is found by `gc`.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session.errors import AiSessionNotFound
from templator.ai_session.service import AiSessionService
from templator.hubspot.package import ModuleContent, build_module_zip, slugify
from templator.kit.actor import Actor
from templator.kit.ids import new_id
from templator.kit.uow import after_commit_call, after_commit_invalidate
from templator.models import AISession, StoredObject, Template
from templator.storage.errors import StoreUnavailable
from templator.storage.service import ObjectStore
from templator.storage.service import PutResult as Stored
from templator.template.service import TemplateService

SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class ModuleExport:
    """A built module zip, and where it was stored (when uploaded)."""

    filename: str
    data: bytes
    sha256: str
    key: str | None = None
    url: str | None = None


async def _record(
    session: AsyncSession,
    store: ObjectStore,
    stored: Stored,
    *,
    kind: str,
    session_id: str | None,
    template_id: str | None,
    sha256: str | None = None,
) -> None:
    conn = await session.connection()
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(StoredObject).values(
                    id=new_id(),
                    key=stored.key,
                    kind=kind,
                    session_id=session_id,
                    template_id=template_id,
                    size=stored.size,
                    content_type=stored.content_type,
                    sha256=sha256,
                )
            )
    except BaseException:
        await asyncio.to_thread(store.delete, stored.key)
        raise


class AssetService:
    """Design uploads, module exports and object clean-up; the caller commits."""

    def __init__(
        self, session: AsyncSession, store: ObjectStore | None, templates: TemplateService
    ) -> None:
        self.session = session
        self._store = store
        self.templates = templates

    @property
    def store(self) -> ObjectStore:
        """The object store, or a clear error when none is configured."""
        if self._store is None:
            raise StoreUnavailable(
                "no object store is configured: set S3_ENDPOINT_URL (or run `templator up`)"
            )
        return self._store

    async def _session_owner(self, actor: Actor, session_id: str, *, lock: bool = False) -> None:
        conn = await self.session.connection()
        statement = select(AISession.user_id).where(AISession.id == session_id)
        if lock:
            statement = statement.with_for_update()
        owner = (await conn.execute(statement)).scalar_one_or_none()
        if owner is None or not actor.may_access(owner):
            raise AiSessionNotFound(session_id)

    async def upload_design(
        self,
        actor: Actor,
        session_id: str,
        stream: IO[bytes],
        *,
        content_type: str,
        declared_size: int | None = None,
    ) -> Stored:
        """Stream a design into the store, then record it against the session."""
        await self._session_owner(actor, session_id)
        stored = await asyncio.to_thread(
            self.store.upload_design,
            session_id,
            stream,
            content_type=content_type,
            declared_size=declared_size,
        )
        await _record(
            self.session, self.store, stored, kind="design", session_id=session_id, template_id=None
        )
        return stored

    async def export_module(
        self, actor: Actor, template_id: str, *, upload: bool, expires_in: int | None = None
    ) -> ModuleExport:
        """Build the template's HubSpot module zip; optionally store it and presign a URL."""
        template = await self.templates.get(actor, template_id)
        module = ModuleContent(
            name=template.name,
            html=template.html_content,
            css=template.css_content,
            js=template.js_content,
            config=template.hubspot_config,
        )
        data = build_module_zip(module)
        digest = hashlib.sha256(data).hexdigest()
        filename = f"{slugify(template.name)}.module.zip"
        if not upload:
            return ModuleExport(filename, data, digest)
        owner_key = template.session_id or template.id
        stored = await asyncio.to_thread(self.store.upload_module, owner_key, data)
        await _record(
            self.session,
            self.store,
            stored,
            kind="module",
            session_id=template.session_id,
            template_id=template.id,
            sha256=digest,
        )
        url = self.store.presigned_url(stored.key, expires_in=expires_in, filename=filename)
        return ModuleExport(filename, data, digest, stored.key, url)

    async def delete_session(self, actor: Actor, session_id: str) -> None:
        """Delete a session (its logs and object rows cascade) and, after commit, its objects.

        Templates made from it stay, with `session_id` set to NULL by the foreign key: their
        cached copies are dropped after the transaction ends, like the session's state. The
        session row is locked first, so a template being made from it either commits before
        the templates are read or fails on its foreign key afterwards.
        """
        await self._session_owner(actor, session_id, lock=True)
        conn = await self.session.connection()
        made_from_it = select(Template.id).where(Template.session_id == session_id)
        template_ids = list((await conn.execute(made_from_it)).scalars())
        await conn.execute(delete(AISession).where(AISession.id == session_id))
        cache = self.templates.cache
        after_commit_invalidate(
            self.session,
            AiSessionService(self.session, cache).state_key(session_id),
            *map(self.templates.cache_key, template_ids),
        )
        store = self.store

        async def remove() -> None:
            for prefix in (f"designs/{session_id}/", f"modules/{session_id}/"):
                await asyncio.to_thread(store.delete_prefix, prefix)

        after_commit_call(self.session, remove)


@dataclass(frozen=True, slots=True)
class Orphan:
    """An object no row refers to."""

    key: str
    size: int
    last_modified: datetime


async def find_orphans(
    session: AsyncSession, store: ObjectStore, *, grace: timedelta
) -> list[Orphan]:
    """Objects no stored_objects row references, older than `grace` (in-flight ones are young)."""
    conn = await session.connection()
    referenced = set((await conn.execute(select(StoredObject.key))).scalars())
    cutoff = datetime.now(UTC) - grace
    objects = await asyncio.to_thread(lambda: list(store.iter_objects()))
    return [
        Orphan(o["key"], o["size"], o["last_modified"])
        for o in objects
        if o["key"] not in referenced
        and not o["key"].startswith("public/")
        and o["last_modified"] < cutoff
    ]
