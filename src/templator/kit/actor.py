"""Who is acting: the authenticated user, as services see them."""

from __future__ import annotations

from dataclasses import dataclass, field

from templator.models.enums import UserRole

WORKER_SCOPE = "worker"
SCOPES = frozenset({WORKER_SCOPE})


@dataclass(frozen=True, slots=True)
class Actor:
    """The user on whose behalf a service call runs."""

    id: str
    role: UserRole
    scopes: frozenset[str] = field(default=frozenset())
    """What the credential is limited to; empty: everything the user's role allows."""

    @property
    def is_worker(self) -> bool:
        """A machine credential of the work queue (scope `worker`): it claims and works on
        any user's sessions and nothing else (api/scopes.py keeps it to those routes)."""
        return WORKER_SCOPE in self.scopes

    @property
    def works_on_any_session(self) -> bool:
        """ADMIN, or a worker credential: sessions of every user."""
        return self.is_admin or self.is_worker

    @property
    def is_admin(self) -> bool:
        """ADMIN sees and changes everything."""
        return self.role is UserRole.ADMIN

    @property
    def can_review(self) -> bool:
        """EXPERT and ADMIN approve and publish templates."""
        return self.role in (UserRole.EXPERT, UserRole.ADMIN)

    def may_access(self, owner_id: str) -> bool:
        """True when the actor owns the thing, is ADMIN, or is a worker credential (which
        reaches only the session routes of api/scopes.py)."""
        return self.works_on_any_session or self.id == owner_id
