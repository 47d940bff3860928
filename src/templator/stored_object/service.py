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

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session.service import AiSessionService
from templator.audit import service as audit
from templator.cache import Cache
from templator.hubspot.package import ModuleContent, build_module_zip, slugify
from templator.kit.actor import Actor
from templator.kit.repository import JsonRow
from templator.storage.direct import check_stored_design
from templator.storage.errors import (
    ObjectMissing,
    UnsupportedContentType,
    UploadTooLarge,
    require_store,
)
from templator.storage.service import ObjectStore, PutResult, design_key
from templator.stored_object.repository import DesignRow, StoredObjectRepository
from templator.stored_object.schemas import (
    DESIGN_TYPES,
    Design,
    DirectUpload,
    DirectUploadRequest,
)
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

    def _served(self, rows: list[DesignRow], expires_in: int | None) -> list[Design]:
        seconds = expires_in or self.store.settings.presign_default_expiry
        expires_at = datetime.now(UTC) + timedelta(seconds=seconds)
        return [
            Design.model_construct(
                key=row.key,
                size=row.size,
                content_type=row.content_type,
                created_at=row.created_at,
                url=self.store.presigned_url(
                    row.key,
                    expires_in=seconds,
                    filename=f"design-{row.key.rsplit('/', 1)[-1]}",
                ),
                expires_at=expires_at,
            )
            for row in rows
        ]

    async def designs_with_urls(
        self, session_id: str, *, expires_in: int | None = None
    ) -> list[Design]:
        """A session's designs with presigned download URLs (attachment), oldest first;
        for a caller that has already been allowed the session (the work claim). None
        when no object store is configured."""
        if self._store is None:  # no store configured: nothing can be served
            return []
        rows = await self.repository.designs_of(session_id)
        return self._served(rows, expires_in) if rows else []

    async def list_designs(self, actor: Actor, session_id: str) -> list[Design]:
        """The session's designs with download URLs, for its owner or an ADMIN."""
        await AiSessionService(self.session, self.cache).ensure_access(actor, session_id)
        return await self.designs_with_urls(session_id)

    async def direct_upload(
        self, actor: Actor, session_id: str, data: DirectUploadRequest
    ) -> DirectUpload:
        """A presigned POST for one design of the session (size and type in its policy)."""
        await AiSessionService(self.session, self.cache).ensure_access(actor, session_id)
        if data.content_type not in DESIGN_TYPES:  # exactly as listed: the policy pins it
            allowed = ", ".join(str(t) for t in DESIGN_TYPES)
            raise UnsupportedContentType(
                f"content type {data.content_type!r} is not accepted; use one of: {allowed}",
                field="content_type",
            )
        content_type = data.content_type
        store = self.store
        if data.size > store.max_bytes:
            raise UploadTooLarge(store.max_bytes)
        key = design_key(session_id, content_type)
        seconds = store.settings.direct_upload_expiry
        post = store.presigned_post(
            key, content_type=content_type, max_bytes=data.size, expires_in=seconds
        )
        return DirectUpload(
            key=key,
            url=post.url,
            fields=post.fields,
            expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
            max_bytes=data.size,
        )

    async def confirm_design(self, actor: Actor, session_id: str, key: str) -> PutResult:
        """Check a directly uploaded object (size, sniffed type, whole file) and record it
        against the session; a refused object is deleted, a confirmed one answers again."""
        await AiSessionService(self.session, self.cache).ensure_access(actor, session_id)
        if not key.startswith(f"designs/{session_id}/"):
            raise ObjectMissing(key)
        known = await self.repository.design(key)
        if known is not None:
            return PutResult(known.key, known.size, known.content_type, "")
        store = self.store
        stored = await asyncio.to_thread(check_stored_design, store, key, max_bytes=store.max_bytes)
        try:
            await self.repository.insert(
                stored, kind="design", session_id=session_id, template_id=None, sha256=None
            )
        except IntegrityError:
            # Confirmed at the same moment by another request: its row stands. The object
            # is not deleted here (it is that row's); anything truly orphaned, gc removes.
            known = await self.repository.design(key)
            if known is None:
                raise
            return PutResult(known.key, known.size, known.content_type, "")
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
