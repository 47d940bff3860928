"""All SQL about the audit log: text SQL on the session's own psycopg connection
(kit/repository.py)."""

from __future__ import annotations

import orjson
from psycopg.types.json import Jsonb

from templator.audit.schemas import AuditRecord
from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page
from templator.kit.repository import JsonRow, Repository, RowModel, keyset_after, keyset_params

ENTRY = RowModel(AuditRecord)
# The actor's address is read in the same statement (NULL without an actor): the entry
# keeps it after the user's row is gone, until an erasure clears it.
_INSERT = (
    "INSERT INTO audit_log (id, actor_id, actor_email, action, target_type, target_id, "
    "request_id, details) VALUES (%(id)s, %(actor)s::text, "
    "(SELECT email FROM users WHERE id = %(actor)s::text), %(action)s, %(target_type)s, "
    "%(target_id)s, %(request_id)s, %(details)s)"
)
_CLEAR_EMAIL = (
    "UPDATE audit_log SET actor_email = NULL WHERE actor_id = %s AND actor_email IS NOT NULL"
)
_PAGE = f"SELECT {ENTRY.columns} FROM audit_log WHERE true "
_OF_TARGET = "AND target_id = %(target)s "


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


class AuditRepository(Repository):
    """Reads and writes of audit_log, on the caller's session."""

    __slots__ = ()

    async def insert(
        self,
        *,
        actor_id: str | None,
        action: str,
        target_type: str,
        target_id: str | None,
        request_id: str | None,
        details: JsonRow | None,
    ) -> None:
        """Insert one entry, with the actor's e-mail address as it is now."""
        await self.run(
            _INSERT,
            {
                "id": new_id(),
                "actor": actor_id,
                "action": action,
                "target_type": target_type,
                "target_id": target_id,
                "request_id": request_id,
                "details": None if details is None else Jsonb(details, dumps=_dumps),
            },
        )

    async def clear_actor_email(self, actor_id: str) -> int:
        """Set actor_email to NULL on every entry of this actor; the count."""
        return await self.run(_CLEAR_EMAIL, (actor_id,))

    async def page(self, params: PageParams, *, target_id: str | None = None) -> Page[AuditRecord]:
        """Entries (of one target, if given), newest first."""
        of_target = _OF_TARGET if target_id else ""
        rows = await self.fetch_all(
            _PAGE + of_target + keyset_after(params), {"target": target_id, **keyset_params(params)}
        )
        entries = [ENTRY(row) for row in rows]
        return make_page(entries, params=params, key=lambda e: (e.created_at, e.id))
