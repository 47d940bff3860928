"""Stored objects: design uploads, module exports and gc, where the database and the store meet.

Rules: an object is uploaded first and its `stored_objects` row written after, in the
caller's transaction (if the row cannot be written, the object is deleted again);
deleting a session, template or project deletes its objects after the commit
(`kit.uow.after_commit_delete_objects`); anything left unreferenced (a crash between
upload and insert, a failed delete) is found by `find_orphans`.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO

from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session.service import AiSessionService
from templator.audit import service as audit
from templator.cache import Cache
from templator.hubspot.package import ModuleContent, build_module_zip, slugify
from templator.kit.actor import Actor
from templator.kit.repository import JsonRow
from templator.storage.errors import require_store
from templator.storage.service import ObjectStore, PutResult
from templator.stored_object.repository import StoredObjectRepository
from templator.stored_object.schemas import Design
from templator.template.service import TemplateService


@dataclass(frozen=True, slots=True)
class ModuleExport:
    """A built module zip, and where it was stored (when uploaded)."""

    filename: str
    data: bytes
    sha256: str
    key: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Orphan:
    """An object no row refers to."""

    key: str
    size: int
    last_modified: datetime


class StoredObjectService:
    """Design uploads, module exports and object clean-up; the caller commits."""

    def __init__(
        self, session: AsyncSession, cache: Cache, store: ObjectStore | None = None
    ) -> None:
        self.session = session
        self.cache = cache
        self._store = store
        self.repository = StoredObjectRepository(session)

    async def keys_of(self, session_ids: list[str], template_ids: list[str]) -> list[str]:
        """Keys of the objects of these sessions and templates (what deleting them frees)."""
        return await self.repository.keys_of(session_ids, template_ids)

    async def export_of(self, session_ids: list[str], template_ids: list[str]) -> list[JsonRow]:
        """The object rows of these sessions and templates as JSON (a GDPR export)."""
        return await self.repository.export_of(session_ids, template_ids)

    @property
    def store(self) -> ObjectStore:
        """The object store, or a clear error when none is configured."""
        return require_store(self._store)

    async def _record(
        self,
        stored: PutResult,
        *,
        kind: str,
        session_id: str | None,
        template_id: str | None,
        sha256: str | None = None,
    ) -> None:
        try:
            await self.repository.insert(
                stored, kind=kind, session_id=session_id, template_id=template_id, sha256=sha256
            )
        except BaseException:
            await asyncio.to_thread(self.store.delete, stored.key)
            raise

    async def upload_design(
        self,
        actor: Actor,
        session_id: str,
        stream: IO[bytes],
        *,
        content_type: str,
        declared_size: int | None = None,
    ) -> PutResult:
        """Stream a design into the store, then record it against the session."""
        await AiSessionService(self.session, self.cache).ensure_access(actor, session_id)
        stored = await asyncio.to_thread(
            self.store.upload_design,
            session_id,
            stream,
            content_type=content_type,
            declared_size=declared_size,
        )
        await self._record(stored, kind="design", session_id=session_id, template_id=None)
        return stored

    async def export_module(
        self,
        actor: Actor,
        template_id: str,
        *,
        upload: bool,
        origin: audit.Origin,
        expires_in: int | None = None,
    ) -> ModuleExport:
        """Build the template's HubSpot module zip; optionally store it and presign a URL
        (audited: a stored export hands out a download link)."""
        template = await TemplateService(self.session, self.cache).get(actor, template_id)
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
        await self._record(
            stored,
            kind="module",
            session_id=template.session_id,
            template_id=template.id,
            sha256=digest,
        )
        url = self.store.presigned_url(stored.key, expires_in=expires_in, filename=filename)
        await audit.record(
            self.session,
            origin,
            "template.export",
            target_type="template",
            target_id=template_id,
            details={"key": stored.key, "sha256": digest},
        )
        return ModuleExport(filename, data, digest, stored.key, url)

    async def designs_with_urls(self, session_id: str) -> list[Design]:
        """A session's designs with presigned download URLs (no access check: the caller
        has made it; none when no object store is configured)."""
        if self._store is None:
            return []
        rows = await self.repository.designs_of(session_id)
        seconds = self.store.settings.presign_default_expiry
        expires = datetime.now(UTC) + timedelta(seconds=seconds)
        return [
            Design(
                key=row.key,
                size=row.size,
                content_type=row.content_type,
                created_at=row.created_at,
                url=self.store.presigned_url(row.key, expires_in=seconds),
                expires_at=expires,
            )
            for row in rows
        ]

    async def find_orphans(self, *, grace: timedelta) -> list[Orphan]:
        """Objects no stored_objects row references, older than `grace` (in-flight ones
        are young)."""
        referenced = await self.repository.referenced_keys()
        cutoff = datetime.now(UTC) - grace
        store = self.store
        objects = await asyncio.to_thread(lambda: list(store.iter_objects()))
        return [
            Orphan(o["key"], o["size"], o["last_modified"])
            for o in objects
            if o["key"] not in referenced
            and not o["key"].startswith("public/")
            and o["last_modified"] < cutoff
        ]
